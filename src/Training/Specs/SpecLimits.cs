using System.Globalization;
using TrainingService.Contracts.Specs;

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

    /// <summary>Cap on a spec's name (and a saved model's): it is listed wherever the model is.</summary>
    public int MaxNameLength { get; init; } = 100;

    /// <summary>Cap on a layer's name, kind and the names in its inputs.</summary>
    public int MaxLayerNameLength { get; init; } = 64;

    /// <summary>Errors one answer lists; the rest are counted in one more entry.</summary>
    public int MaxErrors { get; init; } = 50;

    /// <summary>The first <see cref="MaxErrors"/> errors, then one entry (field "errors") counting the rest.</summary>
    public IReadOnlyList<SpecIssue> Bounded(IReadOnlyList<SpecIssue> errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        if (errors.Count <= MaxErrors)
        {
            return errors;
        }

        int more = errors.Count - MaxErrors;
        return [.. errors.Take(MaxErrors), new SpecIssue(null, null, "errors", string.Create(CultureInfo.InvariantCulture,
            $"{more:N0} more errors not listed: an answer lists at most {MaxErrors} (configuration Specs:MaxErrors)"))];
    }
}
