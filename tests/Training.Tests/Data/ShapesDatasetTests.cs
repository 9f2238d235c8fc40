using TrainingService.Training.Data;
using Xunit;

namespace TrainingService.Training.Tests.Data;

public sealed class ShapesDatasetTests
{
    [Fact]
    public void SameOptionsGiveByteIdenticalData()
    {
        var options = new ShapesOptions { Classes = 10, Samples = 500, TestSamples = 100, Channels = 3, Seed = 42 };

        ImageDataset a = ShapesDataset.Generate(options);
        ImageDataset b = ShapesDataset.Generate(options);

        Assert.Equal(a.Train.Images, b.Train.Images);
        Assert.Equal(a.Train.Labels, b.Train.Labels);
        Assert.Equal(a.Test!.Images, b.Test!.Images);
        Assert.Equal(a.Test.Labels, b.Test.Labels);
        Assert.Equal(a.Mean, b.Mean);
        Assert.Equal(a.Std, b.Std);
    }

    [Fact]
    public void DifferentSeedsGiveDifferentData()
    {
        ImageDataset a = ShapesDataset.Generate(new ShapesOptions { Seed = 1 });
        ImageDataset b = ShapesDataset.Generate(new ShapesOptions { Seed = 2 });

        Assert.NotEqual(a.Train.Images, b.Train.Images);
    }

    [Theory]
    [InlineData(2, 1, 16, 1, 0)]
    [InlineData(4, 300, 28, 1, 70)]
    [InlineData(10, 257, 64, 3, 33)]
    public void SizesAndLabelsMatchOptions(int classes, int samples, int imageSize, int channels, int testSamples)
    {
        var options = new ShapesOptions
        {
            Classes = classes, Samples = samples, TestSamples = testSamples, ImageSize = imageSize, Channels = channels,
        };

        ImageDataset data = ShapesDataset.Generate(options);

        Assert.Equal("shapes", data.Name);
        Assert.Equal((channels, imageSize, imageSize, classes), (data.Channels, data.Height, data.Width, data.Classes));
        Assert.Equal(channels * imageSize * imageSize, data.SampleSize);
        Assert.Equal(samples, data.Train.Count);
        Assert.Equal(samples * data.SampleSize, data.Train.Images.Length);
        Assert.All(data.Train.Labels, label => Assert.InRange(label, 0, classes - 1));
        Assert.Equal(channels, data.Mean.Length);
        Assert.Equal(channels, data.Std.Length);
        if (testSamples == 0)
        {
            Assert.Null(data.Test);
        }
        else
        {
            Assert.Equal(testSamples, data.Test!.Count);
            Assert.Equal(testSamples * data.SampleSize, data.Test.Images.Length);
            Assert.All(data.Test.Labels, label => Assert.InRange(label, 0, classes - 1));
        }
    }

    [Theory]
    [InlineData(4, 2000)]
    [InlineData(7, 1001)]
    [InlineData(10, 999)]
    public void ClassesAreBalancedAndShuffled(int classes, int samples)
    {
        ImageDataset data = ShapesDataset.Generate(new ShapesOptions { Classes = classes, Samples = samples, TestSamples = samples });

        foreach (ImageSplit split in new[] { data.Train, data.Test! })
        {
            int[] counts = data.ClassCounts(split);
            Assert.Equal(classes, counts.Length);
            Assert.True(counts.Max() - counts.Min() <= 1, $"counts {string.Join(",", counts)} are not balanced");
            Assert.Equal(samples, counts.Sum());
            Assert.False(split.Labels.Select((label, i) => label == i % classes).All(same => same), "labels are not shuffled");
        }
    }

    [Fact]
    public void StatisticsDescribeTheTrainSplit()
    {
        ImageDataset data = ShapesDataset.Generate(new ShapesOptions { Channels = 3 });

        (float[] mean, float[] std) = ImageStatistics.MeanStd(data.Train.Images, 3, 28, 28);

        Assert.Equal(mean, data.Mean);
        Assert.Equal(std, data.Std);
        Assert.All(data.Mean, m => Assert.InRange(m, 0.05f, 0.6f));
        Assert.All(data.Std, s => Assert.InRange(s, 0.05f, 0.5f));
    }

