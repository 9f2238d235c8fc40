using TrainingService.Contracts.Specs;
using TrainingService.Contracts.Training;
using TrainingService.Training.Data;
using TrainingService.Training.Loop;
using TrainingService.Training.Specs;
using Xunit;

namespace TrainingService.Training.Tests.Loop;

/// <summary>
/// With two threads a job trains each batch as two halves at once (<see cref="HalfBatches"/>): the same training as the
/// whole batch on one thread, to rounding, and the same run every time.
/// </summary>
[Collection(SequentialTraining.Name)]
public sealed class HalfBatchTests
{
    private static readonly ImageDataset s_data = Harness.Shapes(samples: 240);
    private static readonly Hyperparameters s_hp = new() { Epochs = 1, BatchSize = 48, LearningRate = 0.05, Seed = 5, ValidationFraction = 0 };

    [Fact]
    public void TwoHalvesAtOnceTrainAsTheWholeBatchDoes()
    {
        ModelSpec lenet = ModelPresets.LeNet5(classes: 4);
        (RecordingSink whole, bool wholeInHalves) = Train(lenet, threads: 1);
        (RecordingSink halves, bool inHalves) = Train(lenet, threads: 2);

        Assert.False(wholeInHalves);
        Assert.True(inHalves);
        double[] expected = [.. whole.Steps.Select(s => s.Loss)], actual = [.. halves.Steps.Select(s => s.Loss)];
        Assert.Equal(5, expected.Length);
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-4 * Math.Abs(expected[i]), $"step {i + 1}: loss {actual[i]} in halves, {expected[i]} whole");
        }

        // The batch's accuracy counts both halves; the layer statistics see the whole batch's outputs, joined back in order.
        Assert.Equal(whole.Epochs.Single().TrainAccuracy, halves.Epochs.Single().TrainAccuracy, 1e-9);
        LayersEvent[] wholeLayers = [.. whole.Events.OfType<LayersEvent>()], halvesLayers = [.. halves.Events.OfType<LayersEvent>()];
        Assert.Equal(5, wholeLayers.Length);
        Assert.Equal(wholeLayers.Length, halvesLayers.Length);
        foreach ((LayersEvent w, LayersEvent h) in wholeLayers.Zip(halvesLayers))
        {
            Assert.Equal(w.Layers.Select(l => l.Name), h.Layers.Select(l => l.Name));
            foreach ((LayerStats a, LayerStats b) in w.Layers.Zip(h.Layers))
            {
                Assert.True(Math.Abs(a.Mean - b.Mean) <= 1e-4 * (Math.Abs(a.Mean) + a.Std), $"step {w.Step} {a.Name}: mean {b.Mean} in halves, {a.Mean} whole");
                Assert.True(Math.Abs(a.Std - b.Std) <= 1e-4 * a.Std, $"step {w.Step} {a.Name}: std {b.Std} in halves, {a.Std} whole");
                Assert.Equal(a.ZeroFraction, b.ZeroFraction, 1e-3);
                Assert.Equal(a.InactiveUnits, b.InactiveUnits);
            }

            foreach ((ParameterStats a, ParameterStats b) in w.Parameters.Zip(h.Parameters))
            {
                Assert.True(Math.Abs(a.GradNorm - b.GradNorm) <= 1e-4 * a.GradNorm, $"step {w.Step} {a.Name}: gradient norm {b.GradNorm} in halves, {a.GradNorm} whole");
            }
        }
    }

    [Fact]
    public void TrainingInHalvesIsTheSameRunEveryTime()
    {
        ModelSpec lenet = ModelPresets.LeNet5(classes: 4);
        (RecordingSink first, _) = Train(lenet, threads: 2);
        (RecordingSink second, _) = Train(lenet, threads: 2);

        Assert.Equal(first.Steps.Select(s => s.Loss), second.Steps.Select(s => s.Loss));
        Assert.Equal(
            first.Events.OfType<LayersEvent>().SelectMany(e => e.Layers.Select(l => (l.Mean, l.Std, l.Min, l.Max))),
            second.Events.OfType<LayersEvent>().SelectMany(e => e.Layers.Select(l => (l.Mean, l.Std, l.Min, l.Max))));
        Assert.Equal(
            first.Events.OfType<LayersEvent>().SelectMany(e => e.Parameters.Select(p => (p.GradNorm, p.UpdateRatio))),
            second.Events.OfType<LayersEvent>().SelectMany(e => e.Parameters.Select(p => (p.GradNorm, p.UpdateRatio))));
    }

    [Fact]
    public void ModelsWithBatchNormOrDropoutTrainTheWholeBatchOnOneThread()
    {
        Assert.False(Train(Harness.DropoutNet(), threads: 2).InHalves);
        Assert.False(Train(ModelPresets.SmallVgg(classes: 4), threads: 2, epochs: 0).InHalves);
    }

    [Fact]
    public void AnExceptionInTheOtherHalfIsThrownOnTheJobsThreadAndTheThreadGoesOn()
    {
        using var halves = new HalfBatches();
        halves.Start(() => throw new InvalidOperationException("second half"));
        Assert.Equal("second half", Assert.Throws<InvalidOperationException>(() => halves.Wait()).Message);

        halves.Start(() => throw new InvalidOperationException("dropped"));
        halves.Wait(rethrow: false); // the job's own half failed too: its exception is the one thrown
        int ran = 0;
        halves.Start(() => ran++);
        halves.Wait();
        Assert.Equal(1, ran);
    }

    [Fact]
    public void JobsOneAfterAnotherOnTheCallersSecondThreadTrainAsOnTheirOwnAndLeaveItRunning()
    {
        ModelSpec lenet = ModelPresets.LeNet5(classes: 4);
        (RecordingSink own, _) = Train(lenet, threads: 2);
        using var halves = new HalfBatches();
        (RecordingSink first, bool inHalves) = Train(lenet, threads: 2, halves: halves);
        (RecordingSink second, _) = Train(lenet, threads: 2, halves: halves);

        Assert.True(inHalves);
        Assert.Equal(own.Steps.Select(s => s.Loss), first.Steps.Select(s => s.Loss));
        Assert.Equal(own.Steps.Select(s => s.Loss), second.Steps.Select(s => s.Loss));
        int ran = 0;
        halves.Start(() => ran++); // not disposed by the trainers
        halves.Wait();
        Assert.Equal(1, ran);
    }

    [Fact]
    public void EvaluatingAJobThatTrainsInHalvesLeavesTheCallersThreadCountAsItWas()
    {
        // On a thread of its own, whose count this test may change; what it saw is asserted here, on the test's thread
        // (an assertion failing on that thread would end the test process, not fail the test).
        (bool InHalves, double? Loss, int After)? seen = null;
        Exception? fault = null;
        var caller = new Thread(() =>
        {
            try
            {
                _ = TorchSharp.torch.get_num_threads();
                TorchSharp.torch.set_num_threads(3);
                using Trainer trainer = new(Harness.Plan(ModelPresets.LeNet5(classes: 4), s_data, s_hp with { ValidationFraction = 0.2 }, threads: 2), s_data, new RecordingSink());
                double? loss = trainer.Evaluate().Loss;
                seen = (trainer.TrainsInHalves, loss, TorchSharp.torch.get_num_threads());
            }
            catch (Exception ex)
            {
                fault = ex;
            }
        });
        caller.Start();
        caller.Join();

        Assert.Null(fault);
        Assert.True(seen!.Value.InHalves);
        Assert.NotNull(seen.Value.Loss);
        Assert.Equal(3, seen.Value.After);
    }

    private static (RecordingSink Sink, bool InHalves) Train(ModelSpec spec, int threads, int epochs = 1, HalfBatches? halves = null)
    {
        var sink = new RecordingSink();
        using Trainer trainer = new(
            Harness.Plan(spec, s_data, s_hp with { Epochs = Math.Max(epochs, 1) }, new MonitoringOptions { StatsEvery = 1 }, threads: threads), s_data, sink,
            new TrainerOptions { Halves = halves });
        if (epochs > 0)
        {
            using var control = new TrainingControl();
            Assert.Equal(TrainingOutcome.Succeeded, trainer.Run(control, CancellationToken.None));
        }

        return (sink, trainer.TrainsInHalves);
    }
}
