using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;

namespace TrainingService.Training.Data;

/// <summary>
/// Reads image datasets in the IDX format of MNIST and Fashion-MNIST, raw or gzip-compressed
/// (detected by content, not by file name).
/// </summary>
public static class IdxReader
{
    private const byte UnsignedByte = 0x08;

    /// <summary>Reads a dataset from IDX files.</summary>
    /// <param name="name">The dataset name.</param>
    /// <param name="trainImagesPath">Train images: magic 0x00000803 (N×H×W) or 0x00000804 (N×C×H×W).</param>
    /// <param name="trainLabelsPath">Train labels: magic 0x00000801 (N).</param>
    /// <param name="testImagesPath">Optional test images; given together with <paramref name="testLabelsPath"/>.</param>
    /// <param name="testLabelsPath">Optional test labels.</param>
    /// <param name="limits">Size caps, checked from each header before its data is allocated; the defaults when null.</param>
    /// <exception cref="DatasetFormatException">A file is malformed, truncated, too large or inconsistent.</exception>
    public static ImageDataset Read(
        string name,
        string trainImagesPath,
        string trainLabelsPath,
        string? testImagesPath = null,
        string? testLabelsPath = null,
        DatasetLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(trainImagesPath);
        ArgumentNullException.ThrowIfNull(trainLabelsPath);
        RequireBothOrNeither(testImagesPath, testLabelsPath);
        using Stream trainImages = Open(trainImagesPath);
        using Stream trainLabels = Open(trainLabelsPath);
        using Stream? testImages = testImagesPath is null ? null : Open(testImagesPath);
        using Stream? testLabels = testLabelsPath is null ? null : Open(testLabelsPath);
        return Read(name, trainImages, trainLabels, testImages, testLabels, limits);
    }

    /// <summary>Reads a dataset from IDX streams; the streams are read to their end and left open.</summary>
    /// <inheritdoc cref="Read(string, string, string, string?, string?, DatasetLimits?)"/>
    public static ImageDataset Read(
        string name,
        Stream trainImages,
        Stream trainLabels,
        Stream? testImages = null,
        Stream? testLabels = null,
        DatasetLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(trainImages);
        ArgumentNullException.ThrowIfNull(trainLabels);
        RequireBothOrNeither(testImages, testLabels);
        limits ??= new DatasetLimits();
        var budget = new DecodeBudget(limits);

        IdxArray images = ReadFile(trainImages, "images", isImages: true, limits, budget);
        IdxArray labels = ReadFile(trainLabels, "labels", isImages: false, limits, budget);
        RequireSameCount(images, labels, "labels");
        int maxLabel = Max(labels.Data);

        ImageSplit? test = null;
        if (testImages is not null && testLabels is not null)
        {
            IdxArray tImages = ReadFile(testImages, "testImages", isImages: true, limits, budget, images.TotalBytes);
            if (tImages.Channels != images.Channels || tImages.Height != images.Height || tImages.Width != images.Width)
            {
                throw new DatasetFormatException(
                    "testImages",
                    $"size mismatch: test images are {tImages.ImageShape} but train images are {images.ImageShape}");
            }

            IdxArray tLabels = ReadFile(testLabels, "testLabels", isImages: false, limits, budget);
            RequireSameCount(tImages, tLabels, "testLabels");
            maxLabel = Math.Max(maxLabel, Max(tLabels.Data));
            test = new ImageSplit { Images = tImages.Data, Labels = tLabels.Data };
        }

        (float[] mean, float[] std) = ImageStatistics.MeanStd(images.Data, images.Channels, images.Height, images.Width);
        return new ImageDataset
        {
            Name = name,
            Channels = images.Channels,
            Height = images.Height,
            Width = images.Width,
            Classes = maxLabel + 1,
            Train = new ImageSplit { Images = images.Data, Labels = labels.Data },
            Test = test,
            Mean = mean,
            Std = std,
        };
    }

    private static FileStream Open(string path) =>
        new(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);

    private static void RequireBothOrNeither(object? testImages, object? testLabels)
    {
        if ((testImages is null) != (testLabels is null))
        {
            throw new ArgumentException(
                "Test images and test labels must be given together.",
                testImages is null ? "testImages" : "testLabels");
        }
    }

    private static void RequireSameCount(IdxArray images, IdxArray labels, string labelsFile)
    {
        if (images.Count != labels.Count)
        {
            throw new DatasetFormatException(
                labelsFile,
                $"count mismatch: {N(labels.Count)} labels for {N(images.Count)} images");
        }
    }

    private static int Max(byte[] values)
    {
        int max = 0;
        foreach (byte value in values)
        {
            max = Math.Max(max, value);
        }

        return max;
    }

    private static IdxArray ReadFile(Stream raw, string file, bool isImages, DatasetLimits limits, DecodeBudget budget, long bytesBefore = 0)
    {
        var prefix = new byte[2];
        int prefixLength = raw.ReadAtLeast(prefix, 2, throwOnEndOfStream: false);
        if (prefixLength == 0)
        {
            throw new DatasetFormatException(file, "the file is empty");
        }

        bool gzip = prefixLength == 2 && prefix[0] == 0x1f && prefix[1] == 0x8b;
        using var replay = new PrefixedStream(prefix, prefixLength, raw);
        var compressed = new ByteCounter(replay);
        using Stream? unzip = gzip
            ? budget.Count(new GZipStream(compressed, CompressionMode.Decompress), () => compressed.BytesRead, file, "the gzip file")
            : null;
        try
        {
            long? length = !gzip && raw.CanSeek ? raw.Length - raw.Position + prefixLength : null;
            return Parse(unzip ?? replay, file, isImages, gzip, length, limits, bytesBefore);
        }
        catch (InvalidDataException ex) when (gzip)
        {
            throw new DatasetFormatException(file, $"corrupt gzip data: {ex.Message}", ex);
        }
    }

