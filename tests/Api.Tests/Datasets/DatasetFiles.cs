using System.Buffers.Binary;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using TrainingService.Api.Persistence;

namespace TrainingService.Api.Tests.Datasets;

/// <summary>Small IDX files, upload forms and checks for the dataset tests.</summary>
internal static class DatasetFiles
{
    /// <summary>IDX images with a pixel pattern that differs per image, channel and position.</summary>
    public static byte[] Images(int count, int height, int width, int channels = 1, bool fourD = false)
    {
        int sample = channels * height * width;
        var pixels = new byte[count * sample];
        for (int i = 0; i < pixels.Length; i++)
        {
            pixels[i] = (byte)(((i / sample) * 37) + ((i % sample) * 11));
        }

        int[] dims = channels > 1 || fourD ? [count, channels, height, width] : [count, height, width];
        return Idx(dims, pixels);
    }

    /// <summary>IDX labels 0, 1, …, classes − 1, 0, 1, …</summary>
    public static byte[] Labels(int count, int classes)
    {
        var labels = new byte[count];
        for (int i = 0; i < count; i++)
        {
            labels[i] = (byte)(i % classes);
        }

        return Idx([count], labels);
    }

    public static byte[] Idx(int[] dims, byte[] data)
    {
        var file = new byte[4 + (4 * dims.Length) + data.Length];
        file[2] = 0x08;
        file[3] = (byte)dims.Length;
        for (int i = 0; i < dims.Length; i++)
        {
            BinaryPrimitives.WriteInt32BigEndian(file.AsSpan(4 + (4 * i)), dims[i]);
        }

        data.CopyTo(file, 4 + (4 * dims.Length));
        return file;
    }

    public static byte[] Gzip(byte[] data, CompressionLevel level = CompressionLevel.Fastest)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, level))
        {
            gzip.Write(data);
        }

        return output.ToArray();
    }

    /// <summary>The pixel bytes of an IDX images file made by <see cref="Images"/>.</summary>
    public static byte[] Pixels(byte[] idx) => idx[(4 + (4 * idx[3]))..];

    /// <summary>An upload form; a null name or format leaves that field out.</summary>
    public static MultipartFormDataContent Form(string? name, string? format, params (string Field, byte[] Bytes)[] files)
    {
        var form = new MultipartFormDataContent();
        if (name is not null)
        {
            form.Add(new StringContent(name), "name");
        }

        if (format is not null)
        {
            form.Add(new StringContent(format), "format");
        }

        foreach ((string field, byte[] bytes) in files)
        {
            var content = new ByteArrayContent(bytes);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            form.Add(content, field, field + ".idx");
        }

        return form;
    }

    /// <summary>413 for a refusal over a size limit (its detail says "too large:"), else 400.</summary>
    public static HttpStatusCode StatusFor(string detail) =>
        detail.Contains("too large:", StringComparison.Ordinal) ? HttpStatusCode.RequestEntityTooLarge : HttpStatusCode.BadRequest;

    public static async Task<JsonElement> ReadJsonAsync(HttpResponseMessage response) =>
        await response.Content.ReadFromJsonAsync<JsonElement>();

    /// <summary>Asserts that nothing of a rejected upload was kept: no folder in datasets/ and no row.</summary>
    public static async Task AssertNothingKeptAsync(TrainingServiceFactory factory)
    {
        string datasets = Path.Combine(factory.DataFolder, "datasets");
        Assert.Empty(Directory.Exists(datasets) ? Directory.GetFileSystemEntries(datasets) : []);
        await using AsyncServiceScope scope = factory.Services.CreateAsyncScope();
        Assert.Equal(0, scope.ServiceProvider.GetRequiredService<TrainingDb>().Datasets.Count());
    }

    /// <summary>Width, height and colour type from a PNG's IHDR chunk, after checking the signature.</summary>
    public static (int Width, int Height, byte ColourType) PngHeader(byte[] png)
    {
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A], png[..8]);
        Assert.Equal("IHDR"u8.ToArray(), png[12..16]);
        return (BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)), BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20)), png[25]);
    }
}
