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
