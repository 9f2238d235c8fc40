using TorchSharp;
using TrainingService.Contracts.Specs;
using TrainingService.Training.Export;
using TrainingService.Training.Models;
using static TorchSharp.torch;
using static TrainingService.Training.Export.OnnxGraph;
using F = TorchSharp.torch.nn.functional;

namespace TrainingService.Training.Specs.Kinds;

/// <summary>dropout: zeroes each element with probability p while training; passes its input on in evaluation.</summary>
public sealed class DropoutKind : LayerKind
{
    public override string Name => "dropout";

    public override IReadOnlyList<string> Fields => ["p"];

    internal override LayerPlan Resolve(LayerPlan plan, LayerSpec layer, LayerCheck check)
    {
        double p = layer.P ?? 0.5;
        if (!(p is >= 0 and < 1))
        {
            check.Error("p", $"p must be in [0, 1): the probability of zeroing an element, got {SpecText.Number(p)}");
        }

        return plan with { P = p };
    }

    internal override nn.Module<Tensor, Tensor> CreateModule(LayerPlan layer) => nn.Dropout(layer.P);

    internal override Tensor Forward(LayerPlan layer, IReadOnlyList<Tensor> inputs, LayerWeights weights) => inputs[0];

    internal override void ToOnnx(LayerPlan layer, OnnxGraph graph, string[] inputs, string output) =>
        graph.Node("Identity", layer.Name, [inputs[0]], [output]);
}
