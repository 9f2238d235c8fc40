using TrainingService.Training.Data;
using Xunit;

namespace TrainingService.Training.Tests.Data;

public sealed class IdxReaderTests : IDisposable
{
    private readonly IdxFiles _files = new();

    public void Dispose() => _files.Dispose();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ReadsTrainAndTestFiles(bool gzip)
    {
        byte[] trainImages = IdxFiles.Images(6, 4, 5), testImages = IdxFiles.Images(2, 4, 5);
        byte[] trainLabels = IdxFiles.Labels(0, 1, 2, 1, 0, 2), testLabels = IdxFiles.Labels(1, 1);
        Func<byte[], byte[]> encode = gzip ? IdxFiles.Gzip : bytes => bytes;

        ImageDataset data = IdxReader.Read(
            "tiny",
            _files.Write("train-images", encode(trainImages)),
            _files.Write("train-labels", encode(trainLabels)),
            _files.Write("test-images", encode(testImages)),
            _files.Write("test-labels", encode(testLabels)));

        Assert.Equal("tiny", data.Name);
        Assert.Equal((1, 4, 5, 3, 20), (data.Channels, data.Height, data.Width, data.Classes, data.SampleSize));
        Assert.Equal(trainImages[16..], data.Train.Images);
        Assert.Equal(trainLabels[8..], data.Train.Labels);
        Assert.Equal(testImages[16..], data.Test!.Images);
        Assert.Equal(testLabels[8..], data.Test.Labels);
        Assert.Equal([2, 2, 2], data.ClassCounts(data.Train));
        Assert.Equal([0, 2, 0], data.ClassCounts(data.Test));
        (float[] mean, float[] std) = ImageStatistics.MeanStd(trainImages[16..], 1, 4, 5);
        Assert.Equal(mean, data.Mean);
        Assert.Equal(std, data.Std);
    }

    [Fact]
    public void DetectsGzipByContentNotByExtension()
    {
        ImageDataset data = IdxReader.Read(
            "names",
            _files.Write("images.idx", IdxFiles.Gzip(IdxFiles.Images(2, 3, 3))),
            _files.Write("labels.gz", IdxFiles.Labels(0, 1)));

        Assert.Equal(IdxFiles.Images(2, 3, 3)[16..], data.Train.Images);
        Assert.Null(data.Test);
    }

    [Fact]
    public void ReadsFourDimensionalImagesAsChannels()
    {
        byte[] images = IdxFiles.Idx(0x804, 2, 3, 4, 4);

        ImageDataset data = IdxReader.Read("rgb", new MemoryStream(images), new MemoryStream(IdxFiles.Labels(0, 1)));

        Assert.Equal((3, 4, 4, 48), (data.Channels, data.Height, data.Width, data.SampleSize));
        Assert.Equal(images[20..], data.Train.Images);
        Assert.Equal(3, data.Mean.Length);
    }

    [Fact]
    public void ClassesCoverTheLargestLabelOfEitherSplit()
    {
        ImageDataset data = IdxReader.Read(
            "classes",
            new MemoryStream(IdxFiles.Images(2, 2, 2)),
            new MemoryStream(IdxFiles.Labels(0, 3)),
            new MemoryStream(IdxFiles.Images(1, 2, 2)),
            new MemoryStream(IdxFiles.Labels(7)));

        Assert.Equal(8, data.Classes);
    }

    [Fact]
    public void TestImagesWithoutTestLabelsAreRejected()
    {
        var ex = Assert.Throws<ArgumentException>(() => IdxReader.Read(
            "half", new MemoryStream(IdxFiles.Images(1, 2, 2)), new MemoryStream(IdxFiles.Labels(0)), new MemoryStream(IdxFiles.Images(1, 2, 2))));

        Assert.Equal("testLabels", ex.ParamName);
    }

    [Fact]
    public void EmptyFile()
    {
        AssertImagesRejected([], "images: the file is empty");
    }

    [Fact]
    public void NeitherIdxNorGzip()
    {
        AssertImagesRejected(
            "PK\u0003\u0004 not an idx file"u8.ToArray(),
            "images: bad magic number 0x504B0304: neither an IDX nor a gzip file; expected 0x00000803 (N×H×W) or 0x00000804 (N×C×H×W)");
    }

