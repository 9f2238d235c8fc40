using SkiaSharp;
using TrainingService.Training.Data;

namespace TrainingService.Api.Datasets;

/// <summary>Renders one sample of a dataset as a PNG image.</summary>
internal static class SamplePng
{
    public const int MaxScale = 16;

    /// <summary>
    /// Encodes train sample <paramref name="index"/>, augmented by <paramref name="draw"/> if given, each pixel repeated
    /// <paramref name="scale"/> times in both directions: grey for one channel, RGB from the first three channels when
    /// there are three or more, otherwise the first channel as grey.
    /// </summary>
    public static byte[] Encode(ImageDataset dataset, int index, int scale, Augmentation.Draw? draw = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, dataset.Train.Count);
        ArgumentOutOfRangeException.ThrowIfLessThan(scale, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(scale, MaxScale);

        int height = dataset.Height, width = dataset.Width, plane = height * width;
        ReadOnlySpan<byte> sample = dataset.Train.Images.AsSpan(index * dataset.SampleSize, dataset.SampleSize);
        if (draw is { } augmentation)
        {
            var augmented = new byte[sample.Length];
            Augmentation.Apply(sample, augmented, dataset.Channels, height, width, augmentation);
            sample = augmented;
        }
        bool rgb = dataset.Channels >= 3;
        int bytesPerPixel = rgb ? 4 : 1;
        int outWidth = width * scale, outHeight = height * scale;
        var pixels = new byte[outWidth * outHeight * bytesPerPixel];
        for (int y = 0; y < outHeight; y++)
        {
            int row = (y / scale) * width;
            for (int x = 0; x < outWidth; x++)
            {
                int source = row + (x / scale);
                int target = ((y * outWidth) + x) * bytesPerPixel;
                if (rgb)
                {
                    pixels[target] = sample[source];
                    pixels[target + 1] = sample[plane + source];
                    pixels[target + 2] = sample[(2 * plane) + source];
                    pixels[target + 3] = 255;
                }
                else
                {
                    pixels[target] = sample[source];
                }
            }
        }

        var info = new SKImageInfo(outWidth, outHeight, rgb ? SKColorType.Rgba8888 : SKColorType.Gray8, SKAlphaType.Opaque);
        using SKImage image = SKImage.FromPixelCopy(info, pixels, info.RowBytes);
        using SKData png = image.Encode(SKEncodedImageFormat.Png, 100);
        return png.ToArray();
    }
}
