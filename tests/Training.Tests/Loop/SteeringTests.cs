using TrainingService.Contracts.Training;
using TrainingService.Training.Data;
using TrainingService.Training.Loop;
using TrainingService.Training.Specs;
using Xunit;

namespace TrainingService.Training.Tests.Loop;

/// <summary>A person steering a run: new hyperparameters from the next step, recorded and checkpointed; finishing early.</summary>
[Collection(SequentialTraining.Name)]
public sealed class SteeringTests
{
    private static readonly ImageDataset s_data = Harness.Shapes(samples: 640, testSamples: 64);

    [Fact]
    public void ANewLearningRateAppliesFromTheNextStepAndIsRecordedWithItsReason()
    {
        using var control = new TrainingControl();
        var sink = new RecordingSink(e =>
        {
            if (e is StepEvent { Step: 15 })
            {
                control.Change(new HyperparameterChange { LearningRate = 0.001, WeightDecay = 0.01, Reason = "loss too noisy" });
            }
        });
        using Trainer trainer = Harness.Trainer(ModelPresets.LeNet5(classes: 4), s_data, new Hyperparameters { Epochs = 3, LearningRate = 0.05 }, sink);
        Assert.Equal(TrainingOutcome.Succeeded, trainer.Run(control, CancellationToken.None));

        HyperparametersEvent change = Assert.Single(sink.Events.OfType<HyperparametersEvent>());
        Assert.Equal((15L, 0.001, 0.9, 0.01, "loss too noisy"), (change.Step, change.LearningRate, change.Momentum, change.WeightDecay, change.Reason));
        Assert.All(sink.Steps.Where(s => s.Step <= 15), s => Assert.Equal(0.05, s.LearningRate));
        Assert.All(sink.Steps.Where(s => s.Step > 15), s => Assert.Equal(0.001, s.LearningRate));
        int at = sink.Events.ToList().IndexOf(change);
        Assert.Equal(16, ((StepEvent)sink.Events.Skip(at + 1).First(e => e is StepEvent)).Step);
        Harness.AssertConsecutiveSeq(sink.Seqs);
    }

    [Fact]
    public async Task ARunResumedFromACheckpointKeepsTheChangedValues()
    {
        using var folder = new TempFolder();
        string checkpoint = folder.File("job.ckpt");
        using (var control = new TrainingControl())
        using (var paused = new ManualResetEventSlim())
        {
            var sink = new RecordingSink(e =>
            {
                if (e is StateEvent { State: RunState.Paused })
                {
                    paused.Set();
                }

                if (e is StepEvent { Step: 3 })
                {
                    control.Change(new HyperparameterChange { LearningRate = 0.002 });
                }

                if (e is StepEvent { Step: 25 })
                {
                    control.Pause(); // checkpoints at the pause; then the host stops
                }
            });
            using Trainer first = Harness.Trainer(ModelPresets.LeNet5(classes: 4), s_data, new Hyperparameters { Epochs = 3, LearningRate = 0.05 }, sink, checkpointPath: checkpoint);
            using var stop = new CancellationTokenSource();
            Task<TrainingOutcome> run = Task.Run(() => first.Run(control, stop.Token));
            Assert.True(paused.Wait(TimeSpan.FromSeconds(60)), "the run never paused");
            stop.Cancel();
            Assert.Equal(TrainingOutcome.Interrupted, await run);
        }

        var resumed = new RecordingSink();
        using Trainer second = Harness.Trainer(ModelPresets.LeNet5(classes: 4), s_data, new Hyperparameters { Epochs = 3, LearningRate = 0.05 }, resumed, checkpointPath: checkpoint);
        second.RestoreFrom(checkpoint);
        using var again = new TrainingControl();
        Assert.Equal(TrainingOutcome.Succeeded, second.Run(again, CancellationToken.None));
        Assert.Equal(26, resumed.Steps[0].Step);
        Assert.All(resumed.Steps, s => Assert.Equal(0.002, s.LearningRate));
    }

    [Fact]
    public void FinishingEarlyClosesThePartialEpochAndSucceedsWithTheModel()
    {
        using var folder = new TempFolder();
        using var control = new TrainingControl();
        var sink = new RecordingSink(e =>
        {
            if (e is StepEvent { Step: 14 })
            {
                control.Finish();
            }
        });
        using Trainer trainer = new(Harness.Plan(ModelPresets.LeNet5(classes: 4), s_data, new Hyperparameters { Epochs = 5 }, new MonitoringOptions()), s_data, sink,
            new TrainerOptions { WeightsPath = folder.File("model.dat") });
        Assert.Equal(TrainingOutcome.Succeeded, trainer.Run(control, CancellationToken.None));

        Assert.Equal(14, sink.Steps[^1].Step);
        Assert.Equal(2, sink.Epochs.Count); // 10 steps an epoch: one whole, one partial (4 steps), both validated
        Assert.NotNull(sink.Epochs[^1].ValidationAccuracy);
        StateEvent last = sink.Events.OfType<StateEvent>().Last();
        Assert.Equal((RunState.Succeeded, "finished early at step 14 by request"), (last.State, last.Reason));
        Assert.True(File.Exists(folder.File("model.dat")));
    }
}
