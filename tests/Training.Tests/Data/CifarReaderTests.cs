using TrainingService.Training.Data;
using Xunit;

namespace TrainingService.Training.Tests.Data;

public sealed class CifarReaderTests : IDisposable
{
    private readonly IdxFiles _files = new();

    public void Dispose() => _files.Dispose();

    // Records: the label bytes, then 3×32×32 pixels numbered from the record's first pixel value.
    private static byte[] Records(params byte[][] labels)
    {
        var bytes = new List<byte>();
        for (int i = 0; i < labels.Length; i++)
        {
            bytes.AddRange(labels[i]);
            bytes.AddRange(Enumerable.Range(0, CifarReader.PixelBytes).Select(p => (byte)((i * 11) + p)));
        }

        return [.. bytes];
    }

    private CifarFile File(string name, byte[] bytes, string field = "images") => new(field, name, _files.Write(name, bytes));

    [Fact]
    public void RecordsBecomeChannelPlanesWithTheirLabelsAcrossFiles()
    {
        ImageDataset data = CifarReader.Read(
            "tiny",
            CifarVariant.Cifar10,
            [File("data_batch_1.bin", Records([3], [9])), File("data_batch_2.bin", Records([0]))],
            File("test_batch.bin", Records([5]), "testImages"));

        Assert.Equal((3, 32, 32, 10), (data.Channels, data.Height, data.Width, data.Classes));
        Assert.Equal([3, 9, 0], data.Train.Labels);
        Assert.Equal([5], data.Test!.Labels);
        Assert.Equal(Records([3], [9])[(CifarReader.PixelBytes + 2)..], data.Train.Images[CifarReader.PixelBytes..(2 * CifarReader.PixelBytes)]);
        Assert.Equal(Records([0])[1..], data.Train.Images[(2 * CifarReader.PixelBytes)..]); // the second file's first record
        (float[] mean, float[] std) = ImageStatistics.MeanStd(data.Train.Images, 3, 32, 32);
        Assert.Equal(mean, data.Mean);
        Assert.Equal(std, data.Std);
        Assert.Null(data.ClassNames);
    }

    [Theory]
    [InlineData(CifarVariant.Cifar100, 100, new byte[] { 61, 2 })]
    [InlineData(CifarVariant.Cifar100Coarse, 20, new byte[] { 4, 19 })]
    public void Cifar100TakesTheFineOrTheCoarseLabel(CifarVariant variant, int classes, byte[] labels)
    {
        ImageDataset data = CifarReader.Read("hundred", variant, [File("train.bin", Records([4, 61], [19, 2]))]);

        Assert.Equal(classes, data.Classes);
        Assert.Equal(labels, data.Train.Labels);
        Assert.Equal(Records([0])[1..], data.Train.Images[..CifarReader.PixelBytes]);
    }

    [Fact]
    public void ClassNamesSkipBlankLinesAndMustNumberTheClasses()
    {
        string[] names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];
        byte[] meta = System.Text.Encoding.UTF8.GetBytes(string.Join("\r\n", names) + "\n\n\n");

        ImageDataset data = CifarReader.Read("named", CifarVariant.Cifar10, [File("b.bin", Records([1]))], classNames: File("batches.meta.txt", meta, "classNames"));

        Assert.Equal(names, data.ClassNames);
        DatasetFormatException wrong = Assert.Throws<DatasetFormatException>(() =>
            CifarReader.Read("named", CifarVariant.Cifar100Coarse, [File("t.bin", Records([1, 1]))], classNames: File("coarse.txt", meta, "classNames")));
        Assert.Equal("classNames: coarse.txt: 10 class names, but CIFAR-100 (coarse labels) has 20 classes (one name per line)", wrong.Message);
    }

    [Fact]
    public void ATruncatedRecordIsNamedByNumber()
    {
        byte[] records = Records([1], [2]);

        DatasetFormatException truncated = Assert.Throws<DatasetFormatException>(() =>
            CifarReader.Read("cut", CifarVariant.Cifar10, [File("data_batch_1.bin", records[..^1])]));

        Assert.Equal("images", truncated.File);
        Assert.Equal("images: data_batch_1.bin: 6,145 bytes are not a whole number of 3,073-byte CIFAR-10 records: record 2 is truncated (3,072 of its 3,073 bytes)", truncated.Message);
    }
}
