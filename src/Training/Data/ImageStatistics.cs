namespace TrainingService.Training.Data;

/// <summary>Per-channel normalisation statistics of raw 0..255 NCHW images.</summary>
public static class ImageStatistics
{
    /// <summary>The smallest standard deviation returned, so that normalising never divides by zero.</summary>
    public const float MinStd = 1e-6f;

    /// <summary>
    /// Computes the per-channel mean and population standard deviation of pixel/255 over all images.
    /// </summary>
    /// <param name="images">N×C×H×W row-major pixels.</param>
    /// <param name="channels">C.</param>
    /// <param name="height">H.</param>
    /// <param name="width">W.</param>
    /// <returns>Mean and std per channel; std is clamped to at least <see cref="MinStd"/>.</returns>
    public static (float[] Mean, float[] Std) MeanStd(byte[] images, int channels, int height, int width)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentOutOfRangeException.ThrowIfLessThan(channels, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        int plane = height * width;
        int sample = channels * plane;
        if (images.Length % sample != 0)
        {
            throw new ArgumentException(
                $"Image buffer of {images.Length} bytes is not a whole number of {channels}×{height}×{width} images.",
                nameof(images));
        }

        long[][] histograms = Histograms(images, channels, plane, sample);
        var mean = new float[channels];
        var std = new float[channels];
        for (int c = 0; c < channels; c++)
        {
            double n = 0, sum = 0, sumSquares = 0;
            for (int v = 0; v < 256; v++)
            {
                double count = histograms[c][v];
                n += count;
                sum += count * v;
                sumSquares += count * v * v;
            }

            if (n == 0)
            {
                std[c] = MinStd;
                continue;
            }

            double m = sum / n;
            double variance = Math.Max(0, (sumSquares / n) - (m * m));
            mean[c] = (float)(m / 255);
            std[c] = Math.Max(MinStd, (float)(Math.Sqrt(variance) / 255));
        }

        return (mean, std);
    }

    private static long[][] Histograms(byte[] images, int channels, int plane, int sample)
    {
        int count = images.Length / sample;
        var totals = new long[channels][];
        for (int c = 0; c < channels; c++)
        {
            totals[c] = new long[256];
        }

        const int ImagesPerChunk = 4096;
        int chunks = (count + ImagesPerChunk - 1) / ImagesPerChunk;
        var gate = new object();
        Parallel.For(0, chunks, () => new int[channels * 256 * 4], (chunk, _, local) =>
        {
            int end = Math.Min(count, (chunk + 1) * ImagesPerChunk);
            for (int i = chunk * ImagesPerChunk; i < end; i++)
            {
                for (int c = 0; c < channels; c++)
                {
                    CountPlane(images.AsSpan((i * sample) + (c * plane), plane), local.AsSpan(c * 1024, 1024));
                }
            }

            return local;
        }, local =>
        {
            lock (gate)
            {
                for (int c = 0; c < channels; c++)
                {
                    for (int v = 0; v < 256; v++)
                    {
                        int o = (c * 1024) + v;
                        totals[c][v] += (long)local[o] + local[o + 256] + local[o + 512] + local[o + 768];
                    }
                }
            }
        });
        return totals;
    }

    // Four interleaved histograms avoid the store-to-load stall when neighbouring pixels share a value.
    private static void CountPlane(ReadOnlySpan<byte> pixels, Span<int> histogram)
    {
        Span<int> h0 = histogram[..256], h1 = histogram.Slice(256, 256), h2 = histogram.Slice(512, 256), h3 = histogram[768..];
        int i = 0;
        for (; i + 4 <= pixels.Length; i += 4)
        {
            h0[pixels[i]]++;
            h1[pixels[i + 1]]++;
            h2[pixels[i + 2]]++;
            h3[pixels[i + 3]]++;
        }

        for (; i < pixels.Length; i++)
        {
            h0[pixels[i]]++;
        }
    }
}
