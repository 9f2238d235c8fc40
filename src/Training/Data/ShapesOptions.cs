namespace TrainingService.Training.Data;

/// <summary>Options of the built-in synthetic <c>shapes</c> dataset.</summary>
public sealed record ShapesOptions
{
    /// <summary>The largest split, in bytes of pixels, that <see cref="Validate"/> accepts.</summary>
    public const long MaxSplitBytes = 1L << 30;

    /// <summary>Number of shape classes, 2..10, taken in the order of <see cref="ShapesDataset.ClassNames"/>.</summary>
    public int Classes { get; init; } = 4;

    /// <summary>Training images, 1..200000.</summary>
    public int Samples { get; init; } = 2000;

    /// <summary>Test images, 0..100000; 0 means no test split.</summary>
    public int TestSamples { get; init; } = 500;

    /// <summary>Image side in pixels, 16..64.</summary>
    public int ImageSize { get; init; } = 28;

    /// <summary>1 (grey) or 3 (random colour per sample).</summary>
    public int Channels { get; init; } = 1;

    /// <summary>Seed of the generator; the same options always give byte-identical data.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>Checks every option against its allowed range.</summary>
    /// <exception cref="ArgumentOutOfRangeException">
    /// An option is out of range; <see cref="ArgumentException.ParamName"/> is the option's camelCase name.
    /// </exception>
    public void Validate()
    {
        Check(Classes, 2, 10, "classes");
        Check(Samples, 1, 200_000, "samples");
        Check(TestSamples, 0, 100_000, "testSamples");
        Check(ImageSize, 16, 64, "imageSize");
        if (Channels is not (1 or 3))
        {
            throw new ArgumentOutOfRangeException("channels", $"channels must be 1 or 3, but was {Channels}.");
        }

        CheckBytes(Samples, "samples");
        CheckBytes(TestSamples, "testSamples");
    }

    private void CheckBytes(int samples, string name)
    {
        long bytes = (long)samples * Channels * ImageSize * ImageSize;
        if (bytes > MaxSplitBytes)
        {
            throw new ArgumentOutOfRangeException(
                name,
                $"{name} × channels × imageSize² must be at most {MaxSplitBytes:N0} bytes, but {samples} × {Channels} × {ImageSize}² is {bytes:N0}.");
        }
    }

    private static void Check(int value, int min, int max, string name)
    {
        if (value < min || value > max)
        {
            throw new ArgumentOutOfRangeException(name, $"{name} must be between {min} and {max}, but was {value}.");
        }
    }
}
