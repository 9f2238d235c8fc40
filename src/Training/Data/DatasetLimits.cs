using System.Globalization;

namespace TrainingService.Training.Data;

/// <summary>
/// What a dataset may hold, checked from its shape before its pixels are allocated: by every reader on upload and by
/// the store's reader on load, from one object, so a dataset that was accepted always loads. Bound from the
/// configuration section <see cref="Section"/>; every refusal names its key.
/// </summary>
public class DatasetLimits
{
    /// <summary>The configuration section the limits are bound from.</summary>
    public const string Section = "Uploads";

    /// <summary>Most images in one split; 1,000,000 by default.</summary>
    public int MaxImages { get; set; } = 1_000_000;

    /// <summary>Most channels of an image; 64 by default, as Specs:MaxInputChannels.</summary>
    public int MaxChannels { get; set; } = 64;

    /// <summary>Longest side (height or width) of an image; 1024 by default, as Specs:MaxInputSide.</summary>
    public int MaxSide { get; set; } = 1024;

    /// <summary>
    /// Most bytes of pixels of a dataset, train and test together (count × channels × height × width); 1 GiB by default:
    /// CIFAR-10/100 hold 184 MB and Fashion-MNIST 55 MB.
    /// </summary>
    public long MaxDatasetBytes { get; set; } = 1L << 30;

    /// <summary>
    /// Most decompressed bytes per compressed byte, counted while decompressing (an archive's entry, a .tar.gz, a gzip IDX
    /// file), once past <see cref="DecodeBudget.RatioGraceBytes"/>; 100 by default.
    /// </summary>
    public int MaxCompressionRatio { get; set; } = 100;

    /// <summary>Most bytes the compressed files of one upload may expand to, all together, counted while decompressing; 2 GiB by default.</summary>
    public long MaxUncompressedBytes { get; set; } = 2L << 30;

    /// <summary>The configuration key of a limit, for messages: Uploads:MaxSide.</summary>
    public static string Key(string limit) => $"{Section}:{limit}";

    /// <summary>
    /// Refuses <paramref name="count"/> images of <paramref name="channels"/>×<paramref name="height"/>×<paramref name="width"/>
    /// that break a limit, given <paramref name="bytesBefore"/> bytes of the dataset's other splits; returns the split's bytes.
    /// </summary>
    /// <param name="field">The input at fault, named in the exception.</param>
    /// <exception cref="DatasetFormatException">A limit is broken; its <see cref="DatasetFormatException.Limit"/> names it.</exception>
    public long Check(string field, long count, int channels, int height, int width, long bytesBefore = 0)
    {
        string Shape() => channels == 1 ? $"{height}×{width}" : $"{channels}×{height}×{width}";
        if (channels > MaxChannels)
        {
            throw TooLarge(field, nameof(MaxChannels), $"images of {Shape()} have {N(channels)} channels, over the limit of {N(MaxChannels)}");
        }

        if (height > MaxSide || width > MaxSide)
        {
            throw TooLarge(field, nameof(MaxSide), $"images of {Shape()} have a side over the limit of {N(MaxSide)} pixels");
        }

        if (count > MaxImages)
        {
            throw TooLarge(field, nameof(MaxImages), $"{N(count)} images exceed the limit of {N(MaxImages)} per split");
        }

        long bytes = count * channels * height * width;
        if (bytesBefore + bytes > MaxDatasetBytes)
        {
            string others = bytesBefore > 0 ? $" (and {N(bytesBefore)} of the other split)" : "";
            throw TooLarge(
                field,
                nameof(MaxDatasetBytes),
                $"{N(count)} images of {Shape()} are {N(bytes)} bytes{others}, over the limit of {N(MaxDatasetBytes)} bytes for a dataset");
        }

        if (bytes > Array.MaxLength)
        {
            throw new DatasetFormatException(field, $"too large: {N(count)} images of {Shape()} are {N(bytes)} bytes, over {N(Array.MaxLength)}, the most one split can hold");
        }

        return bytes;
    }

    /// <summary>A refusal for breaking the limit <paramref name="limit"/> (a property name), its key in the message.</summary>
    public static DatasetFormatException TooLarge(string field, string limit, string detail, Exception? inner = null) =>
        new(field, $"too large: {detail} (configuration {Key(limit)})", inner) { Limit = Key(limit) };

    private static string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);
}
