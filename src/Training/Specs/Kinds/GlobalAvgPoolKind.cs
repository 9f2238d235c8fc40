using TorchSharp.Modules;
using TrainingService.Training.Export;
using TrainingService.Training.Models;
using static TorchSharp.torch;
using static TrainingService.Training.Export.OnnxGraph;

namespace TrainingService.Training.Specs.Kinds;

/// <summary>globalavgpool: channels × height × width → channels, the mean over each feature map.</summary>
public sealed class GlobalAvgPoolKind : LayerKind
{
    public override string Name => "globalavgpool";

    internal override void Infer(LayerAnalysis layer)
    {
        int[] input = layer.Input;
        if (input.Length != 3)
        {
            layer.Error("kind", $"globalavgpool needs a channels×height×width input, but gets {SpecText.Shape(input)}");
            return;
        }

        layer.SpatialTracking = false;
        layer.Accept([input[0]], 0, 0);
    }

    internal override nn.Module<Tensor, Tensor> CreateModule(LayerPlan layer, Generator generator) => new GlobalAvgPool();

    internal override Tensor Forward(LayerPlan layer, IReadOnlyList<Tensor> inputs, LayerWeights weights) => inputs[0].mean([2, 3]);

    internal override void ToOnnx(LayerPlan layer, OnnxGraph graph, string[] inputs, string output)
    {
        string pooled = $"{layer.Name}.pooled";
        graph.Node("GlobalAveragePool", pooled, [inputs[0]], [pooled]);
        graph.Node("Flatten", layer.Name, [pooled], [output], Int("axis", 1));
        graph.ValueInfo(pooled, [layer.InputShape[0], 1, 1]);
    }

    private sealed class GlobalAvgPool() : ParameterLessModule<Tensor, Tensor>("globalavgpool")
    {
        public override Tensor forward(Tensor input) => input.mean([2, 3]);
    }
}