    [Fact]
    public void GzipOfSomethingElse()
    {
        AssertImagesRejected(
            IdxFiles.Gzip("hello, world"u8.ToArray()),
            "images: bad magic number 0x68656C6C: not an IDX file (after gzip decompression)");
    }

    [Fact]
    public void LabelsWithImagesMagic()
    {
        var ex = Read(IdxFiles.Images(2, 2, 2), IdxFiles.Images(2, 2, 2));

        Assert.Equal("labels", ex.File);
        Assert.Equal("labels: bad magic number 0x00000803: 3 dimensions; expected 0x00000801 (N)", ex.Message);
    }

    [Fact]
    public void ImagesWithTwoDimensions()
    {
        AssertImagesRejected(IdxFiles.Idx(0x802, 2, 4), "images: bad magic number 0x00000802: 2 dimensions; expected 0x00000803");
    }

    [Fact]
    public void ElementTypeOtherThanUnsignedByte()
    {
        AssertImagesRejected(
            IdxFiles.Idx(0xD03, [1, 2, 2], new byte[16]),
            "images: unsupported element type 0x0D (magic 0x00000D03): only unsigned byte (0x08) is supported");
    }

    [Fact]
    public void ZeroDimension()
    {
        AssertImagesRejected(IdxFiles.Idx(0x803, [3, 0, 5], []), "images: dimension 2 of 3 is 0; every dimension must be between 1 and 2,147,483,647");
    }

    [Fact]
    public void ShorterThanTheMagicNumber()
    {
        AssertImagesRejected([0, 0, 8], "images: truncated: the file ends after 3 bytes, inside the 4-byte magic number");
    }

    [Fact]
    public void TruncatedHeader()
    {
        AssertImagesRejected(IdxFiles.Images(3, 4, 5)[..10], "images: truncated: the header declares 3 dimensions (12 bytes) but the file ends after 6 of them");
    }

    [Fact]
    public void TruncatedImages()
    {
        AssertImagesRejected(
            IdxFiles.Images(3, 4, 5)[..^10],
            "images: truncated: header declares 3 images of 4×5 (60 bytes) but the file ends after 50 bytes of data");
    }

    [Fact]
    public void TruncatedLabels()
    {
        var ex = Read(IdxFiles.Images(3, 2, 2), IdxFiles.Labels(0, 1, 2)[..^1]);

        Assert.Equal("labels", ex.File);
        Assert.Equal("labels: truncated: header declares 3 labels (3 bytes) but the file ends after 2 bytes of data", ex.Message);
    }

