using SkiaSharp;
using TrainingService.Training.Data;
using TrainingService.Training.Monitoring;

namespace TrainingService.Api.Outputs;

/// <summary>Every PNG the service draws: dataset samples, filter grids and feature-map grids.</summary>
internal static class Pictures
{
    public const int MaxSampleScale = 16;

    /// <summary>
    /// Train sample <paramref name="index"/>, augmented by <paramref name="draw"/> if given, each pixel repeated
    /// <paramref name="scale"/> times in both directions: grey for one channel, RGB from the first three channels when
    /// there are three or more, otherwise the first channel as grey.
    /// </summary>
    public static byte[] Sample(ImageDataset dataset, int index, int scale, Augmentation.Draw? draw = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, dataset.Train.Count);
        ArgumentOutOfRangeException.ThrowIfLessThan(scale, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(scale, MaxSampleScale);

        int height = dataset.Height, width = dataset.Width, plane = height * width;
        ReadOnlySpan<byte> sample = dataset.Train.Images.AsSpan(index * dataset.SampleSize, dataset.SampleSize);
        if (draw is { } augmentation)
        {
            var augmented = new byte[sample.Length];
            Augmentation.Apply(sample, augmented, dataset.Channels, height, width, augmentation);
            sample = augmented;
        }

        bool rgb = dataset.Channels >= 3;
        var canvas = new Canvas(width * scale, height * scale, grey: !rgb);
        for (int y = 0; y < height * scale; y++)
        {
            int row = (y / scale) * width;
            for (int x = 0; x < width * scale; x++)
            {
                int source = row + (x / scale);
                canvas.Set(x, y, rgb ? (sample[source], sample[plane + source], sample[(2 * plane) + source]) : Grey(sample[source]));
            }
        }

        return canvas.Png();
    }

    /// <summary>
    /// One tile per filter in a square-ish grid: RGB when the filter has 3 input channels, else one grey tile per input
    /// channel (up to 16) in the filter's row. Each filter is scaled by its own largest magnitude, mid-grey = 0.
    /// </summary>
    public static byte[] Filters(FilterBank bank)
    {
        int filters = Math.Min(bank.Filters, 256);
        bool rgb = bank.Channels == 3;
        int channels = rgb ? 1 : Math.Min(bank.Channels, 16);
        int scale = Math.Clamp(40 / Math.Max(bank.Height, bank.Width), 1, 16);
        int tileH = bank.Height * scale, tileW = bank.Width * scale;
        int columns = rgb || channels == 1 ? (int)Math.Ceiling(Math.Sqrt(filters)) : channels;
        int rows = rgb || channels == 1 ? (int)Math.Ceiling(filters / (double)columns) : filters;
        var canvas = new Canvas((columns * (tileW + 1)) + 1, (rows * (tileH + 1)) + 1, grey: false);
        int plane = bank.Height * bank.Width, per = bank.Channels * plane;
        for (int f = 0; f < filters; f++)
        {
            ReadOnlySpan<float> w = bank.Weights.AsSpan(f * per, per);
            float max = 0;
            foreach (float v in w)
            {
                max = Math.Max(max, Math.Abs(v));
            }

            byte Level(float v) => (byte)Math.Clamp(127.5f + (127.5f * (max > 0 ? v / max : 0)), 0, 255);
            for (int c = 0; c < channels; c++)
            {
                int tile = rgb || channels == 1 ? f : (f * columns) + c;
                int x0 = 1 + ((tile % columns) * (tileW + 1)), y0 = 1 + ((tile / columns) * (tileH + 1));
                for (int y = 0; y < tileH; y++)
                {
                    for (int x = 0; x < tileW; x++)
                    {
                        int k = ((y / scale) * bank.Width) + (x / scale);
                        canvas.Set(x0 + x, y0 + y, rgb
                            ? (Level(w[k]), Level(w[plane + k]), Level(w[(2 * plane) + k]))
                            : Grey(Level(w[(c * plane) + k])));
                    }
                }
            }
        }

        return canvas.Png();
    }

    /// <summary>Every map of the layer in a square-ish grid, each scaled from its own minimum (black) to maximum (white).</summary>
    public static byte[] FeatureMaps(FeatureMaps maps)
    {
        int count = Math.Min(maps.Maps, 256);
        int scale = Math.Clamp(64 / Math.Max(maps.Height, maps.Width), 1, 8);
        int tileH = maps.Height * scale, tileW = maps.Width * scale;
        int columns = (int)Math.Ceiling(Math.Sqrt(count));
        int rows = (int)Math.Ceiling(count / (double)columns);
        var canvas = new Canvas((columns * (tileW + 1)) + 1, (rows * (tileH + 1)) + 1, grey: false);
        int plane = maps.Height * maps.Width;
        for (int m = 0; m < count; m++)
        {
            ReadOnlySpan<float> v = maps.Values.AsSpan(m * plane, plane);
            float min = System.Numerics.Tensors.TensorPrimitives.Min(v), max = System.Numerics.Tensors.TensorPrimitives.Max(v);
            float range = max > min ? max - min : 1;
            int x0 = 1 + ((m % columns) * (tileW + 1)), y0 = 1 + ((m / columns) * (tileH + 1));
            for (int y = 0; y < tileH; y++)
            {
                for (int x = 0; x < tileW; x++)
                {
                    canvas.Set(x0 + x, y0 + y, Grey((byte)(255 * (v[((y / scale) * maps.Width) + (x / scale)] - min) / range)));
                }
            }
        }

        return canvas.Png();
    }

    private static (byte, byte, byte) Grey(byte level) => (level, level, level);

    /// <summary>An opaque grey or RGBA picture, encoded as PNG by SkiaSharp; RGBA starts dark, so that grid gaps draw lines.</summary>
    private sealed class Canvas
    {
        private readonly int _width;
        private readonly int _height;
        private readonly int _bytesPerPixel;
        private readonly byte[] _pixels;

        public Canvas(int width, int height, bool grey)
        {
            _width = width;
            _height = height;
            _bytesPerPixel = grey ? 1 : 4;
            _pixels = new byte[width * height * _bytesPerPixel];
            for (int i = 0; !grey && i < _pixels.Length; i += 4)
            {
                (_pixels[i], _pixels[i + 1], _pixels[i + 2], _pixels[i + 3]) = ((byte)40, (byte)44, (byte)52, (byte)255);
            }
        }

        public void Set(int x, int y, (byte R, byte G, byte B) colour)
        {
            int i = ((y * _width) + x) * _bytesPerPixel;
            if (_bytesPerPixel == 1)
            {
                _pixels[i] = colour.R;
                return;
            }

            (_pixels[i], _pixels[i + 1], _pixels[i + 2]) = colour;
        }

        public byte[] Png()
        {
            var info = new SKImageInfo(_width, _height, _bytesPerPixel == 1 ? SKColorType.Gray8 : SKColorType.Rgba8888, SKAlphaType.Opaque);
            using SKImage image = SKImage.FromPixelCopy(info, _pixels, info.RowBytes);
            using SKData png = image.Encode(SKEncodedImageFormat.Png, 100);
            return png.ToArray();
        }
    }
}
