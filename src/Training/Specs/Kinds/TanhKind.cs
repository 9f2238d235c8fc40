using TrainingService.Contracts.Training;
using TrainingService.Training.Export;
using TrainingService.Training.Models;
using TrainingService.Training.Monitoring;
using static TorchSharp.torch;

namespace TrainingService.Training.Specs.Kinds;

/// <summary>tanh; its statistics count the outputs saturated within 2% of −1 or 1.</summary>
public sealed class TanhKind : LayerKind
{
    public override string Name => "tanh";

    internal override nn.Module<Tensor, Tensor> CreateModule(LayerPlan layer, Generator generator) => nn.Tanh();

    internal override Tensor Forward(LayerPlan layer, IReadOnlyList<Tensor> inputs, LayerWeights weights) => tanh(inputs[0]);

    internal override void ToOnnx(LayerPlan layer, OnnxGraph graph, string[] inputs, string output) =>
        graph.Node("Tanh", layer.Name, [inputs[0]], [output]);

    internal override LayerStats Observe(LayerStats stats, LayerOutput output) => stats with { Saturated = output.FractionOutside(-0.98f, 0.98f) };
}
