using TrainingService.Training.Export;
using TrainingService.Training.Models;
using static TorchSharp.torch;
using static TrainingService.Training.Export.OnnxGraph;
using F = TorchSharp.torch.nn.functional;

namespace TrainingService.Training.Specs.Kinds;

/// <summary>maxpool2d: the largest value in each window.</summary>
public sealed class MaxPool2dKind : PoolKind
{
    public override string Name => "maxpool2d";

    public override string AutoNamePrefix => "maxpool";

    internal override nn.Module<Tensor, Tensor> CreateModule(LayerPlan layer, Generator generator) =>
        nn.MaxPool2d(Sides(layer.Kernel), Sides(layer.Stride), Sides(layer.Padding.Size));

    internal override Tensor Forward(LayerPlan layer, IReadOnlyList<Tensor> inputs, LayerWeights weights) =>
        F.max_pool2d(inputs[0], SideArray(layer.Kernel), SideArray(layer.Stride), SideArray(layer.Padding.Size), [1, 1], false);

    internal override void ToOnnx(LayerPlan layer, OnnxGraph graph, string[] inputs, string output) =>
        graph.Node("MaxPool", layer.Name, [inputs[0]], [output],
            Ints("kernel_shape", SideArray(layer.Kernel)), Ints("strides", SideArray(layer.Stride)), Ints("pads", Pads(layer.Padding.Size)), Int("ceil_mode", 0));
}