    // length: the file's size when known; otherwise the data is allocated as it arrives, so a header's claim costs
    // nothing until the data backs it.
    private static IdxArray Parse(Stream stream, string file, bool isImages, bool gzip, long? length, DatasetLimits limits, long bytesBefore)
    {
        string expected = isImages ? "0x00000803 (N×H×W) or 0x00000804 (N×C×H×W)" : "0x00000801 (N)";
        Span<byte> magic = stackalloc byte[4];
        int got = stream.ReadAtLeast(magic, 4, throwOnEndOfStream: false);
        if (got < 4)
        {
            throw new DatasetFormatException(file, $"truncated: the file ends after {got} bytes, inside the 4-byte magic number");
        }

        uint magicValue = BinaryPrimitives.ReadUInt32BigEndian(magic);
        if (magic[0] != 0 || magic[1] != 0)
        {
            string what = gzip ? "not an IDX file (after gzip decompression)" : "neither an IDX nor a gzip file";
            throw new DatasetFormatException(file, $"bad magic number 0x{magicValue:X8}: {what}; expected {expected}");
        }

        if (magic[2] != UnsignedByte)
        {
            throw new DatasetFormatException(
                file,
                $"unsupported element type 0x{magic[2]:X2} (magic 0x{magicValue:X8}): only unsigned byte (0x08) is supported");
        }

        int rank = magic[3];
        bool rankOk = isImages ? rank is 3 or 4 : rank == 1;
        if (!rankOk)
        {
            throw new DatasetFormatException(
                file,
                $"bad magic number 0x{magicValue:X8}: {rank} dimensions; expected {expected}");
        }

        Span<byte> header = stackalloc byte[4 * rank];
        got = stream.ReadAtLeast(header, header.Length, throwOnEndOfStream: false);
        if (got < header.Length)
        {
            throw new DatasetFormatException(
                file,
                $"truncated: the header declares {rank} dimensions ({header.Length} bytes) but the file ends after {got} of them");
        }

        var dims = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            uint dim = BinaryPrimitives.ReadUInt32BigEndian(header[(4 * i)..]);
            if (dim == 0 || dim > int.MaxValue)
            {
                throw new DatasetFormatException(file, $"dimension {i + 1} of {rank} is {dim}; every dimension must be between 1 and {N(int.MaxValue)}");
            }

            dims[i] = (int)dim;
        }

        var shape = isImages
            ? new IdxArray(file, isImages, dims[0], rank == 4 ? dims[1] : 1, dims[rank - 2], dims[rank - 1])
            : new IdxArray(file, isImages, dims[0], 1, 1, 1);
        if (isImages)
        {
            limits.Check(file, shape.Count, shape.Channels, shape.Height, shape.Width, bytesBefore);
        }
        else if (shape.Count > limits.MaxImages)
        {
            throw DatasetLimits.TooLarge(file, nameof(DatasetLimits.MaxImages), $"{N(shape.Count)} labels exceed the limit of {N(limits.MaxImages)} per split");
        }

        long available = length is long known ? known - magic.Length - header.Length : shape.TotalBytes;
        var data = new byte[Math.Min(shape.TotalBytes, length is null ? DecodeBudget.RatioGraceBytes : Math.Max(available, 0))];
        got = 0;
        while (data.Length > 0)
        {
            got += stream.ReadAtLeast(data.AsSpan(got), data.Length - got, throwOnEndOfStream: false);
            if (got < data.Length || data.Length == shape.TotalBytes || length is not null)
            {
                break;
            }

            Array.Resize(ref data, (int)Math.Min(shape.TotalBytes, 2L * data.Length));
        }

        if (got < shape.TotalBytes)
        {
            throw new DatasetFormatException(
                file,
                $"truncated: header declares {shape.Description} ({N(shape.TotalBytes)} bytes) but {(gzip ? "the decompressed file" : "the file")} ends after {N(got)} bytes of data");
        }

        long trailing = CountRemaining(stream);
        if (trailing > 0)
        {
            throw new DatasetFormatException(
                file,
                $"trailing bytes: the file has {Count(trailing, "byte")} after the {Count(shape.TotalBytes, "byte")} of data that the header declares ({shape.Description})");
        }

        return shape with { Data = data };
    }

    private static long CountRemaining(Stream stream)
    {
        var buffer = new byte[8192];
        long total = 0;
        int n;
        while ((n = stream.Read(buffer)) > 0)
        {
            total += n;
        }

        return total;
    }

    private static string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    private static string Count(long count, string noun) => count == 1 ? $"1 {noun}" : $"{N(count)} {noun}s";

    private sealed record IdxArray(string File, bool IsImages, int Count, int Channels, int Height, int Width)
    {
        public byte[] Data { get; init; } = [];

        public long TotalBytes => (long)Count * Channels * Height * Width;

        public string ImageShape => Channels == 1 ? $"{Height}×{Width}" : $"{Channels}×{Height}×{Width}";

        public string Description => IsImages ? $"{IdxReader.Count(Count, "image")} of {ImageShape}" : IdxReader.Count(Count, "label");
    }
}
