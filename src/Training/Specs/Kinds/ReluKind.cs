using TrainingService.Contracts.Training;
using TrainingService.Training.Export;
using TrainingService.Training.Models;
using TrainingService.Training.Monitoring;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TrainingService.Training.Specs.Kinds;

/// <summary>relu: max(0, x); its statistics count the units never active in a batch.</summary>
public sealed class ReluKind : LayerKind
{
    public override string Name => "relu";

    internal override nn.Module<Tensor, Tensor> CreateModule(LayerPlan layer, Generator generator) => nn.ReLU();

    internal override Tensor Forward(LayerPlan layer, IReadOnlyList<Tensor> inputs, LayerWeights weights) => F.relu(inputs[0], false);

    internal override void ToOnnx(LayerPlan layer, OnnxGraph graph, string[] inputs, string output) =>
        graph.Node("Relu", layer.Name, [inputs[0]], [output]);

    internal override LayerStats Observe(LayerStats stats, LayerOutput output) => stats with { InactiveUnits = output.InactiveUnits() };
}
