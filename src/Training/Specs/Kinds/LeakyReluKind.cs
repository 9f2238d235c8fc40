using TrainingService.Contracts.Specs;
using TrainingService.Training.Export;
using TrainingService.Training.Models;
using static TorchSharp.torch;
using static TrainingService.Training.Export.OnnxGraph;
using F = TorchSharp.torch.nn.functional;

namespace TrainingService.Training.Specs.Kinds;

/// <summary>leakyrelu: x, or slope·x below zero.</summary>
public sealed class LeakyReluKind : LayerKind
{
    public override string Name => "leakyrelu";

    public override IReadOnlyList<string> Fields => ["slope"];

    internal override LayerPlan Resolve(LayerPlan plan, LayerSpec layer, LayerCheck check)
    {
        double slope = layer.Slope ?? 0.01;
        if (!double.IsFinite(slope))
        {
            check.Error("slope", $"slope must be a finite number, got {slope}");
        }

        return plan with { Slope = slope };
    }

    internal override nn.Module<Tensor, Tensor> CreateModule(LayerPlan layer, Generator generator) => nn.LeakyReLU(layer.Slope);

    internal override Tensor Forward(LayerPlan layer, IReadOnlyList<Tensor> inputs, LayerWeights weights) =>
        F.leaky_relu(inputs[0], layer.Slope, false);

    internal override void ToOnnx(LayerPlan layer, OnnxGraph graph, string[] inputs, string output) =>
        graph.Node("LeakyRelu", layer.Name, [inputs[0]], [output], Float("alpha", (float)layer.Slope));
}
