using TrainingService.Contracts.Specs;
using TrainingService.Contracts.Training;
using TrainingService.Training.Data;
using TrainingService.Training.Loop;
using TrainingService.Training.Specs;
using Xunit;
using Xunit.Abstractions;

namespace TrainingService.Training.Tests.Loop;

/// <summary>The first checks of any new model: overfit a tiny subset; find a learning rate with a range test.</summary>
[Collection(SequentialTraining.Name)]
public sealed class SanityCheckTests(ITestOutputHelper output)
{
    private static readonly ImageDataset s_data = Harness.Shapes(samples: 1024, testSamples: 128);

    [Fact]
    public void LeNetLearnsTwentySamplesByHeart()
    {
        RecordingSink sink = Run(ModelPresets.LeNet5(classes: 4), new Hyperparameters { Optimizer = OptimizerKind.Adam, LearningRate = 1e-3, WeightDecay = 0.1 },
            new SanityOptions { Check = SanityCheck.OverfitSubset });
        SanityEvent verdict = sink.Events.OfType<SanityEvent>().Single();
        Assert.True(verdict.Passed, verdict.Message);
        Assert.True(sink.Steps[^1].Loss < 0.01);
        Assert.True(sink.Steps.Count < 300);
        Assert.Equal(RunState.Succeeded, sink.States[^1]);
        Assert.Empty(sink.Alerts); // a sanity check is its own diagnosis
    }

    [Fact]
    public void AModelThatCannotSeeItsInputFailsToOverfit()
    {
        // A 1×1 average-pool window of stride 28 keeps one pixel of 784: the classes cannot be told apart.
        var blind = new ModelSpec
        {
            Name = "blind",
            Input = new InputSpec(1, 28, 28),
            Layers = [new() { Kind = "avgpool2d", Kernel = 1, Stride = 28 }, new() { Kind = "flatten" }, new() { Kind = "linear", Units = 4 }],
        };
        RecordingSink sink = Run(blind, new Hyperparameters { Optimizer = OptimizerKind.Adam, LearningRate = 1e-2 },
            new SanityOptions { Check = SanityCheck.OverfitSubset, MaxSteps = 100 });
        SanityEvent verdict = sink.Events.OfType<SanityEvent>().Single();
        Assert.False(verdict.Passed);
        Assert.Equal(100, verdict.Step);
        Assert.Contains("still", verdict.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheRangeTestSweepsExponentiallyStopsWhenTheLossBlowsUpAndSuggestsARate()
    {
        RecordingSink sink = Run(ModelPresets.LeNet5(classes: 4), new Hyperparameters { LearningRate = 0.01, Momentum = 0.9 },
            new SanityOptions { Check = SanityCheck.LearningRateRangeTest, MinLearningRate = 1e-4, MaxLearningRate = 10, Steps = 300 });
        StepEvent[] steps = [.. sink.Steps];
        Assert.Equal(1e-4, steps[0].LearningRate, 12);
        double ratio = Math.Pow(1e5, 1 / 299.0);
        Assert.All(steps.Skip(1).Zip(steps), p => Assert.Equal(ratio, p.First.LearningRate / p.Second.LearningRate, 9));
        SanityEvent verdict = sink.Events.OfType<SanityEvent>().Single();
        output.WriteLine(verdict.Message);
        Assert.True(verdict.Passed, verdict.Message);
        Assert.True(steps.Length <= 300);
        // LeNet with momentum 0.9 trains well at 0.01–0.05 on this data (docs/benchmarks.md uses 0.05 on Fashion-MNIST).
        Assert.InRange(verdict.SuggestedLearningRate!.Value, 1e-3, 1e-1);
        Assert.Equal(RunState.Succeeded, sink.States[^1]);
    }

    [Fact]
    public void TheRangeTestStopsOnceTheSmoothedLossPassesFourTimesItsBestOrTurnsNaN()
    {
        var options = new SanityOptions { Check = SanityCheck.LearningRateRangeTest, MinLearningRate = 1e-3, MaxLearningRate = 1, Steps = 100 };
        var test = new RangeTest(options);
        int step = 0;
        while (!test.Done && step < 100)
        {
            step++;
            double rate = test.LearningRate(step);
            test.Add(rate, rate < 0.1 ? 2.0 - (10 * rate) : 1.0 + Math.Pow(20 * (rate - 0.1), 2)); // falls to 1 at 0.1, then explodes
        }

        Assert.InRange(step, 70, 99);
        SanityEvent verdict = test.Verdict(step);
        Assert.True(verdict.Passed);
        Assert.InRange(verdict.SuggestedLearningRate!.Value, 0.008, 0.015); // a tenth of ~0.1; the smoothing lags a few steps (7% each)
        Assert.Contains("blew up past", verdict.Message, StringComparison.Ordinal);

        var nan = new RangeTest(options);
        nan.Add(1e-3, 1.4);
        nan.Add(2e-3, double.NaN);
        Assert.True(nan.Done);
        Assert.False(nan.Verdict(2).Passed);
    }

    private static RecordingSink Run(ModelSpec spec, Hyperparameters hp, SanityOptions sanity)
    {
        var sink = new RecordingSink();
        using var folder = new TempFolder();
        using Trainer trainer = new(Harness.Plan(spec, s_data, hp with { Epochs = 3 }, new MonitoringOptions { StatsEvery = 10 }, sanity), s_data, sink,
            new TrainerOptions { CheckpointPath = folder.File("c.bin"), WeightsPath = folder.File("m.dat") });
        using var control = new TrainingControl();
        Assert.Equal(TrainingOutcome.Succeeded, trainer.Run(control, CancellationToken.None));
        Assert.Equal(sanity.Check != SanityCheck.LearningRateRangeTest, File.Exists(folder.File("m.dat")));
        return sink;
    }
}
