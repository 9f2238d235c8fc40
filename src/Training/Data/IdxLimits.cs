namespace TrainingService.Training.Data;

/// <summary>Size caps that <see cref="IdxReader"/> enforces before allocating, so a bad header cannot exhaust memory.</summary>
public sealed record IdxLimits
{
    /// <summary>The default limits.</summary>
    public static IdxLimits Default { get; } = new();

    /// <summary>Most images (or labels) in one file.</summary>
    public int MaxImages { get; init; } = 1_000_000;

    /// <summary>Most pixels (C×H×W) in one image.</summary>
    public int MaxPixelsPerImage { get; init; } = 1_048_576;

    /// <summary>Most bytes of data in one file, after decompression.</summary>
    public long MaxBytes { get; init; } = 2L << 30;
}
