using TrainingService.Contracts.Training;
using TrainingService.Training.Export;
using TrainingService.Training.Models;
using TrainingService.Training.Monitoring;
using static TorchSharp.torch;

namespace TrainingService.Training.Specs.Kinds;

/// <summary>sigmoid: 1/(1 + e^−x); its statistics count the outputs saturated within 2% of 0 or 1.</summary>
public sealed class SigmoidKind : LayerKind
{
    public override string Name => "sigmoid";

    internal override nn.Module<Tensor, Tensor> CreateModule(LayerPlan layer, Generator generator) => nn.Sigmoid();

    internal override Tensor Forward(LayerPlan layer, IReadOnlyList<Tensor> inputs, LayerWeights weights) => sigmoid(inputs[0]);

    internal override void ToOnnx(LayerPlan layer, OnnxGraph graph, string[] inputs, string output) =>
        graph.Node("Sigmoid", layer.Name, [inputs[0]], [output]);

    internal override LayerStats Observe(LayerStats stats, LayerOutput output) => stats with { Saturated = output.FractionOutside(0.02f, 0.98f) };
}
