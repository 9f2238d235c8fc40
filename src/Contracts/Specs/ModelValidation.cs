namespace TrainingService.Contracts.Specs;

/// <summary>What a model spec computes, layer by layer, or why it cannot be built.</summary>
public sealed record ModelValidationResult
{
    /// <summary>True when the spec has no errors and can be trained.</summary>
    public required bool Valid { get; init; }

    /// <summary>The network's output shape for one sample (e.g. [10]); null when inference stopped at an error.</summary>
    public int[]? OutputShape { get; init; }

    /// <summary>Learnable parameters over all layers inferred so far.</summary>
    public long TotalParameters { get; init; }

    /// <summary>Multiply-adds of one forward pass of one sample (convolutions and linear layers).</summary>
    public long TotalMultiplyAdds { get; init; }

    /// <summary>Bytes of all layer outputs for one sample in float32 (what a forward pass keeps for backpropagation).</summary>
    public long TotalActivationBytes { get; init; }

    /// <summary>Per layer, in order, as far as shape inference got.</summary>
    public required IReadOnlyList<LayerReport> Layers { get; init; }

    /// <summary>Things that work but are probably not meant, e.g. a window that drops the last rows of its input.</summary>
    public required IReadOnlyList<SpecIssue> Warnings { get; init; }

    /// <summary>Why the spec cannot be built; empty when valid.</summary>
    public required IReadOnlyList<SpecIssue> Errors { get; init; }
}

/// <summary>One layer's inferred output and cost.</summary>
/// <param name="Index">Position in the spec's layers, from 0.</param>
/// <param name="Name">The layer's name, given or automatic.</param>
/// <param name="Kind">The layer's kind.</param>
/// <param name="OutputShape">Output of one sample: [channels, height, width] or [features].</param>
/// <param name="Parameters">Learnable parameters (weights and biases).</param>
/// <param name="MultiplyAdds">Multiply-adds for one sample.</param>
/// <param name="ReceptiveField">[height, width] of the input region one output unit sees; null after flattening.</param>
/// <param name="Jump">[height, width] input pixels between neighbouring output units; null after flattening.</param>
/// <param name="ActivationBytes">Bytes of this layer's output for one sample in float32.</param>
public sealed record LayerReport(
    int Index,
    string Name,
    string Kind,
    int[] OutputShape,
    long Parameters,
    long MultiplyAdds,
    int[]? ReceptiveField,
    int[]? Jump,
    long ActivationBytes)
{
    /// <summary>The layers whose outputs it takes ("input" for the image): the previous one unless the spec names others.</summary>
    public IReadOnlyList<string> Inputs { get; init; } = [];
}

/// <summary>An error or warning, pinned to a layer and field where it has one.</summary>
/// <param name="LayerIndex">The layer's index, or null for the spec as a whole.</param>
/// <param name="LayerName">The layer's name, when known.</param>
/// <param name="Field">The JSON path of the field, e.g. "layers[3].kernel".</param>
/// <param name="Message">What is wrong and why, with the numbers.</param>
public sealed record SpecIssue(int? LayerIndex, string? LayerName, string Field, string Message);
