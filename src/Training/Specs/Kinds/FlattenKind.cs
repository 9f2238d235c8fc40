using TrainingService.Training.Export;
using TrainingService.Training.Models;
using static TorchSharp.torch;
using static TrainingService.Training.Export.OnnxGraph;

namespace TrainingService.Training.Specs.Kinds;

/// <summary>flatten: channels × height × width into one feature vector.</summary>
public sealed class FlattenKind : LayerKind
{
    public override string Name => "flatten";

    internal override void Infer(LayerAnalysis layer)
    {
        layer.SpatialTracking = false;
        layer.Accept([layer.Input.Aggregate(1L, (a, b) => a * b)], 0, 0);
    }

    internal override nn.Module<Tensor, Tensor> CreateModule(LayerPlan layer, Generator generator) => nn.Flatten();

    internal override Tensor Forward(LayerPlan layer, IReadOnlyList<Tensor> inputs, LayerWeights weights) => inputs[0].flatten(1);

    internal override void ToOnnx(LayerPlan layer, OnnxGraph graph, string[] inputs, string output) =>
        graph.Node("Flatten", layer.Name, [inputs[0]], [output], Int("axis", 1));
}
