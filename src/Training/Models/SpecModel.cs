using TorchSharp;
using TorchSharp.Modules;
using TrainingService.Training.Specs;
using static TorchSharp.torch;

namespace TrainingService.Training.Models;

/// <summary>
/// The network a valid spec describes: one named child per layer with parameters or state (conv1.weight, …),
/// evaluated in the spec's order, each layer on the outputs of the layers it names (add sums them, concat stacks their
/// channels). Unlike Sequential it can hand every layer's output to an observer, for per-layer statistics.
/// </summary>
public sealed class SpecModel : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor>?[] _layers;

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
            if (_layers[i] is null)
            {
                continue;
            }

            register_module(Plan[i].Name, _layers[i]!);
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
        var outputs = new Tensor[_layers.Length];
        Tensor Input(int j) => j == LayerPlan.ModelInput ? input : outputs[j];
        Action<int, Tensor>? observer = LayerOutputObserver;
        for (int i = 0; i < _layers.Length; i++)
        {
            int[] inputs = Plan[i].Inputs;
            outputs[i] = Plan[i].Kind switch
            {
                LayerKind.Add => Sum(inputs, Input),
                LayerKind.Concat => cat([.. inputs.Select(Input)], 1),
                _ => _layers[i]!.call(Input(inputs[0])),
            };
            observer?.Invoke(i, outputs[i]);
        }

        return outputs[^1];
    }

    /// <summary>An add's inputs summed into one new tensor (in place after the first sum: one output, not one per input).</summary>
    internal static Tensor Sum(int[] inputs, Func<int, Tensor> input)
    {
        Tensor sum = input(inputs[0]) + input(inputs[1]);
        for (int k = 2; k < inputs.Length; k++)
        {
            sum.add_(input(inputs[k]));
        }

        return sum;
    }

    /// <summary>The module of a layer; null for add and concat, which <see cref="forward"/> does itself.</summary>
    private static nn.Module<Tensor, Tensor>? Build(LayerPlan layer)
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
            LayerKind.Add or LayerKind.Concat => null,
            _ => throw new ArgumentOutOfRangeException(nameof(layer), layer.Kind, "no module for this kind"),
        };
    }

    /// <summary>Channels × height × width → channels: the mean over each feature map.</summary>
    private sealed class GlobalAvgPool() : ParameterLessModule<Tensor, Tensor>("globalavgpool")
    {
        public override Tensor forward(Tensor input) => input.mean([2, 3]);
    }
}
