using TrainingService.Training.Export;
using TrainingService.Training.Models;
using static TorchSharp.torch;
using static TrainingService.Training.Export.OnnxGraph;
using F = TorchSharp.torch.nn.functional;

namespace TrainingService.Training.Specs.Kinds;

/// <summary>avgpool2d: the mean of each window, zero padding counted.</summary>
public sealed class AvgPool2dKind : PoolKind
{
    public override string Name => "avgpool2d";

    public override string AutoNamePrefix => "avgpool";

    internal override nn.Module<Tensor, Tensor> CreateModule(LayerPlan layer, Generator generator) =>
        nn.AvgPool2d(Sides(layer.Kernel), Sides(layer.Stride), Sides(layer.Padding.Size));

    internal override Tensor Forward(LayerPlan layer, IReadOnlyList<Tensor> inputs, LayerWeights weights) =>
        F.avg_pool2d(inputs[0], SideArray(layer.Kernel), SideArray(layer.Stride), SideArray(layer.Padding.Size), false, true, null);

    internal override void ToOnnx(LayerPlan layer, OnnxGraph graph, string[] inputs, string output) =>
        graph.Node("AveragePool", layer.Name, [inputs[0]], [output],
            Ints("kernel_shape", SideArray(layer.Kernel)), Ints("strides", SideArray(layer.Stride)), Ints("pads", Pads(layer.Padding.Size)),
            Int("count_include_pad", 1), Int("ceil_mode", 0));
}
