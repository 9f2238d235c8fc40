using TorchSharp.Modules;
using TrainingService.Contracts.Specs;
using TrainingService.Training.Export;
using TrainingService.Training.Models;
using static TorchSharp.torch;
using static TrainingService.Training.Export.OnnxGraph;
using F = TorchSharp.torch.nn.functional;

namespace TrainingService.Training.Specs.Kinds;

/// <summary>conv2d: filters × kernel over the input channels (or its group's share of them), with stride, padding (or "same") and dilation.</summary>
public sealed class Conv2dKind : WindowKind
{
    public override string Name => "conv2d";

    public override string AutoNamePrefix => "conv";

    public override IReadOnlyList<string> Fields => ["filters", "kernel", "stride", "padding", "dilation", "groups", "bias", "biasInit"];

    private protected override string WindowWord => "kernel";

    internal override LayerPlan Resolve(LayerPlan plan, LayerSpec layer, LayerCheck check)
    {
        plan = plan with
        {
            Filters = check.RequirePositive("filters", layer.Filters),
            Kernel = check.RequirePair("kernel", layer.Kernel),
            Stride = check.PositivePair("stride", layer.Stride ?? 1),
            Dilation = check.PositivePair("dilation", layer.Dilation ?? 1),
            Padding = check.NonNegativePadding(layer.Padding ?? 0),
            Groups = layer.Groups ?? 1,
            Bias = layer.Bias ?? true,
            BiasInit = check.BiasInit(layer),
        };
        if (plan.Groups < 1)
        {
            check.Error("groups", $"groups must be at least 1, got {plan.Groups}");
        }

        if (plan.Padding.Same && (plan.Stride.Height != 1 || plan.Stride.Width != 1))
        {
            check.Error("padding", $"padding \"same\" needs stride 1 (as in PyTorch), but stride is {plan.Stride}; give the padding as a number instead");
        }

        return plan;
    }

    private protected override (long Channels, long Parameters, long MultiplyAdds)? Count(LayerAnalysis layer, int height, int width)
    {
        LayerPlan plan = layer.Plan;
        int channels = layer.Input[0], groups = plan.Groups;
        if (channels % groups != 0 || plan.Filters % groups != 0)
        {
            layer.Error("groups", channels % groups != 0
                ? $"groups {groups} does not divide the {channels} input channels: each group takes an equal share of them"
                : $"groups {groups} does not divide the {plan.Filters} filters: each group makes an equal share of them");
            return null;
        }

        channels /= groups;
        try
        {
            long perFilter = checked((long)channels * plan.Kernel.Height * plan.Kernel.Width);
            return (plan.Filters, checked(plan.Filters * (perFilter + (plan.Bias ? 1 : 0))), checked((long)height * width * plan.Filters * perFilter));
        }
        catch (OverflowException)
        {
            layer.Error("filters", $"{plan.Filters} filters of {SpecText.Window(plan.Kernel)}×{channels} make more parameters or multiply-adds than 64 bits can count");
            return null;
        }
    }

    internal override nn.Module<Tensor, Tensor> CreateModule(LayerPlan layer, Generator generator)
    {
        (Parameter weight, Parameter? bias) = InitialParameters(WeightShape(layer), layer.Bias, layer.BiasInit, generator);
        return new Convolution(layer, weight, bias);
    }

    internal override Tensor Forward(LayerPlan layer, IReadOnlyList<Tensor> inputs, LayerWeights weights)
    {
        return layer.Padding.Same
            ? F.conv2d_padding(inputs[0], weights.Required("weight"), weights.Optional("bias"), SideArray(layer.Stride), TorchSharp.Padding.Same, SideArray(layer.Dilation), layer.Groups)
            : F.conv2d(inputs[0], weights.Required("weight"), weights.Optional("bias"), SideArray(layer.Stride), SideArray(layer.Padding.Size), SideArray(layer.Dilation), layer.Groups);
    }

    internal override void ToOnnx(LayerPlan layer, OnnxGraph graph, string[] inputs, string output)
    {
        long[] pads = Pads(layer.Padding.Size);
        if (layer.Padding.Same)
        {
            (long h, long w) = SamePadding(layer);
            pads = [h / 2, w / 2, h - (h / 2), w - (w / 2)];
        }

        string weight = graph.Weight(layer, "weight", WeightShape(layer));
        graph.Node("Conv", layer.Name, [inputs[0], weight, .. graph.OptionalBias(layer, layer.Filters)], [output],
            Ints("kernel_shape", SideArray(layer.Kernel)), Ints("strides", SideArray(layer.Stride)), Ints("pads", pads),
            Ints("dilations", SideArray(layer.Dilation)), Int("group", layer.Groups));
    }

    /// <summary>[filters, input channels per group, kernel height, kernel width], as PyTorch lays it out.</summary>
    private static long[] WeightShape(LayerPlan layer) =>
        [layer.Filters, layer.InputShape[0] / layer.Groups, layer.Kernel.Height, layer.Kernel.Width];

    /// <summary>PyTorch's "same": total padding dilation·(kernel−1) per axis, the odd pixel at the bottom/right.</summary>
    private static (long Height, long Width) SamePadding(LayerPlan layer) =>
        (layer.Dilation.Height * (layer.Kernel.Height - 1), layer.Dilation.Width * (layer.Kernel.Width - 1));

    /// <summary>TorchSharp's Conv2d without its constructor's draws from the global generator.</summary>
    private sealed class Convolution : nn.Module<Tensor, Tensor>
    {
        private readonly Parameter _weight;
        private readonly Parameter? _bias;
        private readonly long[] _stride, _padding, _dilation;
        private readonly long _groups;
        private readonly bool _same;

        public Convolution(LayerPlan layer, Parameter weight, Parameter? bias)
            : base("Conv2d")
        {
            _weight = weight;
            _bias = bias;
            _stride = SideArray(layer.Stride);
            _padding = SideArray(layer.Padding.Size);
            _dilation = SideArray(layer.Dilation);
            _groups = layer.Groups;
            _same = layer.Padding.Same;
            register_parameter("weight", weight);
            if (bias is not null)
            {
                register_parameter("bias", bias);
            }
        }

        public override Tensor forward(Tensor input) => _same
            ? F.conv2d_padding(input, _weight, _bias, _stride, TorchSharp.Padding.Same, _dilation, _groups)
            : F.conv2d(input, _weight, _bias, _stride, _padding, _dilation, _groups);

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _weight.Dispose();
                _bias?.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
