using TrainingService.Training.Data;
using Xunit;

namespace TrainingService.Training.Tests.Data;

public sealed class ImageStatisticsTests
{
    [Theory]
    [InlineData(1, 28, 28, 1000)]
    [InlineData(3, 5, 7, 9000)]
    [InlineData(2, 1, 3, 1)]
    public void MatchesAStraightforwardComputation(int channels, int height, int width, int count)
    {
        var random = new Random(7);
        var images = new byte[count * channels * height * width];
        for (int i = 0; i < images.Length; i++)
        {
            images[i] = (byte)(random.Next(256) * random.Next(2));
        }

        (float[] mean, float[] std) = ImageStatistics.MeanStd(images, channels, height, width);

        int plane = height * width;
        for (int c = 0; c < channels; c++)
        {
            var values = new List<double>();
            for (int n = 0; n < count; n++)
            {
                for (int p = 0; p < plane; p++)
                {
                    values.Add(images[(((n * channels) + c) * plane) + p] / 255.0);
                }
            }

            double m = values.Average();
            double s = Math.Sqrt(values.Sum(v => (v - m) * (v - m)) / values.Count);
            Assert.Equal(m, mean[c], 5);
            Assert.Equal(s, std[c], 5);
        }
    }

    [Fact]
    public void ConstantImagesGetTheMinimumStd()
    {
        var images = Enumerable.Repeat((byte)200, 2 * 3 * 4 * 4).ToArray();

        (float[] mean, float[] std) = ImageStatistics.MeanStd(images, 3, 4, 4);

        Assert.All(mean, m => Assert.Equal(200 / 255f, m, 6));
        Assert.All(std, s => Assert.Equal(ImageStatistics.MinStd, s));
    }

    [Fact]
    public void RejectsABufferThatIsNotWholeImages()
    {
        var ex = Assert.Throws<ArgumentException>(() => ImageStatistics.MeanStd(new byte[10], 1, 3, 3));

        Assert.Equal("images", ex.ParamName);
    }
}
