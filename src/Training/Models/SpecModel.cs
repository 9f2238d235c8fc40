using TorchSharp;
using TorchSharp.Modules;
using TrainingService.Training.Specs;
using static TorchSharp.torch;

namespace TrainingService.Training.Models;

/// <summary>
/// The network a valid spec describes: one named child per layer (conv1.weight, …), applied in order.
/// Unlike Sequential it can hand every layer's output to an observer, for per-layer statistics.
/// </summary>
public sealed class SpecModel : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor>[] _layers;

    public SpecModel(SpecAnalysis analysis)
        : base(nameof(SpecModel))
    {
        if (!analysis.IsValid)
        {
            throw new ArgumentException("the spec has errors: " + string.Join("; ", analysis.Result.Errors.Select(e => e.Message)), nameof(analysis));
        }

        Plan = analysis.Plan;
        _layers = [.. Plan.Select(Build)];
        for (int i = 0; i < _layers.Length; i++)
        {
            register_module(Plan[i].Name, _layers[i]);
            if (Plan[i].BiasInit is { } value)
            {
                using var noGrad = no_grad();
                Parameter? bias = _layers[i] switch { Conv2d c => c.bias, Linear l => l.bias, _ => null };
                bias?.fill_(value);
            }
        }
    }

    public IReadOnlyList<LayerPlan> Plan { get; }

    /// <summary>Called with each layer's index and output during forward while set; the tensor lives until the step's dispose scope ends.</summary>
    public Action<int, Tensor>? LayerOutputObserver { get; set; }

    public override Tensor forward(Tensor input)
    {
        Tensor x = input;
        Action<int, Tensor>? observer = LayerOutputObserver;
        for (int i = 0; i < _layers.Length; i++)
        {
            x = _layers[i].call(x);
            observer?.Invoke(i, x);
        }

        return x;
    }

    private static nn.Module<Tensor, Tensor> Build(LayerPlan layer)
    {
        (long, long) Pair(Contracts.Specs.IntPair p) => (p.Height, p.Width);
        return layer.Kind switch
        {
            LayerKind.Conv2d when layer.Padding.Same => nn.Conv2d(
                layer.InputShape[0], layer.Filters, Pair(layer.Kernel), Padding.Same, stride: Pair(layer.Stride), dilation: Pair(layer.Dilation), bias: layer.Bias),
            LayerKind.Conv2d => nn.Conv2d(
                layer.InputShape[0], layer.Filters, Pair(layer.Kernel), stride: Pair(layer.Stride), padding: Pair(layer.Padding.Size), dilation: Pair(layer.Dilation), bias: layer.Bias),
            LayerKind.MaxPool2d => nn.MaxPool2d(Pair(layer.Kernel), Pair(layer.Stride), Pair(layer.Padding.Size)),
            LayerKind.AvgPool2d => nn.AvgPool2d(Pair(layer.Kernel), Pair(layer.Stride), Pair(layer.Padding.Size)),
            LayerKind.Relu => nn.ReLU(),
            LayerKind.LeakyRelu => nn.LeakyReLU(layer.Slope),
            LayerKind.Sigmoid => nn.Sigmoid(),
            LayerKind.Tanh => nn.Tanh(),
            LayerKind.BatchNorm2d => nn.BatchNorm2d(layer.InputShape[0], layer.Eps, layer.Momentum),
            LayerKind.Dropout => nn.Dropout(layer.P),
            LayerKind.Flatten => nn.Flatten(),
            LayerKind.Linear => nn.Linear(layer.InputShape[0], layer.Units, layer.Bias),
            LayerKind.GlobalAvgPool => new GlobalAvgPool(),
            _ => throw new ArgumentOutOfRangeException(nameof(layer), layer.Kind, "no module for this kind"),
        };
    }

    /// <summary>Channels × height × width → channels: the mean over each feature map.</summary>
    private sealed class GlobalAvgPool() : ParameterLessModule<Tensor, Tensor>("globalavgpool")
    {
        public override Tensor forward(Tensor input) => input.mean([2, 3]);
    }
}
