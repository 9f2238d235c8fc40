using SkiaSharp;

namespace TrainingService.Api.Datasets;

/// <summary>How an image of another shape is made the sample's size.</summary>
internal enum Fit
{
    /// <summary>The short side fills the size; the middle is kept.</summary>
    Crop,

    /// <summary>The long side fills the size; black borders.</summary>
    Pad,

    /// <summary>Each side scaled on its own (datasets that came as fixed-size pixels: IDX, CSV, CIFAR).</summary>
    Stretch,
}

/// <summary>
/// An encoded image made into a dataset sample: decoded (JPEG at 1/2, 1/4 or 1/8 when that still leaves the pixels the
/// resize needs), turned as its EXIF orientation says a viewer shows it, fitted to the size, and written channel by channel (one channel: luminance; more: red, green, blue
/// and then zeros). Image-folder uploads and
/// predictions both use it, so a prediction sees an image exactly as training did.
/// </summary>
internal static class ImageFit
{
    /// <summary>A dataset record's fit: its own for image folders, else stretch.</summary>
    public static Fit Of(string? recorded) => recorded switch
    {
        DatasetUpload.CropFit => Fit.Crop,
        DatasetUpload.PadFit => Fit.Pad,
        _ => Fit.Stretch,
    };

    private static readonly SKSamplingOptions s_sampling = new(SKFilterMode.Linear, SKMipmapMode.Linear);

    /// <summary>Decodes <paramref name="codec"/>'s image into <paramref name="sample"/> (channels × height × width bytes); false when it cannot be decoded.</summary>
    public static bool TryDecode(SKCodec codec, int channels, int height, int width, Fit fit, Span<byte> sample, out SKCodecResult result)
    {
        (int sourceWidth, int sourceHeight) = (codec.Info.Width, codec.Info.Height);
        SKEncodedOrigin origin = codec.EncodedOrigin;
        (int shownWidth, int shownHeight) = Transposes(origin) ? (sourceHeight, sourceWidth) : (sourceWidth, sourceHeight);
        float scale = Scale(shownWidth, shownHeight, height, width, fit);
        SKSizeI size = new(sourceWidth, sourceHeight);
        if (scale < 1)
        {
            SKSizeI scaled = codec.GetScaledDimensions(scale);
            if (scaled.Width >= MathF.Ceiling(sourceWidth * scale) && scaled.Height >= MathF.Ceiling(sourceHeight * scale))
            {
                size = scaled;
            }
        }

        var info = new SKImageInfo(size.Width, size.Height, SKColorType.Rgba8888, SKAlphaType.Premul);
        using var decoded = new SKBitmap(info);
        result = codec.GetPixels(info, decoded.GetPixels());
        if (result != SKCodecResult.Success)
        {
            return false;
        }

        Resize(decoded, origin, channels, height, width, fit, sample);
        return true;
    }

    private static bool Transposes(SKEncodedOrigin origin) =>
        origin is SKEncodedOrigin.LeftTop or SKEncodedOrigin.RightTop or SKEncodedOrigin.RightBottom or SKEncodedOrigin.LeftBottom;

    /// <summary>
    /// Maps the stored pixels of a <paramref name="width"/>×<paramref name="height"/> image to where a viewer shows them
    /// (EXIF orientation: where the stored first row and first column are seen).
    /// </summary>
    private static SKMatrix Orientation(SKEncodedOrigin origin, int width, int height) => origin switch
    {
        SKEncodedOrigin.TopRight => new SKMatrix(-1, 0, width, 0, 1, 0, 0, 0, 1),
        SKEncodedOrigin.BottomRight => new SKMatrix(-1, 0, width, 0, -1, height, 0, 0, 1),
        SKEncodedOrigin.BottomLeft => new SKMatrix(1, 0, 0, 0, -1, height, 0, 0, 1),
        SKEncodedOrigin.LeftTop => new SKMatrix(0, 1, 0, 1, 0, 0, 0, 0, 1),
        SKEncodedOrigin.RightTop => new SKMatrix(0, -1, height, 1, 0, 0, 0, 0, 1),
        SKEncodedOrigin.RightBottom => new SKMatrix(0, -1, height, -1, 0, width, 0, 0, 1),
        SKEncodedOrigin.LeftBottom => new SKMatrix(0, 1, 0, -1, 0, width, 0, 0, 1),
        _ => SKMatrix.Identity,
    };

    // Crop: the short side fills the size. Pad: the long side does. Stretch: each side; decoded at the larger scale.
    private static float Scale(int sourceWidth, int sourceHeight, int height, int width, Fit fit)
    {
        float x = width / (float)sourceWidth, y = height / (float)sourceHeight;
        return fit == Fit.Pad ? Math.Min(x, y) : Math.Max(x, y);
    }

    private static void Resize(SKBitmap decoded, SKEncodedOrigin origin, int channels, int height, int width, Fit fit, Span<byte> sample)
    {
        using var target = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
        using (var canvas = new SKCanvas(target))
        {
            // Transparent pixels and the padding become black.
            canvas.Clear(SKColors.Black);
            (int shownWidth, int shownHeight) = Transposes(origin) ? (decoded.Height, decoded.Width) : (decoded.Width, decoded.Height);
            float scale = Scale(shownWidth, shownHeight, height, width, fit);
            (float drawnWidth, float drawnHeight) = fit == Fit.Stretch ? (width, height) : (shownWidth * scale, shownHeight * scale);
            canvas.Translate((width - drawnWidth) / 2, (height - drawnHeight) / 2);
            canvas.Scale(drawnWidth / shownWidth, drawnHeight / shownHeight);
            canvas.Concat(Orientation(origin, decoded.Width, decoded.Height));
            using SKImage image = SKImage.FromBitmap(decoded);
            canvas.DrawImage(image, 0, 0, s_sampling);
        }

        ReadOnlySpan<byte> rgba = target.GetPixelSpan();
        int plane = height * width;
        for (int at = 0; at < plane; at++)
        {
            byte r = rgba[4 * at], g = rgba[(4 * at) + 1], b = rgba[(4 * at) + 2];
            if (channels == 1)
            {
                sample[at] = (byte)Math.Min(255f, MathF.Round((0.299f * r) + (0.587f * g) + (0.114f * b)));
                continue;
            }

            // Red, green, blue in the first three channels; any further channel (a model of 4 or more) stays 0.
            sample[at] = r;
            sample[plane + at] = g;
            if (channels > 2)
            {
                sample[(2 * plane) + at] = b;
            }
        }
    }
}
