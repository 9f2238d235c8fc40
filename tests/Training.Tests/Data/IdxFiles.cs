using System.Buffers.Binary;
using System.IO.Compression;

namespace TrainingService.Training.Tests.Data;

/// <summary>Builds small IDX files in a temporary folder that is deleted on dispose.</summary>
internal sealed class IdxFiles : IDisposable
{
    public IdxFiles()
    {
        Folder = Directory.CreateTempSubdirectory("idx-tests-").FullName;
    }

    public string Folder { get; }

    public static byte[] Idx(int magic, params int[] dims) => Idx(magic, dims, Pixels(dims));

    public static byte[] Idx(int magic, int[] dims, byte[] data)
    {
        var bytes = new byte[4 + (4 * dims.Length) + data.Length];
        BinaryPrimitives.WriteInt32BigEndian(bytes, magic);
        for (int i = 0; i < dims.Length; i++)
        {
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + (4 * i)), dims[i]);
        }

        data.CopyTo(bytes, 4 + (4 * dims.Length));
        return bytes;
    }

    public static byte[] Images(int count, int height, int width) => Idx(0x803, count, height, width);

    public static byte[] Labels(params byte[] labels) => Idx(0x801, [labels.Length], labels);

    public static byte[] Pixels(int[] dims)
    {
        long total = dims.Aggregate(1L, (a, b) => a * b);
        var data = new byte[total];
        for (int i = 0; i < data.Length; i++)
        {
            data[i] = (byte)((i * 37) + (i / 7));
        }

        return data;
    }

    public static byte[] Gzip(byte[] bytes)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(bytes);
        }

        return output.ToArray();
    }

    public string Write(string name, byte[] bytes)
    {
        string path = Path.Combine(Folder, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    public void Dispose() => Directory.Delete(Folder, recursive: true);
}
