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

    // Ours, not libtorch's, where it can be (no padding, contiguous float32 on the CPU): same results, several times faster.
    internal override nn.Module<Tensor, Tensor> CreateModule(LayerPlan layer, Generator generator) =>
        new Models.MaxPool2d(layer.Kernel.Height, layer.Kernel.Width, layer.Stride.Height, layer.Stride.Width, layer.Padding.Size.Height, layer.Padding.Size.Width);

    internal override Tensor Forward(LayerPlan layer, IReadOnlyList<Tensor> inputs, LayerWeights weights) =>
        Models.MaxPool2d.Apply(inputs[0], layer.Kernel.Height, layer.Kernel.Width, layer.Stride.Height, layer.Stride.Width, layer.Padding.Size.Height, layer.Padding.Size.Width);

    internal override void ToOnnx(LayerPlan layer, OnnxGraph graph, string[] inputs, string output) =>
        graph.Node("MaxPool", layer.Name, [inputs[0]], [output],
            Ints("kernel_shape", SideArray(layer.Kernel)), Ints("strides", SideArray(layer.Stride)), Ints("pads", Pads(layer.Padding.Size)), Int("ceil_mode", 0));
}
