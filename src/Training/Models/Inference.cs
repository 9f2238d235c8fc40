using TrainingService.Training.Export;
using TrainingService.Training.Specs;
using static TorchSharp.torch;

namespace TrainingService.Training.Models;

/// <summary>
/// A spec's forward pass in evaluation mode from a state dict, with each kind's functional torch ops: no module is
/// built and nothing random is drawn, so any thread may call it. Matches <see cref="SpecModel"/> in eval mode (tested
/// on every preset).
/// </summary>
public sealed class Inference : IDisposable
{
    /// <summary>
    /// Up to this many images run on the calling thread alone: each layer is then microseconds of work, and waking a
    /// second intra-op thread (and making one for every thread-pool thread that serves a request) costs more than it saves.
    /// </summary>
    private const int SmallBatch = 16;

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
        UseThreads(x.shape[0] <= SmallBatch ? 1 : Environment.ProcessorCount);
        using var noGrad = no_grad();
        var outputs = new Tensor[_plan.Count];
        Tensor Input(int j) => j == LayerPlan.ModelInput ? x : outputs[j];
        foreach (LayerPlan layer in _plan)
        {
            outputs[layer.Index] = layer.Kind.Forward(layer, [.. layer.Inputs.Select(Input)], new LayerWeights(_state, layer.Name));
            observer?.Invoke(layer, outputs[layer.Index]);
        }

        return outputs[^1];
    }

    /// <summary>libtorch's intra-op thread count is the calling thread's own once read; set only when it differs.</summary>
    private static void UseThreads(int threads)
    {
        if (get_num_threads() != threads)
        {
            set_num_threads(threads);
        }
    }

    public void Dispose()
    {
        foreach (Tensor t in _state.Values)
        {
            t.Dispose();
        }
    }
}
