namespace TrainingService.Training.Data;

/// <summary>
/// Generates the built-in <c>shapes</c> dataset: one filled or outlined geometric shape per image, at a random
/// position, size and brightness on a noisy background.
/// </summary>
public static class ShapesDataset
{
    /// <summary>The dataset name.</summary>
    public const string Name = "shapes";

    private const float StarEdgeDistance = 0.30901699f;

    // Standard deviation of the sum of two independent uniform bytes.
    private const float TriangularStd = 104.51f;

    /// <summary>Names of the classes, by label; a dataset with k classes uses the first k.</summary>
    public static IReadOnlyList<string> ClassNames { get; } =
        ["circle", "square", "triangle", "plus", "ring", "bar", "diamond", "hollow square", "x", "star"];

    /// <summary>Generates the dataset described by <paramref name="options"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range (see <see cref="ShapesOptions.Validate"/>).</exception>
    public static ImageDataset Generate(ShapesOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var random = new Random(options.Seed);
        ImageSplit train = GenerateSplit(options, options.Samples, random);
        ImageSplit? test = options.TestSamples > 0 ? GenerateSplit(options, options.TestSamples, random) : null;
        (float[] mean, float[] std) = ImageStatistics.MeanStd(train.Images, options.Channels, options.ImageSize, options.ImageSize);
        return new ImageDataset
        {
            Name = Name,
            Channels = options.Channels,
            Height = options.ImageSize,
            Width = options.ImageSize,
            Classes = options.Classes,
            Train = train,
            Test = test,
            Mean = mean,
            Std = std,
        };
    }

    private static ImageSplit GenerateSplit(ShapesOptions options, int count, Random random)
    {
        var labels = new byte[count];
        for (int i = 0; i < count; i++)
        {
            labels[i] = (byte)(i % options.Classes);
        }

        random.Shuffle(labels);
        var seeds = new ulong[count];
        for (int i = 0; i < count; i++)
        {
            seeds[i] = (ulong)random.NextInt64();
        }

        int size = options.ImageSize;
        int sample = options.Channels * size * size;
        var images = new byte[(long)count * sample];
        Parallel.For(0, count, i =>
            Render(images.AsSpan(i * sample, sample), labels[i], size, options.Channels, new SplitMix64(seeds[i])));
        return new ImageSplit { Images = images, Labels = labels };
    }

    private static void Render(Span<byte> image, int shape, int size, int channels, SplitMix64 rng)
    {
        float radius = size * (0.3f + (0.5f * rng.NextFloat())) / 2;
        float cx = radius + ((size - (2 * radius)) * rng.NextFloat());
        float cy = radius + ((size - (2 * radius)) * rng.NextFloat());
        float foreground = 130 + (125 * rng.NextFloat());
        float noiseScale = (6 + (12 * rng.NextFloat())) / TriangularStd;

        Span<bool> mask = stackalloc bool[size * size];
        Rasterise(mask, shape, size, cx, cy, radius);

        Span<float> colour = stackalloc float[channels];
        if (channels == 1)
        {
            colour[0] = 1;
        }
        else
        {
            float max = 0;
            for (int c = 0; c < channels; c++)
            {
                colour[c] = rng.NextFloat();
                max = Math.Max(max, colour[c]);
            }

            for (int c = 0; c < channels; c++)
            {
                colour[c] = 0.2f + (0.8f * colour[c] / max);
            }
        }

        int plane = size * size;
        for (int c = 0; c < channels; c++)
        {
            float background = 50 * rng.NextFloat();
            float ink = foreground * colour[c];
            Span<byte> pixels = image.Slice(c * plane, plane);
            // 8.8 fixed point keeps the per-pixel work in integers.
            int bg = (int)(background * 256) + 128, fg = (int)(ink * 256) + 128;
            int scale = (int)(noiseScale * 256);
            ulong bits = 0;
            for (int p = 0; p < plane; p++)
            {
                if ((p & 3) == 0)
                {
                    bits = rng.Next();
                }

                // Sum of two uniform bytes: a cheap bell-ish (triangular) noise centred on zero.
                int noise = (int)(bits & 0xFF) + (int)((bits >> 8) & 0xFF) - 255;
                bits >>= 16;
                pixels[p] = (byte)Math.Clamp(((mask[p] ? fg : bg) + (noise * scale)) >> 8, 0, 255);
            }
        }
    }

    private static void Rasterise(Span<bool> mask, int shape, int size, float cx, float cy, float radius)
    {
        float inverse = 1 / radius;
        int x0 = Math.Max(0, (int)(cx - radius)), x1 = Math.Min(size, (int)MathF.Ceiling(cx + radius));
        int y0 = Math.Max(0, (int)(cy - radius)), y1 = Math.Min(size, (int)MathF.Ceiling(cy + radius));
        for (int y = y0; y < y1; y++)
        {
            float v = (y + 0.5f - cy) * inverse;
            for (int x = x0; x < x1; x++)
            {
                float u = (x + 0.5f - cx) * inverse;
                mask[(y * size) + x] = Contains(shape, u, v);
            }
        }
    }

    // (u, v) is the pixel centre relative to the shape centre in units of its half-size; v grows downwards.
    private static bool Contains(int shape, float u, float v) => shape switch
    {
        0 => (u * u) + (v * v) <= 1,
        1 => Math.Abs(u) <= 0.9f && Math.Abs(v) <= 0.9f,
        2 => v <= 1 && Math.Abs(u) <= (v + 1) / 2,
        3 => Math.Max(Math.Abs(u), Math.Abs(v)) <= 1 && Math.Min(Math.Abs(u), Math.Abs(v)) <= 0.3f,
        4 => (u * u) + (v * v) is <= 1 and >= 0.3f,
        5 => Math.Abs(u) <= 1 && Math.Abs(v) <= 0.3f,
        6 => Math.Abs(u) + Math.Abs(v) <= 1,
        7 => Math.Max(Math.Abs(u), Math.Abs(v)) is <= 0.9f and >= 0.5f,
        8 => Math.Max(Math.Abs(u), Math.Abs(v)) <= 1 && Math.Abs(Math.Abs(u) - Math.Abs(v)) <= 0.4f,
        _ => InStar(u, v),
    };

    // Unit vectors to the five tips of a star with its first tip at the top (y grows downwards).
    private static ReadOnlySpan<float> StarX => [0f, 0.95105652f, 0.58778525f, -0.58778525f, -0.95105652f];

    private static ReadOnlySpan<float> StarY => [-1f, -0.30901699f, 0.80901699f, 0.80901699f, -0.30901699f];

    // A filled pentagram is the set of points beyond at most one of the five lines joining every second tip.
    private static bool InStar(float u, float v)
    {
        int outside = 0;
        for (int k = 0; k < 5; k++)
        {
            if ((u * StarX[k]) + (v * StarY[k]) > StarEdgeDistance)
            {
                outside++;
            }
        }

        return outside <= 1;
    }

    private struct SplitMix64(ulong state)
    {
        private ulong _state = state;

        public ulong Next()
        {
            ulong z = _state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }

        public float NextFloat() => (Next() >> 40) * (1f / (1 << 24));
    }
}
