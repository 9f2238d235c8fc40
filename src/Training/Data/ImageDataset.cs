namespace TrainingService.Training.Data;

/// <summary>
/// One split of an image dataset: raw 0..255 pixels in NCHW row-major order and one label per image.
/// </summary>
public sealed class ImageSplit
{
    /// <summary>Pixels of all images, N×C×H×W row-major, raw 0..255.</summary>
    public required byte[] Images { get; init; }

    /// <summary>One class index per image.</summary>
    public required byte[] Labels { get; init; }

    /// <summary>Number of images.</summary>
    public int Count => Labels.Length;
}

/// <summary>
/// An in-memory labelled image dataset with per-channel normalisation statistics of its train split. A record so that a
/// renamed or relabelled copy (<c>with</c>) shares the same pixel arrays.
/// </summary>
public sealed record ImageDataset
{
    /// <summary>Dataset name, e.g. "shapes" or "fashion-mnist".</summary>
    public required string Name { get; init; }

    /// <summary>Channels per image.</summary>
    public required int Channels { get; init; }

    /// <summary>Image height in pixels.</summary>
    public required int Height { get; init; }

    /// <summary>Image width in pixels.</summary>
    public required int Width { get; init; }

    /// <summary>Number of classes; every label is below it.</summary>
    public required int Classes { get; init; }

    /// <summary>The training split.</summary>
    public required ImageSplit Train { get; init; }

    /// <summary>The test split, if the dataset has one.</summary>
    public ImageSplit? Test { get; init; }

    /// <summary>Per-channel mean of pixel/255 over the train split.</summary>
    public required float[] Mean { get; init; }

    /// <summary>Per-channel population standard deviation of pixel/255 over the train split, at least 1e-6.</summary>
    public required float[] Std { get; init; }

    /// <summary>Class names by label, when the source names its classes (CIFAR's names files, image folders); otherwise null.</summary>
    public IReadOnlyList<string>? ClassNames { get; init; }

    /// <summary>Bytes (pixels) per image: Channels × Height × Width.</summary>
    public int SampleSize => Channels * Height * Width;

    /// <summary>Counts the samples of each class in <paramref name="split"/>.</summary>
    /// <exception cref="ArgumentException">A label is not below <see cref="Classes"/>.</exception>
    public int[] ClassCounts(ImageSplit split)
    {
        ArgumentNullException.ThrowIfNull(split);
        var counts = new int[Classes];
        foreach (byte label in split.Labels)
        {
            if (label >= Classes)
            {
                throw new ArgumentException($"Label {label} is not below the class count {Classes}.", nameof(split));
            }

            counts[label]++;
        }

        return counts;
    }
}