    [Fact]
    public void TruncatedGzip()
    {
        byte[] gzip = IdxFiles.Gzip(IdxFiles.Images(50, 28, 28));

        var ex = Read(gzip[..(gzip.Length / 2)], IdxFiles.Labels(new byte[50]));

        Assert.Equal("images", ex.File);
        Assert.StartsWith("images: truncated: header declares 50 images of 28×28 (39,200 bytes) but the decompressed file ends after ", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TrailingBytes()
    {
        AssertImagesRejected(
            [.. IdxFiles.Images(3, 4, 5), 1, 2, 3, 4, 5, 6, 7],
            "images: trailing bytes: the file has 7 bytes after the 60 bytes of data that the header declares (3 images of 4×5)");
    }

    [Fact]
    public void TrailingBytesInsideGzip()
    {
        var ex = Read(IdxFiles.Images(1, 2, 2), IdxFiles.Gzip([.. IdxFiles.Labels(1), 9]));

        Assert.Equal("labels", ex.File);
        Assert.Equal("labels: trailing bytes: the file has 1 byte after the 1 byte of data that the header declares (1 label)", ex.Message);
    }

    [Fact]
    public void CorruptGzip()
    {
        byte[] gzip = IdxFiles.Gzip(IdxFiles.Images(50, 28, 28));
        gzip[gzip.Length / 2] ^= 0x55;
        gzip[(gzip.Length / 2) + 1] ^= 0xAA;

        var ex = Read(gzip, IdxFiles.Labels(new byte[50]));

        Assert.Equal("images", ex.File);
        Assert.StartsWith("images: corrupt gzip data: ", ex.Message, StringComparison.Ordinal);
        Assert.IsType<InvalidDataException>(ex.InnerException);
    }

    [Fact]
    public void GzipWithWrongChecksum()
    {
        byte[] gzip = IdxFiles.Gzip(IdxFiles.Images(5, 28, 28));
        gzip[^6] ^= 0xFF;

        var ex = Read(gzip, IdxFiles.Labels(new byte[5]));

        Assert.Equal("images", ex.File);
        Assert.StartsWith("images: corrupt gzip data: ", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CountMismatch()
    {
        var ex = Read(IdxFiles.Images(6, 2, 2), IdxFiles.Labels(0, 1, 0, 1, 0));

        Assert.Equal("labels", ex.File);
        Assert.Equal("labels: count mismatch: 5 labels for 6 images", ex.Message);
    }

    [Fact]
    public void TestCountMismatch()
    {
        var ex = Read(IdxFiles.Images(2, 2, 2), IdxFiles.Labels(0, 1), IdxFiles.Images(3, 2, 2), IdxFiles.Labels(0, 1));

        Assert.Equal("testLabels", ex.File);
        Assert.Equal("testLabels: count mismatch: 2 labels for 3 images", ex.Message);
    }

    [Fact]
    public void TestImageSizeMismatch()
    {
        var ex = Read(IdxFiles.Images(2, 4, 5), IdxFiles.Labels(0, 1), IdxFiles.Images(2, 6, 5), IdxFiles.Labels(0, 1));

        Assert.Equal("testImages", ex.File);
        Assert.Equal("testImages: size mismatch: test images are 6×5 but train images are 4×5", ex.Message);
    }

    [Fact]
    public void TestChannelMismatch()
    {
        var ex = Read(IdxFiles.Images(2, 4, 4), IdxFiles.Labels(0, 1), IdxFiles.Idx(0x804, 2, 3, 4, 4), IdxFiles.Labels(0, 1));

        Assert.Equal("testImages", ex.File);
        Assert.Equal("testImages: size mismatch: test images are 3×4×4 but train images are 4×4", ex.Message);
    }

    [Fact]
    public void TestLabelsErrorsNameTheTestLabelsFile()
    {
        var ex = Read(IdxFiles.Images(2, 2, 2), IdxFiles.Labels(0, 1), IdxFiles.Images(2, 2, 2), [.. IdxFiles.Labels(0, 1), 0]);

        Assert.Equal("testLabels", ex.File);
        Assert.StartsWith("testLabels: trailing bytes: the file has 1 byte after", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TooManyImages()
    {
        var ex = Read(IdxFiles.Images(11, 2, 2), IdxFiles.Labels(new byte[11]), limits: new DatasetLimits { MaxImages = 10 });

        Assert.Equal("images", ex.File);
        Assert.Equal("images: too large: 11 images exceed the limit of 10 per split (configuration Uploads:MaxImages)", ex.Message);
        Assert.Equal("Uploads:MaxImages", ex.Limit);
    }

    [Fact]
    public void TooManyLabels()
    {
        var ex = Read(IdxFiles.Images(1, 2, 2), IdxFiles.Labels(new byte[11]), limits: new DatasetLimits { MaxImages = 10 });

        Assert.Equal("labels", ex.File);
        Assert.Equal("labels: too large: 11 labels exceed the limit of 10 per split (configuration Uploads:MaxImages)", ex.Message);
    }

    [Fact]
    public void ASideOverTheLimit()
    {
        var ex = Read(IdxFiles.Images(1, 10, 11), IdxFiles.Labels(0), limits: new DatasetLimits { MaxSide = 10 });

        Assert.Equal("images", ex.File);
        Assert.Equal("images: too large: images of 10×11 have a side over the limit of 10 pixels (configuration Uploads:MaxSide)", ex.Message);
    }

    [Fact]
    public void TooManyBytes()
    {
        var ex = Read(IdxFiles.Images(10, 10, 10), IdxFiles.Labels(new byte[10]), limits: new DatasetLimits { MaxDatasetBytes = 999 });

        Assert.Equal("images", ex.File);
        Assert.Equal(
            "images: too large: 10 images of 10×10 are 1,000 bytes, over the limit of 999 bytes for a dataset (configuration Uploads:MaxDatasetBytes)",
            ex.Message);
    }

    [Fact]
    public void TestImagesCountTowardsTheDatasetBytes()
    {
        var ex = Read(
            IdxFiles.Images(6, 10, 10), IdxFiles.Labels(new byte[6]), IdxFiles.Images(5, 10, 10), IdxFiles.Labels(new byte[5]),
            new DatasetLimits { MaxDatasetBytes = 1000 });

        Assert.Equal("testImages", ex.File);
        Assert.StartsWith("testImages: too large: 5 images of 10×10 are 500 bytes (and 600 of the other split), over the limit of 1,000", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void HugeHeaderIsRejectedBeforeAllocating()
    {
        AssertImagesRejected(
            IdxFiles.Idx(0x803, [1_000_000, 1024, 1024], []),
            "images: too large: 1,000,000 images of 1024×1024 are 1,048,576,000,000 bytes, over the limit of 1,073,741,824 bytes for a dataset");
    }

    [Fact]
    public void AGzipBombIsRefusedByItsCompressionRatioWhileDecoding()
    {
        // 100,000 black 28×28 images: 78,400,000 bytes that gzip to about 76 KB.
        byte[] bomb = IdxFiles.Gzip(IdxFiles.Idx(0x803, [100_000, 28, 28], new byte[100_000 * 28 * 28]));
        long before = GC.GetAllocatedBytesForCurrentThread();

        var ex = Read(bomb, IdxFiles.Labels(0, 1));

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal("images", ex.File);
        Assert.Equal("Uploads:MaxCompressionRatio", ex.Limit);
        Assert.StartsWith($"images: too large: the gzip file expands more than 100:1 (", ex.Message, StringComparison.Ordinal);
        // Decoding stops past 100 × the compressed size; the buffer grows only as the data arrives, never to the header's 78 MB.
        long cap = 100L * bomb.Length;
        Assert.True(allocated < (3 * cap) + (4 << 20), $"{allocated:N0} bytes allocated for a cap of {cap:N0}");
    }

    [Fact]
    public void AGzipFileIsHeldToTheUploadsTotalOfDecodedBytes()
    {
        byte[] images = IdxFiles.Gzip(IdxFiles.Images(3, 100, 100)), labels = IdxFiles.Gzip(IdxFiles.Labels(0, 1, 0));

        var ex = Read(images, labels, limits: new DatasetLimits { MaxUncompressedBytes = 20_000 });

        Assert.Equal("images", ex.File);
        Assert.Equal("images: too large: the upload's compressed files expand to more than 20,000 bytes (configuration Uploads:MaxUncompressedBytes)", ex.Message);
    }

    [Fact]
    public void ARawFileShorterThanItsHeaderClaimsIsRefusedBeforeAllocating()
    {
        long before = GC.GetAllocatedBytesForCurrentThread();

        var ex = Read(IdxFiles.Idx(0x803, [10_000, 100, 100], [1, 2, 3]), IdxFiles.Labels(0, 1));

        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20);
        Assert.Equal("images: truncated: header declares 10,000 images of 100×100 (100,000,000 bytes) but the file ends after 3 bytes of data", ex.Message);
    }

    private DatasetFormatException Read(
        byte[] images, byte[] labels, byte[]? testImages = null, byte[]? testLabels = null, DatasetLimits? limits = null)
    {
        return Assert.Throws<DatasetFormatException>(() => IdxReader.Read(
            "bad",
            _files.Write("images", images),
            _files.Write("labels", labels),
            testImages is null ? null : _files.Write("testImages", testImages),
            testLabels is null ? null : _files.Write("testLabels", testLabels),
            limits));
    }

    private void AssertImagesRejected(byte[] images, string messageStart)
    {
        var ex = Read(images, IdxFiles.Labels(0, 1, 2));

        Assert.Equal("images", ex.File);
        Assert.StartsWith(messageStart, ex.Message, StringComparison.Ordinal);
    }
}
