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

    private static RungEntry Waits(int trial, int epoch, double value) => new(trial, epoch, value, Waiting: true, Promoted: false);

    private static RungEntry WentOn(int trial, int epoch, double value) => new(trial, epoch, value, Waiting: false, Promoted: true);

    [Fact]
    public void PromotionWaitsUntilATrialIsAmongTheBestOneInTheFactorOfItsRung()
    {
        var asha = new Asha(1, 3, 9, promotion: true);
        // Two reports at rung 1: ⌊2/3⌋ = 0 may go on, however good.
        Assert.Null(asha.Next([Waits(0, 1, 0.9), Waits(1, 1, 0.5)], MetricGoal.Maximize, ending: false));
        // A third: the best one goes on, its cut its own value (the worst of the best 1).
        RungEntry[] three = [Waits(0, 1, 0.7), Waits(1, 1, 0.9), Waits(2, 1, 0.5)];
        Assert.Equal(new Promotion(1, 1, 0.9, 1, 3), asha.Next(three, MetricGoal.Maximize, ending: false));
        // For a loss, lower is better.
        Assert.Equal(new Promotion(2, 1, 0.5, 1, 3), asha.Next(three, MetricGoal.Minimize, ending: false));
        // Once the best went on, the next may go on only when the rung's count allows two (six reports).
        RungEntry[] promoted = [Waits(0, 1, 0.7), WentOn(1, 1, 0.9), Waits(2, 1, 0.5), Waits(3, 1, 0.8), Waits(4, 1, 0.1)];
        Assert.Null(asha.Next(promoted, MetricGoal.Maximize, ending: false));
        Assert.Equal(new Promotion(3, 1, 0.8, 2, 6), asha.Next([.. promoted, Waits(5, 1, 0.2)], MetricGoal.Maximize, ending: false));
    }

    [Fact]
    public void PromotionTakesTheHighestRungFirstAndNeverANonFiniteValue()
    {
        var asha = new Asha(1, 2, 8, promotion: true); // rungs 1, 2, 4
        RungEntry[] reports =
        [
            WentOn(0, 1, 0.9), WentOn(1, 1, 0.8), Waits(2, 1, 0.85), Waits(3, 1, 0.1),
            Waits(0, 2, 0.95), Waits(1, 2, 0.7),
        ];
        // Rung 2 has ⌊2/2⌋ = 1 place, trial 0's; rung 1's trial 2 (third of four, two places) must wait.
        Assert.Equal(new Promotion(0, 2, 0.95, 1, 2), asha.Next(reports, MetricGoal.Maximize, ending: false));
        RungEntry[] nan = [Waits(0, 1, double.NaN), Waits(1, 1, double.NaN), Waits(2, 1, 0.3), Waits(3, 1, double.NaN)];
        Assert.Equal(new Promotion(2, 1, 0.3, 1, 4), asha.Next(nan, MetricGoal.Maximize, ending: false)); // two places, one finite value
        Assert.Null(asha.Next([Waits(0, 1, double.NaN), Waits(1, 1, double.NaN)], MetricGoal.Minimize, ending: true));
    }

    [Fact]
    public void AtTheEndARungWhereNoneWentOnGivesItsBestSoASweepAlwaysTrainsOneToTheEnd()
    {
        var asha = new Asha(1, 3, 9, promotion: true);
        RungEntry[] two = [Waits(0, 1, 0.6), Waits(1, 1, 0.8)];
        Assert.Null(asha.Next(two, MetricGoal.Maximize, ending: false));
        Assert.Equal(new Promotion(1, 1, 0.8, 1, 2), asha.Next(two, MetricGoal.Maximize, ending: true));
        // It reports alone at rung 3 and goes on to the end as well.
        RungEntry[] then = [Waits(0, 1, 0.6), WentOn(1, 1, 0.8), Waits(1, 3, 0.85)];
        Assert.Equal(new Promotion(1, 3, 0.85, 1, 1), asha.Next(then, MetricGoal.Maximize, ending: true));
        // Where one went on, the rest are cut: nothing more at the end.
        Assert.Null(asha.Next([Waits(0, 1, 0.6), WentOn(1, 1, 0.8), WentOn(1, 3, 0.85)], MetricGoal.Maximize, ending: true));
        Assert.Equal((0.8, 2), asha.CutAt([Waits(0, 1, 0.6), WentOn(1, 1, 0.8)], 1, MetricGoal.Maximize));
    }

    [Fact]
    public void PromotionRunsAboutOneTrialInTheFactorThroughEachRung()
    {
        // 27 trials, η 3, two at a time, in random order: each pass through the rungs as workers free up. The paper's
        // bound: a rung's promotions never exceed ⌊n/η⌋ of its n reports at the time of each, so about 9, 3 and 1.
        var asha = new Asha(1, 3, 27, promotion: true); // rungs 1, 3, 9
        var random = new Random(11);
        double[] quality = [.. Enumerable.Range(0, 27).Select(_ => random.NextDouble())];
        var reports = new List<RungEntry>();
        var atRung = new Dictionary<int, int>(); // trial → the rung it trains towards
        int next = 0;
        var training = new List<int>();
        while (true)
        {
            while (training.Count < 2)
            {
                if (asha.Next(reports, MetricGoal.Maximize, ending: next == 27 && training.Count == 0) is { } p)
                {
                    int i = reports.FindIndex(e => e.Trial == p.Trial && e.Epoch == p.Epoch);
                    reports[i] = reports[i] with { Waiting = false, Promoted = true };
                    training.Add(p.Trial);
                }
                else if (next < 27)
                {
                    training.Add(next++);
                }
                else
                {
                    break;
                }
            }

            if (training.Count == 0)
            {
                break;
            }

            int trial = training[0];
            training.RemoveAt(0);
            int rung = atRung.GetValueOrDefault(trial, 1);
            if (rung == 27)
            {
                continue; // trained to the end
            }

            reports.Add(Waits(trial, rung, quality[trial] + (rung / 100.0)));
            atRung[trial] = rung * 3;
        }

        Assert.InRange(reports.Count(e => e.Epoch == 1 && e.Promoted), 9, 11);
        Assert.InRange(reports.Count(e => e.Epoch == 3 && e.Promoted), 3, 4);
        Assert.InRange(reports.Count(e => e.Epoch == 9 && e.Promoted), 1, 2);
        int best = Array.IndexOf(quality, quality.Max());
        Assert.Contains(reports, e => e.Trial == best && e.Epoch == 9 && e.Promoted); // the best trains to the end
    }
}
