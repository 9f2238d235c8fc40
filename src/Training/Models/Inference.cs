using TrainingService.Training.Export;
using TrainingService.Training.Specs;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TrainingService.Training.Models;

/// <summary>
/// A spec's forward pass in evaluation mode from a state dict, with functional torch ops: no module is built, so
/// nothing is drawn from torch's global random generator (a running job's dropout draws from it) and any thread may
/// call it. Matches <see cref="SpecModel"/> in eval mode (tested on every preset).
/// </summary>
public sealed class Inference : IDisposable
{
    private readonly IReadOnlyList<LayerPlan> _plan;
    private readonly Dictionary<string, Tensor> _state;

    public Inference(SpecAnalysis analysis, IReadOnlyList<StateTensor> state)
    {
        if (!analysis.IsValid)
        {
            throw new ArgumentException("the spec has errors", nameof(analysis));
        }

        _plan = analysis.Plan;
        _state = state.ToDictionary(t => t.Name, ToTensor, StringComparer.Ordinal);
    }

    private static Tensor ToTensor(StateTensor t) => (ScalarType)t.ElementType switch
    {
        ScalarType.Float32 => tensor(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(t.Data).ToArray(), t.Shape),
        ScalarType.Float64 => tensor(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(t.Data).ToArray(), t.Shape),
        ScalarType.Int64 => tensor(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(t.Data).ToArray(), t.Shape),
        _ => throw new InvalidDataException($"{t.Name}: element type {t.ElementType} is not used by this service's models"),
    };

    /// <summary>Class scores (logits) for a batch of normalised images, N × C × H × W; <paramref name="observer"/> sees each layer's output.</summary>
    public Tensor Forward(Tensor x, Action<LayerPlan, Tensor>? observer = null)
    {
        using var noGrad = no_grad();
        var outputs = new Tensor[_plan.Count];
        Tensor Input(int j) => j == LayerPlan.ModelInput ? x : outputs[j];
        foreach (LayerPlan layer in _plan)
        {
            outputs[layer.Index] = layer.Kind switch
            {
                LayerKind.Add => SpecModel.Sum(layer.Inputs, Input),
                LayerKind.Concat => cat([.. layer.Inputs.Select(Input)], 1),
                _ => Apply(layer, Input(layer.Inputs[0])),
            };
            observer?.Invoke(layer, outputs[layer.Index]);
        }

        return outputs[^1];
    }

    public void Dispose()
    {
        foreach (Tensor t in _state.Values)
        {
            t.Dispose();
        }
    }

    private Tensor Apply(LayerPlan layer, Tensor x)
    {
        long[] Pair(Contracts.Specs.IntPair p) => [p.Height, p.Width];
        Tensor? Optional(string name) => _state.GetValueOrDefault($"{layer.Name}.{name}");
        Tensor Required(string name) => _state.TryGetValue($"{layer.Name}.{name}", out Tensor? t)
            ? t
            : throw new InvalidDataException($"the weights have no {layer.Name}.{name}");
        switch (layer.Kind)
        {
            case LayerKind.Conv2d:
                long[] padding = Pair(layer.Padding.Size);
                if (layer.Padding.Same)
                {
                    // PyTorch's "same": total padding dilation·(kernel−1) per side pair, the odd pixel on the bottom/right.
                    long h = layer.Dilation.Height * (layer.Kernel.Height - 1), w = layer.Dilation.Width * (layer.Kernel.Width - 1);
                    x = F.pad(x, [w / 2, w - (w / 2), h / 2, h - (h / 2)]);
                    padding = [0, 0];
                }

                return F.conv2d(x, Required("weight"), Optional("bias"), Pair(layer.Stride), padding, Pair(layer.Dilation), 1);
            case LayerKind.MaxPool2d:
                return F.max_pool2d(x, Pair(layer.Kernel), Pair(layer.Stride), Pair(layer.Padding.Size), [1, 1], false);
            case LayerKind.AvgPool2d:
                return F.avg_pool2d(x, Pair(layer.Kernel), Pair(layer.Stride), Pair(layer.Padding.Size), false, true, null);
            case LayerKind.Relu:
                return F.relu(x, false);
            case LayerKind.LeakyRelu:
                return F.leaky_relu(x, layer.Slope, false);
            case LayerKind.Sigmoid:
                return sigmoid(x);
            case LayerKind.Tanh:
                return tanh(x);
            case LayerKind.BatchNorm2d:
                return F.batch_norm(x, Required("running_mean"), Required("running_var"), Optional("weight"), Optional("bias"), false, layer.Momentum, layer.Eps);
            case LayerKind.Dropout:
                return x;
            case LayerKind.Flatten:
                return x.flatten(1);
            case LayerKind.Linear:
                return F.linear(x, Required("weight"), Optional("bias"));
            case LayerKind.GlobalAvgPool:
                return x.mean([2, 3]);
            default:
                throw new ArgumentOutOfRangeException(nameof(layer), layer.Kind, "no functional form for this kind");
        }
    }
}
