using System.Formats.Tar;
using System.IO.Compression;
using System.Net.Http.Headers;
using System.Text;
using SkiaSharp;

namespace TrainingService.Api.Tests.Datasets;

/// <summary>CIFAR records, tars, zips, PNG and JPEG images made in memory for the upload tests.</summary>
internal static class ArchiveFiles
{
    public const int CifarPixels = 3 * 32 * 32;

    /// <summary>CIFAR records: the label byte(s) of each image, then 3×32×32 pixels that differ per image, channel and position.</summary>
    public static byte[] Cifar(params byte[][] labels)
    {
        int labelBytes = labels.Length == 0 ? 1 : labels[0].Length;
        var records = new byte[labels.Length * (labelBytes + CifarPixels)];
        for (int i = 0; i < labels.Length; i++)
        {
            int at = i * (labelBytes + CifarPixels);
            labels[i].CopyTo(records, at);
            Pixels(i).CopyTo(records, at + labelBytes);
        }

        return records;
    }

    /// <summary>CIFAR-10 records with labels first, first + 1, … (mod 10).</summary>
    public static byte[] Cifar10(int count, int first = 0) =>
        Cifar([.. Enumerable.Range(0, count).Select(i => new[] { (byte)((first + i) % 10) })]);

    /// <summary>The pixels <see cref="Cifar"/> gives record <paramref name="index"/> of a file.</summary>
    public static byte[] Pixels(int index)
    {
        var pixels = new byte[CifarPixels];
        for (int p = 0; p < pixels.Length; p++)
        {
            pixels[p] = (byte)((index * 31) + (p * 7));
        }

        return pixels;
    }

    /// <summary>A tar (gzipped unless told otherwise) of regular files; a null body makes a folder.</summary>
    public static byte[] Tar(bool gzip, params (string Name, byte[]? Data)[] entries)
    {
        using var output = new MemoryStream();
        using (Stream target = gzip ? new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true) : output)
        using (var tar = new TarWriter(target, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach ((string name, byte[]? data) in entries)
            {
                var entry = new PaxTarEntry(data is null ? TarEntryType.Directory : TarEntryType.RegularFile, name);
                if (data is not null)
                {
                    entry.DataStream = new MemoryStream(data);
                }

                tar.WriteEntry(entry);
            }
        }

        return output.ToArray();
    }

    /// <summary>
    /// <paramref name="tar"/> with the header at <paramref name="block"/> (a multiple of 512) declaring the size
    /// <paramref name="octal"/> (11 octal digits), its checksum made right again as an attacker would.
    /// </summary>
    public static byte[] WithTarSize(byte[] tar, int block, string octal)
    {
        byte[] bytes = [.. tar];
        Encoding.ASCII.GetBytes(octal).CopyTo(bytes, block + 124);
        bytes.AsSpan(block + 148, 8).Fill((byte)' ');
        int sum = bytes.AsSpan(block, 512).ToArray().Sum(b => b);
        Encoding.ASCII.GetBytes(Convert.ToString(sum, 8).PadLeft(6, '0') + "\0 ").CopyTo(bytes, block + 148);
        return bytes;
    }

    /// <summary>A zip; a null body makes a folder entry. Names are stored as given (traversal included).</summary>
    public static byte[] Zip(params (string Name, byte[]? Data)[] entries)
    {
        using var output = new MemoryStream();
        using (var zip = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach ((string name, byte[]? data) in entries)
            {
                ZipArchiveEntry entry = zip.CreateEntry(data is null && !name.EndsWith('/') ? name + "/" : name, CompressionLevel.Optimal);
                if (data is not null)
                {
                    using Stream stream = entry.Open();
                    stream.Write(data);
                }
            }
        }

        return output.ToArray();
    }

    /// <summary>An image whose pixel (x, y) is <paramref name="colour"/>(x, y), encoded as PNG, JPEG or WEBP.</summary>
    public static byte[] Image(int width, int height, Func<int, int, SKColor> colour, SKEncodedImageFormat format = SKEncodedImageFormat.Png)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                bitmap.SetPixel(x, y, colour(x, y));
            }
        }

        using SKImage image = SKImage.FromBitmap(bitmap);
        using SKData data = image.Encode(format, 95);
        return data.ToArray();
    }

    public static byte[] Png(int width, int height, SKColor colour) => Image(width, height, (_, _) => colour);

    public static byte[] Jpeg(int width, int height, SKColor colour) => Image(width, height, (_, _) => colour, SKEncodedImageFormat.Jpeg);

    /// <summary><paramref name="jpeg"/> with an EXIF segment (APP1, right after the start of image) giving its orientation, 1–8.</summary>
    public static byte[] WithOrientation(byte[] jpeg, int orientation)
    {
        byte[] exif =
        [
            0xFF, 0xE1, 0x00, 0x22, (byte)'E', (byte)'x', (byte)'i', (byte)'f', 0, 0,
            (byte)'M', (byte)'M', 0x00, 0x2A, 0x00, 0x00, 0x00, 0x08, // big-endian TIFF header, first directory at 8
            0x00, 0x01, // one entry: Orientation (0x0112), SHORT, 1 value
            0x01, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, (byte)orientation, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, // no next directory
        ];
        return [.. jpeg[..2], .. exif, .. jpeg[2..]];
    }

    /// <summary>A real JPEG whose start-of-frame header claims <paramref name="width"/>×<paramref name="height"/>.</summary>
    public static byte[] JpegClaiming(int width, int height)
    {
        byte[] jpeg = Jpeg(8, 8, SKColors.Gray);
        for (int i = 2; i + 9 < jpeg.Length; i++)
        {
            // SOF0..SOF2: FF C0..C2, length (2), precision (1), height (2), width (2).
            if (jpeg[i] == 0xFF && jpeg[i + 1] is 0xC0 or 0xC1 or 0xC2)
            {
                jpeg[i + 5] = (byte)(height >> 8);
                jpeg[i + 6] = (byte)height;
                jpeg[i + 7] = (byte)(width >> 8);
                jpeg[i + 8] = (byte)width;
                return jpeg;
            }
        }

        throw new InvalidOperationException("no start-of-frame marker");
    }

    /// <summary>An upload form: text fields, then file parts with their file names.</summary>
    public static MultipartFormDataContent Form(string format, (string Field, string Value)[] fields, params (string Field, string FileName, byte[] Bytes)[] files)
    {
        var form = new MultipartFormDataContent { { new StringContent("uploaded"), "name" }, { new StringContent(format), "format" } };
        foreach ((string field, string value) in fields)
        {
            form.Add(new StringContent(value), field);
        }

        foreach ((string field, string fileName, byte[] bytes) in files)
        {
            var content = new ByteArrayContent(bytes);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            form.Add(content, field, fileName);
        }

        return form;
    }
}