    [Theory]
    [InlineData("classes", 1, "must be between 2 and 10")]
    [InlineData("classes", 11, "must be between 2 and 10")]
    [InlineData("samples", 0, "must be between 1 and 200000")]
    [InlineData("samples", 200_001, "must be between 1 and 200000")]
    [InlineData("testSamples", -1, "must be between 0 and 100000")]
    [InlineData("testSamples", 100_001, "must be between 0 and 100000")]
    [InlineData("imageSize", 15, "must be between 16 and 64")]
    [InlineData("imageSize", 65, "must be between 16 and 64")]
    [InlineData("channels", 2, "must be 1 or 3")]
    [InlineData("channels", 0, "must be 1 or 3")]
    public void OutOfRangeOptionNamesTheFieldTheRangeAndTheValue(string field, int value, string range)
    {
        var options = field switch
        {
            "classes" => new ShapesOptions { Classes = value },
            "samples" => new ShapesOptions { Samples = value },
            "testSamples" => new ShapesOptions { TestSamples = value },
            "imageSize" => new ShapesOptions { ImageSize = value },
            _ => new ShapesOptions { Channels = value },
        };

        var ex = Assert.ThrowsAny<ArgumentException>(() => ShapesDataset.Generate(options));

        Assert.Equal(field, ex.ParamName);
        Assert.StartsWith($"{field} {range}, but was {value}.", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SplitsOverOneGibibyteAreRejected()
    {
        var options = new ShapesOptions { Samples = 200_000, ImageSize = 64, Channels = 3 };

        var ex = Assert.ThrowsAny<ArgumentException>(options.Validate);

        Assert.Equal("samples", ex.ParamName);
        Assert.Contains("1,073,741,824", ex.Message, StringComparison.Ordinal);
        Assert.Contains("2,457,600,000", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BoundaryOptionsAreAccepted()
    {
        new ShapesOptions { Classes = 2, Samples = 1, TestSamples = 0, ImageSize = 16, Channels = 1 }.Validate();
        new ShapesOptions { Classes = 10, Samples = 200_000, TestSamples = 100_000, ImageSize = 64, Channels = 1 }.Validate();
    }

    [Fact]
    public void ClassNamesCoverTenClasses()
    {
        Assert.Equal(10, ShapesDataset.ClassNames.Count);
        Assert.Equal(10, ShapesDataset.ClassNames.Distinct().Count());
    }

    [Fact]
    public void ClassesAreRecognisableByNearestCentroidOnNormalisedMasks()
    {
        const int Classes = 10;
        ImageDataset data = ShapesDataset.Generate(new ShapesOptions { Classes = Classes, Samples = 4000, TestSamples = 2000 });
        var centroids = new double[Classes][];
        var counts = new int[Classes];
        for (int c = 0; c < Classes; c++)
        {
            centroids[c] = new double[Grid * Grid];
        }

        for (int i = 0; i < data.Train.Count; i++)
        {
            double[] features = MaskFeatures(data.Train.Images.AsSpan(i * data.SampleSize, data.SampleSize), data.Width);
            int label = data.Train.Labels[i];
            counts[label]++;
            for (int f = 0; f < features.Length; f++)
            {
                centroids[label][f] += features[f];
            }
        }

        for (int c = 0; c < Classes; c++)
        {
            for (int f = 0; f < centroids[c].Length; f++)
            {
                centroids[c][f] /= counts[c];
            }
        }

        var correct = new int[Classes];
        int[] testCounts = data.ClassCounts(data.Test!);
        for (int i = 0; i < data.Test!.Count; i++)
        {
            double[] features = MaskFeatures(data.Test.Images.AsSpan(i * data.SampleSize, data.SampleSize), data.Width);
            int nearest = Enumerable.Range(0, Classes).MinBy(c => Distance(features, centroids[c]));
            correct[nearest] += nearest == data.Test.Labels[i] ? 1 : 0;
        }

        string perClass = string.Join(", ", Enumerable.Range(0, Classes)
            .Select(c => $"{ShapesDataset.ClassNames[c]} {(double)correct[c] / testCounts[c]:P0}"));
        Assert.True(correct.Sum() > 0.9 * data.Test.Count, $"nearest-centroid accuracy {(double)correct.Sum() / data.Test.Count:P1}: {perClass}");
        Assert.All(Enumerable.Range(0, Classes), c => Assert.True(correct[c] > 0.75 * testCounts[c], perClass));
    }

    private const int Grid = 10;

    // Bright pixels sampled on a Grid×Grid square around their bounding box, so position and size cancel out.
    private static double[] MaskFeatures(ReadOnlySpan<byte> image, int size)
    {
        const int Threshold = 100;
        int x0 = size, y0 = size, x1 = -1, y1 = -1;
        for (int y = 1; y < size - 1; y++)
        {
            for (int x = 1; x < size - 1; x++)
            {
                int neighbours = 0;
                for (int dy = -1; dy <= 1; dy++)
                {
                    for (int dx = -1; dx <= 1; dx++)
                    {
                        neighbours += image[((y + dy) * size) + x + dx] > Threshold ? 1 : 0;
                    }
                }

                if (image[(y * size) + x] > Threshold && neighbours >= 4)
                {
                    (x0, y0, x1, y1) = (Math.Min(x0, x), Math.Min(y0, y), Math.Max(x1, x), Math.Max(y1, y));
                }
            }
        }

        var features = new double[Grid * Grid];
        if (x1 < 0)
        {
            return features;
        }

        double side = Math.Max(x1 - x0, y1 - y0) + 1;
        double left = ((x0 + x1 + 1) / 2.0) - (side / 2), top = ((y0 + y1 + 1) / 2.0) - (side / 2);
        for (int gy = 0; gy < Grid; gy++)
        {
            for (int gx = 0; gx < Grid; gx++)
            {
                int x = (int)(left + ((gx + 0.5) * side / Grid)), y = (int)(top + ((gy + 0.5) * side / Grid));
                bool inside = x >= 0 && y >= 0 && x < size && y < size && image[(y * size) + x] > Threshold;
                features[(gy * Grid) + gx] = inside ? 1 : 0;
            }
        }

        return features;
    }

    [Fact]
    public void ShapesAreBrighterThanTheBackground()
    {
        ImageDataset data = ShapesDataset.Generate(new ShapesOptions { Classes = 10, Samples = 200, TestSamples = 0 });

        for (int i = 0; i < data.Train.Count; i++)
        {
            ReadOnlySpan<byte> image = data.Train.Images.AsSpan(i * data.SampleSize, data.SampleSize);
            int bright = 0;
            foreach (byte pixel in image)
            {
                bright += pixel > 110 ? 1 : 0;
            }

            Assert.InRange(bright, 8, data.SampleSize * 2 / 3);
        }
    }

    private static double Distance(double[] a, double[] b)
    {
        double sum = 0;
        for (int i = 0; i < a.Length; i++)
        {
            sum += (a[i] - b[i]) * (a[i] - b[i]);
        }

        return Math.Sqrt(sum);
    }
}
