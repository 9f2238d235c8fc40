using TrainingService.Contracts.Training;
using TrainingService.Training.Data;
using TrainingService.Training.Loop;
using TrainingService.Training.Specs;
using Xunit;
using Xunit.Abstractions;

namespace TrainingService.Training.Tests.Loop;

/// <summary>The standard sanity checks of a training loop: the loss starts where chance puts it, and a tiny set is learnt by heart.</summary>
[Collection(SequentialTraining.Name)]
public sealed class LearningTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(4)]
    [InlineData(10)]
    public void InitialLossIsCloseToLogOfClassCount(int classes)
    {
        ImageDataset data = Harness.Shapes(samples: 256, classes);
        double[] firstLosses = new double[3];
        for (int seed = 1; seed <= firstLosses.Length; seed++)
        {
            using var control = new TrainingControl();
            var sink = new RecordingSink(e =>
            {
                if (e is StepEvent)
                {
                    control.Cancel();
                }
            });
            using Trainer trainer = Harness.Trainer(
                ModelPresets.LeNet5(classes: classes), data, new Hyperparameters { Epochs = 1, Seed = seed, ValidationFraction = 0 }, sink);
            Assert.Equal(TrainingOutcome.Cancelled, trainer.Run(control, CancellationToken.None));
            firstLosses[seed - 1] = sink.Steps.Single().Loss;
        }

        double mean = firstLosses.Average();
        double expected = Math.Log(classes);
        output.WriteLine($"C={classes}: first losses {string.Join(", ", firstLosses.Select(l => l.ToString("F4")))}; mean {mean:F4}, ln C {expected:F4}");
        Assert.InRange(mean, expected * 0.85, expected * 1.15);
    }

    [Fact]
    public void ThirtyTwoSamplesAreLearntByHeartWithin200Steps()
    {
        ImageDataset data = Harness.Shapes(samples: 32);
        var hp = new Hyperparameters
        {
            Epochs = 200,
            BatchSize = 32,
            Optimizer = OptimizerKind.Adam,
            LearningRate = 1e-3,
            Momentum = 0,
            ValidationFraction = 0,
        };

        RecordingSink sink = Harness.Train(ModelPresets.LeNet5(classes: 4), data, hp);

        Assert.Equal(200, sink.Steps.Count);
        int? firstPerfect = sink.Epochs.FirstOrDefault(e => e.TrainAccuracy == 1.0)?.Epoch;
        output.WriteLine($"first step at 100% training accuracy: {firstPerfect}; last loss {sink.Steps[^1].Loss:G4}");
        Assert.Equal(1.0, sink.Epochs[^1].TrainAccuracy);
        Assert.True(sink.Steps[^1].Loss < 0.05, $"the last loss is {sink.Steps[^1].Loss}");
    }
}

/// <summary>The built-in dataset is the default: a small CNN must learn it quickly on two cores.</summary>
[Collection(SequentialTraining.Name)]
public sealed class ShapesLearningTests(ITestOutputHelper output)
{
    [Fact]
    public void SmallCnnPassesNinetyFivePercentOnFourShapeClasses()
    {
        // The default shapes dataset (4 classes, 2,000 training and 500 test images of 28×28) and a two-convolution CNN.
        ImageDataset data = ShapesDataset.Generate(new ShapesOptions());
        var spec = new Contracts.Specs.ModelSpec
        {
            Input = new Contracts.Specs.InputSpec(1, 28, 28),
            Layers =
            [
                new() { Kind = "conv2d", Filters = 8, Kernel = 3, Padding = 1 }, new() { Kind = "relu" }, new() { Kind = "maxpool2d", Kernel = 2 },
                new() { Kind = "conv2d", Filters = 16, Kernel = 3, Padding = 1 }, new() { Kind = "relu" }, new() { Kind = "maxpool2d", Kernel = 2 },
                new() { Kind = "flatten" }, new() { Kind = "linear", Units = 4 },
            ],
        };
        var clock = System.Diagnostics.Stopwatch.StartNew();

        RecordingSink sink = Harness.Train(spec, data, new Hyperparameters { Epochs = 10, Optimizer = OptimizerKind.Adam, LearningRate = 3e-3 }, statsEvery: 10);

        clock.Stop();
        double best = sink.Epochs.Max(e => e.ValidationAccuracy ?? 0);
        output.WriteLine($"validation accuracy per epoch: {string.Join(", ", sink.Epochs.Select(e => $"{e.ValidationAccuracy:P1}"))}; {clock.Elapsed.TotalSeconds:F1} s");
        Assert.True(best > 0.95, $"best validation accuracy {best:P1}"); // its time is a benchmark figure, not asserted here
    }
}
