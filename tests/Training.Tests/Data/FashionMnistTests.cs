using System.Diagnostics;
using TrainingService.Training.Data;
using Xunit;
using Xunit.Abstractions;

namespace TrainingService.Training.Tests.Data;

public sealed class FashionMnistTests(ITestOutputHelper output)
{
    private const string Folder = "/usr/share/datasets/fashion-mnist";

    [Fact]
    public void ReadsTheRealFiles()
    {
        string[] names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"];
        string[] paths = names.Select(name => Path.Combine(Folder, name)).ToArray();
        string[] missing = paths.Where(path => !File.Exists(path)).ToArray();
        Assert.True(
            missing.Length == 0,
            $"Fashion-MNIST is not installed ({string.Join(", ", missing)} missing): run `apt-get install -y dataset-fashion-mnist`.");

        var stopwatch = Stopwatch.StartNew();
        ImageDataset data = IdxReader.Read("fashion-mnist", paths[0], paths[1], paths[2], paths[3]);
        output.WriteLine($"Fashion-MNIST loaded in {stopwatch.ElapsedMilliseconds} ms");

        Assert.Equal((1, 28, 28, 10), (data.Channels, data.Height, data.Width, data.Classes));
        Assert.Equal(60_000, data.Train.Count);
        Assert.Equal(60_000 * 784, data.Train.Images.Length);
        Assert.Equal(10_000, data.Test!.Count);
        Assert.Equal(10_000 * 784, data.Test.Images.Length);
        Assert.All(data.ClassCounts(data.Train), count => Assert.Equal(6_000, count));
        Assert.All(data.ClassCounts(data.Test), count => Assert.Equal(1_000, count));
        Assert.Equal(0.2860, data.Mean[0], 0.0005);
        Assert.Equal(0.3530, data.Std[0], 0.0005);
    }
}
