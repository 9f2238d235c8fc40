using TrainingService.Contracts.Sweeps;
using TrainingService.Training.Sweeps;
using Xunit;

namespace TrainingService.Training.Tests.Sweeps;

public sealed class AshaTests
{
    [Theory]
    [InlineData(1, 3, 9, new[] { 1, 3 })]
    [InlineData(1, 2, 8, new[] { 1, 2, 4 })]
    [InlineData(2, 3, 20, new[] { 2, 6, 18 })]
    [InlineData(3, 3, 3, new int[0])]
    public void RungsAreTheMinimumTimesPowersOfTheFactorBelowTheMaximum(int min, int eta, int max, int[] rungs) =>
        Assert.Equal(rungs, new Asha(min, eta, max).Rungs);

    [Theory]
    [InlineData(new[] { 0.70, 0.75, 0.80 }, 2.0 / 3, 0.7666666666666666)]
    [InlineData(new[] { 4.0, 1.0, 3.0, 2.0 }, 0.5, 2.5)]
    [InlineData(new[] { 1.0, 2.0, 3.0, 4.0 }, 1.0 / 3, 2.0)]
    [InlineData(new[] { 5.0 }, 0.9, 5.0)]
    [InlineData(new[] { 1.0, 9.0 }, 0.0, 1.0)]
    [InlineData(new[] { 1.0, 9.0 }, 1.0, 9.0)]
    public void QuantilesInterpolateBetweenRanksAsNumPyDoes(double[] values, double q, double expected) =>
        Assert.Equal(expected, Asha.Quantile(values, q), 12);

    [Fact]
    public void ATrialGoesOnOnlyIfNotWorseThanTheCutOfEarlierReports()
    {
        var asha = new Asha(1, 3, 9);
        double[] earlier = [0.70, 0.75, 0.80]; // the cut for accuracy: their 2/3 quantile, 0.7667
        Assert.False(asha.Continues(0.76, earlier, MetricGoal.Maximize));
        Assert.True(asha.Continues(0.77, earlier, MetricGoal.Maximize));
        double[] losses = [0.3, 0.4, 0.5]; // the cut for a loss: their 1/3 quantile, 0.3667
        Assert.True(asha.Continues(0.36, losses, MetricGoal.Minimize));
        Assert.False(asha.Continues(0.37, losses, MetricGoal.Minimize));
    }

    [Fact]
    public void TheFirstReporterGoesOnAndANonFiniteValueNever()
    {
        var asha = new Asha(1, 3, 9);
        Assert.True(asha.Continues(0.1, [], MetricGoal.Maximize));
        Assert.False(asha.Continues(double.NaN, [], MetricGoal.Minimize));
        Assert.False(asha.Continues(double.PositiveInfinity, [0.5], MetricGoal.Minimize));
        Assert.True(asha.Continues(0.5, [double.NaN, double.NaN], MetricGoal.Maximize)); // diverged trials set no cut
    }

    [Fact]
    public void AboutOneTrialInTheFactorPassesARungWhateverTheOrder()
    {
        var asha = new Asha(1, 3, 9);
        var random = new Random(7);
        for (int round = 0; round < 20; round++)
        {
            double[] arrivals = [.. Enumerable.Range(0, 81).Select(_ => random.NextDouble())];
            var reported = new List<double>();
            int passed = 0;
            foreach (double value in arrivals)
            {
                passed += asha.Continues(value, reported, MetricGoal.Maximize) ? 1 : 0;
                reported.Add(value);
            }

            Assert.InRange(passed, 81 / 3 / 2, 81 / 3 * 2); // 27 expected; early arrivals pass more easily
        }

        // Worst first, every trial beats the cut; best first, only the first does.
        double[] rising = [.. Enumerable.Range(1, 9).Select(i => i / 10.0)];
        Assert.All(rising.Select((v, i) => asha.Continues(v, rising[..i], MetricGoal.Maximize)), Assert.True);
        double[] falling = [.. rising.Reverse()];
        Assert.Equal([true, false, false, false, false, false, false, false, false],
            falling.Select((v, i) => asha.Continues(v, falling[..i], MetricGoal.Maximize)));
    }

    [Theory]
    [InlineData(0, 3, 9)]
    [InlineData(1, 1, 9)]
    [InlineData(5, 3, 4)]
    public void ImpossibleSchedulesAreRefused(int min, int eta, int max) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new Asha(min, eta, max));
}
