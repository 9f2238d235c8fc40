using TrainingService.Contracts.Training;
using TrainingService.Training.Monitoring;
using Xunit;

namespace TrainingService.Training.Tests.Monitoring;

/// <summary>The rules on synthetic runs: each fires on its condition, stays quiet otherwise, and fires once per episode.</summary>
public sealed class DiagnosticsTests
{
    private static readonly DiagnosticsOptions s_fast = new() { Window = 3, WarmupMeasurements = 1 };

    [Fact]
    public void AnInitialLossNearLnCIsQuietAndOneFarFromItIsNot()
    {
        Assert.Empty(new Diagnostics(new(), 10).OnStep(1, 2.35, 0.01));
        AlertEvent alert = Assert.Single(new Diagnostics(new(), 10).OnStep(1, 9.0, 0.01));
        Assert.Equal("initial-loss", alert.Code);
        Assert.Contains("ln(10) = 2.3", alert.Message, StringComparison.Ordinal);
        Assert.Contains("smaller", alert.Suggestion, StringComparison.Ordinal);
        Assert.Contains("leak", Assert.Single(new Diagnostics(new(), 10).OnStep(1, 0.2, 0.01)).Suggestion, StringComparison.Ordinal);
        Assert.Empty(new Diagnostics(new(), 10).OnStep(501, 9.0, 0.01)); // a resumed run has no first step to judge
    }

    [Fact]
    public void AnExplosionFiresOnceAndAgainOnlyAfterTheLossCameBack()
    {
        var d = new Diagnostics(new(), 4);
        var codes = new List<string>();
        double[] losses = [1.4, .. Enumerable.Repeat(50.0, 20), .. Enumerable.Repeat(1.0, 60), .. Enumerable.Repeat(80.0, 20)];
        for (int i = 0; i < losses.Length; i++)
        {
            codes.AddRange(d.OnStep(i + 1, losses[i], 0.5).Select(a => a.Code));
        }

        Assert.Equal(["loss-explosion", "loss-explosion"], codes);
    }

    [Fact]
    public void NaNIsCriticalAndStopsUnlessToldToOnlyAlert()
    {
        var stop = new Diagnostics(new(), 4);
        Assert.Empty(stop.OnStep(1, 1.4, 0.1));
        AlertEvent alert = Assert.Single(stop.OnStep(2, double.NaN, 0.1));
        Assert.Equal(("non-finite", "critical"), (alert.Code, alert.Severity));
        Assert.NotNull(stop.Failure);
        Assert.Empty(stop.OnStep(3, double.PositiveInfinity, 0.1));

        var alertOnly = new Diagnostics(new() { OnNonFinite = NonFiniteAction.Alert }, 4);
        Assert.Single(alertOnly.OnStep(1, double.PositiveInfinity, 0.1));
        Assert.Null(alertOnly.Failure);
    }

    [Fact]
    public void UpdateRatiosMustStayOutOfTheBandForTheWholeWindow()
    {
        var d = new Diagnostics(s_fast, 4);
        Assert.Empty(d.OnLayers(Layers(1, conv: 0.08), null, 0.1)); // warm-up measurement: skipped
        Assert.Empty(d.OnLayers(Layers(2, conv: 0.08), null, 0.1));
        Assert.Empty(d.OnLayers(Layers(3, conv: 0.001), null, 0.1)); // one healthy measurement in the window
        Assert.Empty(d.OnLayers(Layers(4, conv: 0.08), null, 0.1));
        Assert.Empty(d.OnLayers(Layers(5, conv: 0.08), null, 0.1));
        AlertEvent alert = Assert.Single(d.OnLayers(Layers(6, conv: 0.08), null, 0.1));
        Assert.Equal(("update-ratio-high", "conv1.weight"), (alert.Code, alert.Layer));
        Assert.Contains("try about 0.0013", alert.Suggestion, StringComparison.Ordinal);
        Assert.Empty(d.OnLayers(Layers(7, conv: 0.08), null, 0.1)); // still high: already said

        var low = new Diagnostics(s_fast, 4, baseLearningRate: 1e-6);
        AlertEvent[] alerts = [.. Enumerable.Range(1, 5).SelectMany(i => low.OnLayers(Layers(i, conv: 1e-7), null, 1e-6))];
        Assert.Equal(("update-ratio-low", "conv1.weight"), (Assert.Single(alerts).Code, alerts[0].Layer));

        // The same tiny updates at the end of a cosine schedule (rate under a tenth of its start) are by design.
        var annealed = new Diagnostics(s_fast, 4, baseLearningRate: 0.05);
        Assert.Empty(Enumerable.Range(1, 5).SelectMany(i => annealed.OnLayers(Layers(i, conv: 1e-7), null, 1e-4)));
    }

