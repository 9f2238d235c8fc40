using static TorchSharp.torch;

namespace TrainingService.Training.Models;

/// <summary>One layer's tensors in a state dict, by field: "weight" is the layer's "conv1.weight".</summary>
public readonly struct LayerWeights(IReadOnlyDictionary<string, Tensor> state, string layer)
{
    /// <summary>For layers that have no weights (add, concat).</summary>
    public static LayerWeights None { get; } = new(new Dictionary<string, Tensor>(), "");

    public Tensor? Optional(string field) => state.GetValueOrDefault($"{layer}.{field}");

    public Tensor Required(string field) => state.TryGetValue($"{layer}.{field}", out Tensor? t)
        ? t
        : throw new InvalidDataException($"the weights have no {layer}.{field}");
}
