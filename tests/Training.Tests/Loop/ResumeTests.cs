using TrainingService.Contracts.Specs;
using TrainingService.Contracts.Training;
using TrainingService.Training.Data;
using TrainingService.Training.Loop;
using TrainingService.Training.Specs;
using Xunit;
using Xunit.Abstractions;

namespace TrainingService.Training.Tests.Loop;

/// <summary>A run stopped by the host and continued from its checkpoint by a new trainer is the same run.</summary>
[Collection(SequentialTraining.Name)]
public sealed class ResumeTests(ITestOutputHelper output) : IDisposable
{
    // 400 samples, 10% held out: 360 to train on in batches of 32, so 12 steps per epoch and 24 in all.
    private static readonly ImageDataset s_data = Harness.Shapes(samples: 400);

    private readonly TempFolder _folder = new();

    public static TheoryData<string, int> Interruptions => new()
    {
        { "lenet5, sgd with momentum", 7 },
        { "lenet5, sgd with momentum", 12 }, // the last step of epoch 1
        { "dropout, adam", 7 },
        { "dropout, adam", 17 },
        { "lenet5, augmented", 7 },
        { "lenet5, augmented", 17 },
    };

    [Theory]
    [MemberData(nameof(Interruptions))]
    public void ResumedRunRepeatsTheUninterruptedRunStepByStep(string model, int interruptAfterStep)
    {
        (ModelSpec spec, Hyperparameters hp) = Config(model);
        RecordingSink uninterrupted = Harness.Train(spec, s_data, hp, statsEvery: 5);

        (RecordingSink before, RecordingSink after) = InterruptAndResume(spec, hp, interruptAfterStep, pauseAtStep: null);

        Assert.Equal(interruptAfterStep, before.Steps.Count);
        StepEvent[] resumed = [.. before.Steps, .. after.Steps];
        Assert.Equal(uninterrupted.Steps.Select(s => (s.Epoch, s.Step)), resumed.Select(s => (s.Epoch, s.Step)));
        double[] expected = [.. uninterrupted.Steps.Select(s => s.Loss)];
        double[] actual = [.. resumed.Select(s => s.Loss)];
        double worst = expected.Zip(actual, (e, a) => Math.Abs(e - a) / Math.Abs(e)).Max();
        output.WriteLine($"{model}, interrupted after step {interruptAfterStep}: {expected.Length} steps, largest relative loss difference {worst:G3}");
        Assert.Equal(expected, actual);
        Assert.Equal(uninterrupted.Steps.Select(s => s.LearningRate), resumed.Select(s => s.LearningRate));
        Assert.Equal(
            uninterrupted.Epochs.Select(e => (e.Epoch, e.TrainLoss, e.TrainAccuracy, e.ValidationLoss, e.ValidationAccuracy)),
            before.Epochs.Concat(after.Epochs).Select(e => (e.Epoch, e.TrainLoss, e.TrainAccuracy, e.ValidationLoss, e.ValidationAccuracy)));
    }

    [Fact]
    public void SeqRunsWithoutGapAcrossPauseResumeAndRestore()
    {
        (ModelSpec spec, Hyperparameters hp) = Config("lenet5, sgd with momentum");

        (RecordingSink before, RecordingSink after) = InterruptAndResume(spec, hp, interruptAfterStep: 7, pauseAtStep: 3);

        Assert.Equal([RunState.Running, RunState.Paused, RunState.Running, RunState.Queued], before.States); // Queued: stopped with the host
        Assert.Equal([RunState.Running, RunState.Succeeded], after.States);
        Assert.Equal("resumed at step 7", ((StateEvent)after.Events[0]).Reason);
        Harness.AssertConsecutiveSeq(before.Seqs.Concat(after.Seqs));
    }

