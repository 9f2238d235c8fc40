using TrainingService.Contracts.Specs;
using TrainingService.Contracts.Training;
using TrainingService.Training.Data;
using TrainingService.Training.Loop;
using TrainingService.Training.Specs;
using TrainingService.Training.Tests.Loop;
using Xunit;
using Xunit.Abstractions;

namespace TrainingService.Training.Tests.Monitoring;

/// <summary>
/// Each rule provoked by a deliberately broken job, trained for real, and healthy jobs that raise no warning.
/// </summary>
[Collection(SequentialTraining.Name)]
public sealed class DiagnosisRunsTests(ITestOutputHelper output)
{
    // 32 steps an epoch at batch 64: the layer-statistics rules (statistics every 10 steps, 5 skipped, a window of 10)
    // judge from step 150 on, so every run below is at least 200 steps long.
    private static readonly ImageDataset s_shapes = Harness.Shapes(samples: 2048, testSamples: 256);

    [Fact]
    public void AHealthyLeNetOnShapesRaisesNoWarning()
    {
        RecordingSink sink = Run(ModelPresets.LeNet5(classes: 4), s_shapes, new Hyperparameters { Epochs = 10, LearningRate = 0.05, Momentum = 0.9 });
        Assert.True(sink.Epochs[^1].ValidationAccuracy > 0.9, $"accuracy {sink.Epochs[^1].ValidationAccuracy}");
        Assert.DoesNotContain(sink.Alerts, a => a.Severity != "info");
    }

    [Fact]
    public void TooHighALearningRateIsCalledOutWithASmallerOne()
    {
        RecordingSink sink = Run(ModelPresets.LeNet5(classes: 4), s_shapes,
            new Hyperparameters { Epochs = 2, LearningRate = 1, Momentum = 0.9, Seed = 3 });
        AlertEvent alert = sink.Alerts.First(a => a.Code == "loss-explosion");
        Assert.Equal("warning", alert.Severity);
        Assert.Contains("try 0.1 instead of 1", alert.Suggestion, StringComparison.Ordinal);
    }

    [Fact]
    public void ANaNLossFailsTheJobAndKeepsTheLastCheckpoint()
    {
        // Biases of 3e38 (float's largest is 3.4e38): the next layer's sums overflow to ±∞, the logits to NaN.
        var spec = new ModelSpec
        {
            Name = "overflow",
            Input = new InputSpec(1, 28, 28),
            Layers = [new() { Kind = "flatten" }, new() { Kind = "linear", Units = 64, BiasInit = 3e38 }, new() { Kind = "relu" }, new() { Kind = "linear", Units = 4 }],
        };
        using var folder = new TempFolder();
        string checkpoint = folder.File("job.ckpt");
        var sink = new RecordingSink();
        using (Trainer trainer = new(Harness.Plan(spec, s_shapes, new Hyperparameters { Epochs = 3 }, new MonitoringOptions { StatsEvery = 10 }), s_shapes, sink,
            new TrainerOptions { CheckpointPath = checkpoint }))
        {
            using var control = new TrainingControl();
            Assert.Equal(TrainingOutcome.Failed, trainer.Run(control, CancellationToken.None));
        }

        AlertEvent alert = Assert.Single(sink.Alerts);
        Assert.Equal(("non-finite", "critical", 1L), (alert.Code, alert.Severity, alert.Step));
        Assert.Equal([RunState.Running, RunState.Failed], sink.States);
        Assert.Equal(alert.Message, sink.Events.OfType<StateEvent>().Last().Reason + " The job stops; its last checkpoint is kept.");
        Assert.Single(sink.Steps);
        Assert.False(File.Exists(checkpoint)); // nothing after the failure was saved over what was there
        output.WriteLine($"{alert.Message} | {alert.Suggestion}");

        // Told to only alert, the same job trains on.
        RecordingSink alertOnly = Run(spec, s_shapes, new Hyperparameters { Epochs = 1 }, new DiagnosticsOptions { OnNonFinite = NonFiniteAction.Alert });
        Assert.Equal(RunState.Succeeded, alertOnly.States[^1]);
        Assert.Single(alertOnly.Alerts, a => a.Code == "non-finite");
    }

