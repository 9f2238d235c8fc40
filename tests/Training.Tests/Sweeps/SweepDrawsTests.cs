using TrainingService.Training.Sweeps;
using Xunit;

namespace TrainingService.Training.Tests.Sweeps;

public sealed class SweepDrawsTests
{
    [Fact]
    public void ADrawDependsOnItsKeysAloneAndIsInTheUnitInterval()
    {
        Assert.Equal(SweepDraws.Unit(1, 5, 2), SweepDraws.Unit(1, 5, 2));
        double[] neighbours = [SweepDraws.Unit(1, 5, 2), SweepDraws.Unit(2, 5, 2), SweepDraws.Unit(1, 6, 2), SweepDraws.Unit(1, 5, 3)];
        Assert.Equal(4, neighbours.Distinct().Count());

        var buckets = new int[10];
        for (int trial = 0; trial < 10_000; trial++)
        {
            double u = SweepDraws.Unit(42, trial, 0);
            Assert.InRange(u, 0, 0.9999999999999999);
            buckets[(int)(u * 10)]++;
        }

        Assert.All(buckets, count => Assert.InRange(count, 850, 1150)); // 1,000 each expected; ±150 is 5 standard deviations
    }

    [Fact]
    public void EachKindMapsTheUnitIntervalOntoItsRange()
    {
        Assert.Equal(0.2, SweepDraws.Uniform(0, 0.2, 0.6), 12);
        Assert.Equal(0.4, SweepDraws.Uniform(0.5, 0.2, 0.6), 12);
        Assert.Equal(1e-3, SweepDraws.LogUniform(0, 1e-3, 1e-1), 15);
        Assert.Equal(1e-2, SweepDraws.LogUniform(0.5, 1e-3, 1e-1), 15); // half the draws below the geometric middle
        Assert.Equal(8, SweepDraws.IntUniform(0, 8, 10));
        Assert.Equal(10, SweepDraws.IntUniform(0.9999999999999999, 8, 10));
        Assert.Equal([8, 9, 10], Enumerable.Range(0, 300).Select(i => SweepDraws.IntUniform(i / 300.0, 8, 10)).Distinct().Order());
        Assert.Equal(100, Enumerable.Range(0, 300).Count(i => SweepDraws.IntUniform(i / 300.0, 8, 10) == 9)); // equally likely
        Assert.Equal(3, SweepDraws.Choice(0.9999999999999999, 4));
        Assert.Equal(0, SweepDraws.Choice(0, 4));
    }

    [Fact]
    public void GridPointsIncludeBothEndsAndSpaceEvenly()
    {
        Assert.Equal([0.0, 0.5, 1.0], SweepDraws.Points(0, 1, 3, logarithmic: false));
        double[] rates = SweepDraws.Points(1e-3, 1e-1, 3, logarithmic: true);
        Assert.Equal(1e-3, rates[0]);
        Assert.Equal(1e-2, rates[1], 15);
        Assert.Equal(1e-1, rates[2]);
        Assert.Equal([0.01], SweepDraws.Points(1e-3, 1e-1, 1, logarithmic: true).Select(r => Math.Round(r, 12)));
    }
}
