namespace TrainingService.Training.Specs;

/// <summary>Caps that keep one spec from taking the machine.</summary>
public sealed record SpecLimits
{
    public static SpecLimits Default { get; } = new();

    public long MaxParameters { get; init; } = 50_000_000;

    public int MaxInputChannels { get; init; } = 64;

    public int MaxInputSide { get; init; } = 1024;

    public int MaxLayers { get; init; } = 500;

    /// <summary>Cap on the layers one layer takes (an add or concat): an inception block merges 4.</summary>
    public int MaxInputs { get; init; } = 64;

    /// <summary>Cap on kernel, stride, padding and dilation sides: none is useful beyond the largest input.</summary>
    public int MaxWindowSide { get; init; } = 1024;

    /// <summary>Cap on all layer outputs of one sample in float32 (what a forward pass keeps for backpropagation).</summary>
    public long MaxActivationBytes { get; init; } = 1L << 30;
}