    [Fact]
    public void StronglyNegativeBiasesKillTheReLUs()
    {
        ModelSpec spec = ModelPresets.LeNet5(classes: 4) with
        {
            Layers = [.. ModelPresets.LeNet5(classes: 4).Layers!.Select((l, i) => i == 7 ? l with { BiasInit = -20 } : l)], // linear1 (120 units) → relu3
        };
        RecordingSink sink = Run(spec, s_shapes, new Hyperparameters { Epochs = 7, LearningRate = 0.01 });
        // relu3 dies; relu4 behind it may follow (its inputs are all zero, so its units output their own bias).
        Assert.Contains(sink.Alerts, a => a.Code == "dead-relu" && a.Layer == "relu3" && a.Message.Contains("120 of 120", StringComparison.Ordinal));
        Assert.DoesNotContain(sink.Alerts, a => a.Code == "dead-relu" && a.Layer is "relu1" or "relu2");
    }

    [Fact]
    public void ADeepSigmoidStackSaturatesAndItsGradientsVanish()
    {
        var layers = new List<LayerSpec> { new() { Kind = "flatten" } };
        for (int i = 0; i < 8; i++)
        {
            layers.Add(new LayerSpec { Kind = "linear", Units = 64, BiasInit = 4 });
            layers.Add(new LayerSpec { Kind = "sigmoid" });
        }

        layers.Add(new LayerSpec { Kind = "linear", Units = 4 });
        var spec = new ModelSpec { Name = "deep-sigmoid", Input = new InputSpec(1, 28, 28), Layers = layers };
        RecordingSink sink = Run(spec, s_shapes, new Hyperparameters { Epochs = 7, LearningRate = 0.01 });
        Assert.Contains(sink.Alerts, a => a.Code == "saturation");
        Assert.Contains(sink.Alerts, a => a.Code == "vanishing-gradients");
    }

    [Fact]
    public void AFirstLossFarFromLnCIsCalledOut()
    {
        var spec = new ModelSpec
        {
            Name = "hot-scores",
            Input = new InputSpec(1, 28, 28),
            Layers = [new() { Kind = "flatten" }, new() { Kind = "linear", Units = 64, BiasInit = 30 }, new() { Kind = "relu" }, new() { Kind = "linear", Units = 4 }],
        };
        RecordingSink sink = Run(spec, s_shapes, new Hyperparameters { Epochs = 1, LearningRate = 0.001 });
        AlertEvent alert = Assert.Single(sink.Alerts, a => a.Code == "initial-loss");
        Assert.Equal(1, alert.Step);
        Assert.Contains("ln(4)", alert.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ALearningRateFarTooLowLeavesTheLossWhereItWas()
    {
        RecordingSink sink = Run(ModelPresets.LeNet5(classes: 4), s_shapes, new Hyperparameters { Epochs = 10, LearningRate = 1e-7, Momentum = 0 },
            diagnostics: new DiagnosticsOptions { NotFallingSteps = 300 });
        Assert.Contains(sink.Alerts, a => a.Code == "loss-not-falling" && a.Step == 300);
        Assert.Contains(sink.Alerts, a => a.Code == "update-ratio-low");
    }

    [Fact]
    public void ATinyDatasetTrainedLongOverfitsAndPlateaus()
    {
        ImageDataset tiny = Harness.Shapes(samples: 48, testSamples: 256, seed: 5);
        RecordingSink sink = Run(ModelPresets.LeNet5(classes: 4), tiny,
            new Hyperparameters { Epochs = 60, BatchSize = 16, Optimizer = OptimizerKind.Adam, LearningRate = 3e-3 });
        output.WriteLine(string.Join("\n", sink.Epochs.Select(e => $"{e.Epoch}: train {e.TrainAccuracy:P0} val {e.ValidationAccuracy:P0} val loss {e.ValidationLoss:F3}")));
        Assert.Single(sink.Alerts, a => a.Code == "overfitting");
        Assert.Contains(sink.Alerts, a => a.Code == "plateau" && a.Severity == "info");
    }

    private RecordingSink Run(ModelSpec spec, ImageDataset data, Hyperparameters hp, DiagnosticsOptions? diagnostics = null)
    {
        var sink = new RecordingSink();
        using Trainer trainer = new(
            Harness.Plan(spec, data, hp, new MonitoringOptions { StatsEvery = 10, Diagnostics = diagnostics ?? new DiagnosticsOptions() }), data, sink);
        using var control = new TrainingControl();
        TrainingOutcome outcome = trainer.Run(control, CancellationToken.None);
        foreach (AlertEvent a in sink.Alerts)
        {
            output.WriteLine($"step {a.Step} {a.Severity} {a.Code} {a.Layer}: {a.Message} → {a.Suggestion}");
        }

        output.WriteLine($"outcome {outcome}, {sink.Steps.Count} steps, final validation {(sink.Epochs.Count > 0 ? sink.Epochs[^1].ValidationAccuracy : null):P1}");
        return sink;
    }
}