    [Fact]
    public void BiasesAndBatchNormAreNotJudgedByTheirUpdateRatio()
    {
        var d = new Diagnostics(s_fast, 4);
        LayersEvent e = Layers(1, conv: 0.001) with
        {
            Parameters = [new("conv1.weight", 1, 0.1, 0.001), new("conv1.bias", 0.01, 0.1, 0.5), new("linear1.weight", 1, 0.1, 0.001), new("bn1.weight", 1, 0.1, 0.5)],
        };
        Assert.Empty(Enumerable.Range(1, 6).SelectMany(i => d.OnLayers(e with { Step = i * 10 }, null, 0.1)));
    }

    [Fact]
    public void AUnitIsDeadOnlyWhenInactiveInEveryBatchOfTheWindow()
    {
        var d = new Diagnostics(s_fast, 4);
        var alerts = new List<AlertEvent>();
        for (int i = 1; i <= 6; i++)
        {
            // Units 0–5 never fire; unit 6 fires only every third batch; units 7–9 always.
            bool[] active = [false, false, false, false, false, false, i % 3 == 0, true, true, true];
            alerts.AddRange(d.OnLayers(Layers(i), new Dictionary<string, bool[]> { ["relu1"] = active }, 0.1));
        }

        AlertEvent alert = Assert.Single(alerts);
        Assert.Equal(("dead-relu", "relu1"), (alert.Code, alert.Layer));
        Assert.Contains("6 of 10 units", alert.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GradientsThatGrowTowardsTheInputAreExploding()
    {
        var d = new Diagnostics(s_fast, 4);
        LayersEvent e = Layers(1) with { Parameters = [new("conv1.weight", 1, 1e3, 1e-3), new("linear1.weight", 1, 1e-3, 1e-3)] };
        AlertEvent[] alerts = [.. Enumerable.Range(1, 4).SelectMany(i => d.OnLayers(e with { Step = i * 10 }, null, 0.1))];
        AlertEvent alert = Assert.Single(alerts);
        Assert.Equal(("exploding-gradients", "linear1.weight"), (alert.Code, alert.Layer));
        Assert.Contains("1E+06", alert.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OverfittingNeedsTheValidationLossToStayUpWhileTheGapWidens()
    {
        var d = new Diagnostics(new(), 4);
        (double Train, double Val, double ValLoss)[] epochs = [(0.6, 0.58, 1.0), (0.7, 0.66, 0.8), (0.8, 0.70, 0.7), (0.9, 0.70, 0.75), (0.95, 0.69, 0.8), (0.98, 0.68, 0.9), (0.99, 0.69, 0.95)];
        var codes = new List<(int Epoch, string Code)>();
        for (int i = 0; i < epochs.Length; i++)
        {
            var e = new EpochEvent { Epoch = i + 1, TrainLoss = 0.1, TrainAccuracy = epochs[i].Train, ValidationAccuracy = epochs[i].Val, ValidationLoss = epochs[i].ValLoss };
            codes.AddRange(d.OnEpoch(e, (i + 1) * 100, 0.1).Select(a => (i + 1, a.Code)));
        }

        Assert.Contains((6, "overfitting"), codes);
        Assert.Single(codes, c => c.Code == "overfitting");
        Assert.Equal((7, "plateau"), Assert.Single(codes, c => c.Code == "plateau")); // best 70% at epoch 3, four epochs without 0.2% more
    }

    [Fact]
    public void EpochsWithoutValidationAreNotJudged()
    {
        var d = new Diagnostics(new(), 4);
        Assert.Empty(Enumerable.Range(1, 10).SelectMany(i => d.OnEpoch(new EpochEvent { Epoch = i, TrainLoss = 1, TrainAccuracy = 0.5 }, i, 0.1)));
    }

    [Fact]
    public void DisabledDiagnosticsSayNothing()
    {
        var d = new Diagnostics(new() { Enabled = false }, 4);
        Assert.Empty(d.OnStep(1, double.NaN, 0.1));
        Assert.Null(d.Failure);
    }

    private static LayersEvent Layers(int measurement, double conv = 0.001) => new()
    {
        Step = measurement * 10,
        Layers =
        [
            new LayerStats("conv1", "conv2d", 0, 1, -1, 1, 0, new long[32]),
            new LayerStats("relu1", "relu", 0.5, 1, 0, 1, 0.5, new long[32]),
            new LayerStats("linear1", "linear", 0, 1, -1, 1, 0, new long[32]),
            new LayerStats("bn1", "batchnorm2d", 0, 1, -1, 1, 0, new long[32]),
        ],
        Parameters = [new("conv1.weight", 1, 0.1, conv), new("linear1.weight", 1, 0.1, 0.001)],
    };
}
