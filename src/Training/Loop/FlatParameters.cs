using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TrainingService.Training.Loop;

/// <summary>
/// A model's parameters as views of one contiguous tensor, their gradients as views of another, and one parameter over
/// the whole (<see cref="All"/>) for the optimizer. An optimizer's step is then a handful of libtorch calls on one tensor
/// rather than a handful per parameter tensor, and zeroing the gradients one call. Each call costs microseconds whatever
/// its size, and the step and the zeroing run on one thread between the halves' passes (LeNet-5, 10 parameter tensors:
/// they took 0.13–0.32 ms of each step before; the service +6%, docs/benchmarks.md). SGD, Adam and AdamW are
/// elementwise: the flat update is the per-tensor update's arithmetic on every value.
/// </summary>
/// <remarks>
/// The model keeps the parameters it registered: their storage is pointed at the flat tensor (set_), so the statistics,
/// checkpoints and export read them as before. Autograd accumulates into the gradients in place (a defined gradient is
/// added to, never replaced, outside create_graph), so they stay views of the flat gradient; the optimizer's zero_grad
/// zeroes it in place.
/// </remarks>
internal sealed class FlatParameters : IDisposable
{
    private FlatParameters(Parameter all) => All = all;

    /// <summary>The flat parameter the optimizer updates; its gradient is every parameter's, in the model's order.</summary>
    public Parameter All { get; }

    public static FlatParameters Of(nn.Module model)
    {
        Parameter[] parameters = [.. model.parameters()];
        if (parameters.Length == 0 || parameters.Any(p => p.dtype != parameters[0].dtype || p.device_type != TorchSharp.DeviceType.CPU || !p.requires_grad))
        {
            throw new ArgumentException("a model whose parameters are all trainable CPU tensors of one type", nameof(model));
        }

        long total = parameters.Sum(p => p.numel());
        Tensor values = empty(total, parameters[0].dtype);
        Tensor gradients = zeros(total, parameters[0].dtype);
        using (no_grad())
        {
            long offset = 0;
            foreach (Parameter parameter in parameters)
            {
                long count = parameter.numel();
                using Tensor value = values.narrow(0, offset, count).view(parameter.shape);
                value.copy_(parameter);
                parameter.set_(value);
                using Tensor gradient = gradients.narrow(0, offset, count).view(parameter.shape);
                parameter.grad = gradient;
                offset += count;
            }
        }

        var all = new Parameter(values); // takes over values' handle
        all.grad = gradients;
        gradients.Dispose(); // the grad holds its own reference
        return new FlatParameters(all);
    }

    public void Dispose() => All.Dispose();
}
