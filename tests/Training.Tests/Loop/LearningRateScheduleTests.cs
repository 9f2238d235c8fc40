using TrainingService.Contracts.Training;
using TrainingService.Training.Loop;
using Xunit;

namespace TrainingService.Training.Tests.Loop;

public sealed class LearningRateScheduleTests
{
    [Fact]
    public void ConstantNeverChanges()
    {
        var hp = new Hyperparameters { LearningRate = 0.05, Schedule = ScheduleKind.Constant };

        Assert.All(new[] { (1, 1L), (3, 250L), (10, 1000L) }, at => Assert.Equal(0.05, LearningRateSchedule.At(hp, at.Item1, at.Item2, 1000)));
    }

    [Theory]
    [InlineData(1, 0.1)]
    [InlineData(2, 0.1)]
    [InlineData(3, 0.01)]
    [InlineData(4, 0.01)]
    [InlineData(5, 0.001)]
    public void StepMultipliesByGammaEveryStepSizeEpochs(int epoch, double expected)
    {
        var hp = new Hyperparameters { LearningRate = 0.1, Schedule = ScheduleKind.Step, StepSize = 2, Gamma = 0.1 };

        Assert.Equal(expected, LearningRateSchedule.At(hp, epoch, step: 100 * epoch, totalSteps: 500), 1e-12);
    }

    [Theory]
    [InlineData(1, 0.2)] // the start: the full rate
    [InlineData(26, 0.2 * 0.8535533905932737)] // a quarter: (1 + cos(π/4)) / 2
    [InlineData(51, 0.1)] // half way: half the rate
    [InlineData(76, 0.2 * 0.1464466094067262)] // three quarters: (1 − cos(π/4)) / 2
    [InlineData(100, 0.2 * 0.0002467198171342)] // the last step: almost 0, (1 + cos(99π/100)) / 2
    public void CosineFollowsHalfACosineFromTheRateToZero(long step, double expected)
    {
        var hp = new Hyperparameters { LearningRate = 0.2, Schedule = ScheduleKind.Cosine };

        Assert.Equal(expected, LearningRateSchedule.At(hp, epoch: 1, step, totalSteps: 100), 1e-12);
    }

    [Fact]
    public void CosineDecreasesEveryStep()
    {
        var hp = new Hyperparameters { LearningRate = 0.2, Schedule = ScheduleKind.Cosine };
        double[] rates = [.. Enumerable.Range(1, 100).Select(step => LearningRateSchedule.At(hp, 1, step, 100))];

        Assert.All(rates.Zip(rates.Skip(1)), pair => Assert.True(pair.Second < pair.First));
        Assert.True(rates[^1] > 0);
    }
}
