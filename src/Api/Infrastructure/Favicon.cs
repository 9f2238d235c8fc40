using System.Globalization;
using System.Text;
using SkiaSharp;

namespace TrainingService.Api.Infrastructure;

/// <summary>
/// The site icon, a falling loss curve: SVG for the dashboard's link, and ICO at /favicon.ico, which browsers ask for
/// on any page that links none (Swagger's included). Drawn here from one set of points so that neither needs the npm build.
/// </summary>
internal static class Favicon
{
    private const int Size = 32;
    private const string Background = "#1d2430", Curve = "#7fb3e6";
    private static readonly (int X, int Y)[] s_curve = [(6, 8), (11, 16), (17, 20), (26, 23)];

    private static readonly byte[] s_svg = Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture,
        $"""<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {Size} {Size}"><rect width="{Size}" height="{Size}" rx="6" fill="{Background}"/><polyline points="{string.Join(' ', s_curve.Select(p => $"{p.X},{p.Y}"))}" fill="none" stroke="{Curve}" stroke-width="3" stroke-linecap="round" stroke-linejoin="round"/></svg>"""));

    private static readonly Lazy<byte[]> s_ico = new(DrawIco);

    public static WebApplication MapFavicon(this WebApplication app)
    {
        app.MapGet("/favicon.svg", () => TypedResults.File(s_svg, "image/svg+xml")).ExcludeFromDescription().AllowAnonymous();
        app.MapGet("/favicon.ico", () => TypedResults.File(s_ico.Value, "image/x-icon")).ExcludeFromDescription().AllowAnonymous();
        return app;
    }

    /// <summary>An ICO file holding one 32×32 PNG (the ICONDIR header, one ICONDIRENTRY, the image).</summary>
    private static byte[] DrawIco()
    {
        using var bitmap = new SKBitmap(new SKImageInfo(Size, Size, SKColorType.Rgba8888, SKAlphaType.Premul));
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(SKColors.Transparent);
            using var fill = new SKPaint { Color = SKColor.Parse(Background), IsAntialias = true };
            canvas.DrawRoundRect(0, 0, Size, Size, 6, 6, fill);
            using var stroke = new SKPaint
            {
                Color = SKColor.Parse(Curve), IsAntialias = true, Style = SKPaintStyle.Stroke, StrokeWidth = 3,
                StrokeCap = SKStrokeCap.Round, StrokeJoin = SKStrokeJoin.Round,
            };
            using var path = new SKPath();
            path.AddPoly([.. s_curve.Select(p => new SKPoint(p.X, p.Y))], close: false);
            canvas.DrawPath(path, stroke);
        }

        using SKData png = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        using var ico = new MemoryStream();
        using (var writer = new BinaryWriter(ico))
        {
            writer.Write((ushort)0); // reserved
            writer.Write((ushort)1); // type: icon
            writer.Write((ushort)1); // one image
            writer.Write((byte)Size);
            writer.Write((byte)Size);
            writer.Write((byte)0); // no palette
            writer.Write((byte)0); // reserved
            writer.Write((ushort)1); // colour planes
            writer.Write((ushort)32); // bits per pixel
            writer.Write((uint)png.Size);
            writer.Write((uint)22); // the image's offset: after the 6-byte header and the 16-byte entry
            writer.Write(png.AsSpan());
        }

        return ico.ToArray();
    }
}
