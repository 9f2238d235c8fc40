namespace TrainingService.Training.Specs;

/// <summary>Caps that keep one spec from taking the machine.</summary>
public sealed record SpecLimits
{
    public static SpecLimits Default { get; } = new();

    public long MaxParameters { get; init; } = 50_000_000;

    public int MaxInputChannels { get; init; } = 64;

    public int MaxInputSide { get; init; } = 1024;

    public int MaxLayers { get; init; } = 500;
}
