using TrainingService.Contracts.Training;
using TrainingService.Training.Data;
using TrainingService.Training.Loop;
using TrainingService.Training.Specs;
using Xunit;

namespace TrainingService.Training.Tests.Loop;

/// <summary>Pause, resume and cancel, given from the training thread's sink and from other threads.</summary>
[Collection(SequentialTraining.Name)]
public sealed class ControlTests
{
    // 12 steps per epoch: 384 samples in batches of 32, no validation.
    private static readonly ImageDataset s_data = Harness.Shapes(samples: 384);
    private static readonly Hyperparameters s_hp = new() { Epochs = 2, BatchSize = 32, ValidationFraction = 0 };

    [Theory]
    [InlineData(5)]
    [InlineData(12)] // the last step of an epoch
    public void CancelStopsWithinOneStepAndEndsWithACancelledEvent(int cancelAfterStep)
    {
        using var control = new TrainingControl();
        var sink = new RecordingSink(e =>
        {
            if (e is StepEvent step && step.Step == cancelAfterStep)
            {
                control.Cancel();
            }
        });
        using Trainer trainer = Harness.Trainer(ModelPresets.LeNet5(classes: 4), s_data, s_hp, sink);

        Assert.Equal(TrainingOutcome.Cancelled, trainer.Run(control, CancellationToken.None));

        Assert.Equal(cancelAfterStep, sink.Steps[^1].Step);
        StateEvent last = Assert.IsType<StateEvent>(sink.Events[^1]);
        Assert.Equal(RunState.Cancelled, last.State);
        Assert.Equal([RunState.Running, RunState.Cancelled], sink.States);
        Harness.AssertConsecutiveSeq(sink.Seqs);
    }

    [Fact]
    public async Task PauseThenResumeFromAnotherThreadContinuesToSuccess()
    {
        using var control = new TrainingControl();
        Task? resuming = null;
        long pausedAtStep = 0;
        var sink = new RecordingSink(e =>
        {
            switch (e)
            {
                case StepEvent { Step: 4 } step:
                    control.Pause();
                    pausedAtStep = step.Step;
                    break;
                case StateEvent { State: RunState.Paused }:
                    resuming = Task.Run(async () =>
                    {
                        await Task.Delay(200);
                        control.Resume();
                    });
                    break;
            }
        });
        using Trainer trainer = Harness.Trainer(ModelPresets.LeNet5(classes: 4), s_data, s_hp, sink);

        TrainingOutcome outcome = trainer.Run(control, CancellationToken.None);
        await resuming!;

        Assert.Equal(TrainingOutcome.Succeeded, outcome);
        Assert.Equal([RunState.Running, RunState.Paused, RunState.Running, RunState.Succeeded], sink.States);
        int paused = sink.Events.ToList().FindIndex(e => e is StateEvent { State: RunState.Paused });
        Assert.Equal(pausedAtStep, Assert.IsType<StepEvent>(sink.Events[paused - 1]).Step);
        Assert.Equal(RunState.Running, Assert.IsType<StateEvent>(sink.Events[paused + 1]).State);
        Assert.Equal(pausedAtStep + 1, Assert.IsType<StepEvent>(sink.Events[paused + 2]).Step);
        Assert.Equal(Enumerable.Range(1, 24).Select(i => (long)i), sink.Steps.Select(s => s.Step));
        Harness.AssertConsecutiveSeq(sink.Seqs);
    }

    [Fact]
    public void CancelWhilePausedEndsCancelledWithoutRunningAgain()
    {
        using var control = new TrainingControl();
        var sink = new RecordingSink(e =>
        {
            switch (e)
            {
                case StepEvent { Step: 2 }:
                    control.Pause();
                    break;
                case StateEvent { State: RunState.Paused }:
                    new Thread(() =>
                    {
                        Thread.Sleep(50);
                        control.Cancel();
                    }).Start();
                    break;
            }
        });
        using Trainer trainer = Harness.Trainer(ModelPresets.LeNet5(classes: 4), s_data, s_hp, sink);

        Assert.Equal(TrainingOutcome.Cancelled, trainer.Run(control, CancellationToken.None));

        Assert.Equal([RunState.Running, RunState.Paused, RunState.Cancelled], sink.States);
        Assert.Equal(2, sink.Steps[^1].Step);
        Harness.AssertConsecutiveSeq(sink.Seqs);
    }
}