    [Fact]
    public async Task SeqRunsWithoutGapWhenTheHostStopsAPausedRunAndItIsRestored()
    {
        (ModelSpec spec, Hyperparameters hp) = Config("lenet5, sgd with momentum");
        string path = _folder.File("paused.checkpoint");
        using var stop = new CancellationTokenSource();
        using var control = new TrainingControl();
        Task? stopping = null;
        long? checkpointStepWhenPaused = null;
        var before = new RecordingSink(e =>
        {
            if (e is StepEvent { Step: 3 })
            {
                control.Pause();
            }
            else if (e is StateEvent { State: RunState.Paused })
            {
                // Whoever sees the job paused (an export, the next worker) finds its weights at this step already.
                checkpointStepWhenPaused = File.Exists(path) ? TrainingService.Training.Export.StateDict.ReadCheckpoint(path).Step : -1;
                stopping = Task.Run(async () =>
                {
                    await Task.Delay(100);
                    await stop.CancelAsync();
                });
            }
        });
        using (Trainer first = Harness.Trainer(spec, s_data, hp, before, checkpointPath: path))
        {
            Assert.Equal(TrainingOutcome.Interrupted, first.Run(control, stop.Token));
        }

        await stopping!;
        Assert.Equal(3, checkpointStepWhenPaused);
        var after = new RecordingSink();
        using (Trainer second = Harness.Trainer(spec, s_data, hp, after, checkpointPath: path))
        using (var fresh = new TrainingControl())
        {
            second.RestoreFrom(path);
            after.ContinueAfter(second.Position.Seq);
            Assert.Equal(TrainingOutcome.Succeeded, second.Run(fresh, CancellationToken.None));
        }

        Assert.Equal(4, after.Steps[0].Step);
        Harness.AssertConsecutiveSeq(before.Seqs.Concat(after.Seqs));
    }

    public void Dispose() => _folder.Dispose();

    private static (ModelSpec Spec, Hyperparameters Hp) Config(string model) => model switch
    {
        "lenet5, sgd with momentum" => (ModelPresets.LeNet5(classes: 4), new Hyperparameters
        {
            Epochs = 2, BatchSize = 32, LearningRate = 0.05, Momentum = 0.9, Schedule = ScheduleKind.Cosine, ValidationFraction = 0.1,
        }),
        "dropout, adam" => (Harness.DropoutNet(), new Hyperparameters
        {
            Epochs = 2, BatchSize = 32, Optimizer = OptimizerKind.Adam, LearningRate = 1e-3, Momentum = 0, ValidationFraction = 0.1, Seed = 5,
        }),
        "lenet5, augmented" => (ModelPresets.LeNet5(classes: 4), new Hyperparameters
        {
            Epochs = 2, BatchSize = 32, LearningRate = 0.05, Momentum = 0.9, ValidationFraction = 0.1, Seed = 9,
            Augmentation = new AugmentationOptions { RandomCrop = new RandomCropOptions { Padding = 4 }, HorizontalFlip = true, Translate = 2 },
        }),
        _ => throw new ArgumentOutOfRangeException(nameof(model), model, null),
    };

    /// <summary>
    /// Trains until the host stops it after <paramref name="interruptAfterStep"/> (optionally pausing at
    /// <paramref name="pauseAtStep"/> and resuming from another thread), then continues in a new trainer from the checkpoint.
    /// </summary>
    private (RecordingSink Before, RecordingSink After) InterruptAndResume(ModelSpec spec, Hyperparameters hp, int interruptAfterStep, int? pauseAtStep)
    {
        string path = _folder.File($"{Guid.NewGuid():N}.checkpoint");
        using var stop = new CancellationTokenSource();
        using var control = new TrainingControl();
        var before = new RecordingSink(e =>
        {
            switch (e)
            {
                case StepEvent step when step.Step == pauseAtStep:
                    control.Pause();
                    break;
                case StepEvent step when step.Step == interruptAfterStep:
                    stop.Cancel();
                    break;
                case StateEvent { State: RunState.Paused }:
                    new Thread(() =>
                    {
                        Thread.Sleep(50);
                        control.Resume();
                    }).Start();
                    break;
            }
        });
        using (Trainer first = Harness.Trainer(spec, s_data, hp, before, statsEvery: 5, checkpointPath: path))
        {
            Assert.Equal(TrainingOutcome.Interrupted, first.Run(control, stop.Token));
        }

        Assert.True(File.Exists(path), "an interrupted run leaves a checkpoint");
        var after = new RecordingSink();
        using (Trainer second = Harness.Trainer(spec, s_data, hp, after, statsEvery: 5, checkpointPath: path))
        using (var fresh = new TrainingControl())
        {
            second.RestoreFrom(path);
            after.ContinueAfter(second.Position.Seq);
            Assert.Equal(TrainingOutcome.Succeeded, second.Run(fresh, CancellationToken.None));
        }

        return (before, after);
    }
}
