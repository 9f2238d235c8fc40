using TrainingService.Contracts.Specs;
using TrainingService.Contracts.Training;
using TrainingService.Training.Loop;
using TrainingService.Training.Models;
using TrainingService.Training.Specs;
using Xunit;
using Xunit.Abstractions;

namespace TrainingService.Training.Tests.Loop;

/// <summary>HistoryEstimate, what admission at POST /jobs compares with Jobs:MaxHistoryBytesPerJob (the API tests hold it to real runs).</summary>
public sealed class HistoryEstimateTests(ITestOutputHelper output)
{
    private const long DefaultLimit = 1L << 30;
    private static readonly DatasetShape s_cifar10 = new("cifar10", 3, 32, 32, 10, 50_000, 10_000);

    [Fact]
    public void A100EpochCifar10RunOfA20LayerNetWithDefaultMonitoringIsAFractionOfTheDefaultLimit()
    {
        HistoryEstimate estimate = Estimate(ConvNet(blocks: 6), s_cifar10, new Hyperparameters { Epochs = 100 }, new MonitoringOptions());

        output.WriteLine($"{estimate.Steps:N0} steps, {estimate.Measurements:N0} measurements of {estimate.MeasurementBytes:N0} bytes: {estimate.Bytes:N0} bytes");
        Assert.Equal(20, estimate.Layers);
        Assert.Equal(782 * 100, estimate.Steps);
        Assert.InRange(estimate.Bytes, 1, DefaultLimit / 8);
    }

    [Fact]
    public void TheSameRunMeasuredEveryStepFitsAtBatchSize64AndAt32NeedsEveryOtherStep()
    {
        SpecAnalysis model = SpecAnalyzer.Analyze(ConvNet(blocks: 6));
        var everyStep = new MonitoringOptions { StatsEvery = 1 };
        HistoryEstimate at64 = Estimate(model, s_cifar10, new Hyperparameters { Epochs = 100 }, everyStep);
        HistoryEstimate at32 = Estimate(model, s_cifar10, new Hyperparameters { Epochs = 100, BatchSize = 32 }, everyStep);

        output.WriteLine($"every step measured: {at64.Bytes:N0} bytes at batch size 64, {at32.Bytes:N0} at 32");
        Assert.InRange(at64.Bytes, 1, DefaultLimit);
        Assert.True(at32.Bytes > DefaultLimit);
        Assert.Equal(2, at32.StatsEveryWithin(DefaultLimit));
    }

    [Fact]
    public void The500LayerSpecWithStatisticsEveryStepFor1Point8MillionStepsIsFarOverTheDefaultLimit()
    {
        // The measured attack: 1,000,000 images at batch size 1 for 2 epochs (~1.8 million steps after the validation split).
        var data = new DatasetShape("big", 1, 8, 8, 2, 1_000_000, 0);
        HistoryEstimate estimate = Estimate(Deep(500), data, new Hyperparameters { Epochs = 2, BatchSize = 1 }, new MonitoringOptions { StatsEvery = 1 });

        output.WriteLine($"{estimate.Steps:N0} steps of {estimate.Layers} layers: {estimate.Bytes:N0} bytes");
        Assert.Equal(1_800_000, estimate.Steps);
        Assert.True(estimate.Bytes > 100 * DefaultLimit, $"{estimate.Bytes:N0}");
        Assert.Equal("monitoring.statsEvery", estimate.DrivingField);
    }

    [Fact]
    public void EveryStepWritesAStepEventAndEveryStatsEveryStepsALayersEvent()
    {
        SpecAnalysis model = SpecAnalyzer.Analyze(ConvNet(blocks: 1));
        HistoryEstimate every10 = Estimate(model, s_cifar10, new Hyperparameters { Epochs = 2 }, new MonitoringOptions { StatsEvery = 10 });
        HistoryEstimate none = Estimate(model, s_cifar10, new Hyperparameters { Epochs = 2 }, new MonitoringOptions { StatsEvery = 0 });

        Assert.Equal((782 * 2, 782 * 2 / 10, 2L), (every10.Steps, every10.Measurements, every10.Epochs));
        Assert.Equal(0, none.Measurements);
        Assert.Equal(none.Bytes, every10.Bytes - every10.StatisticsBytes);
        // conv (weight, bias), batchnorm (weight, bias), relu, globalavgpool, linear (weight, bias).
        Assert.Equal((5, 6), (every10.Layers, every10.ParameterTensors));
        Assert.Equal("hyperparameters.epochs", none.DrivingField);
    }

    [Fact]
    public void WhatFitsIsAStatsEveryAndALengthThatBringTheEstimateUnderTheLimit()
    {
        SpecAnalysis model = SpecAnalyzer.Analyze(ConvNet(blocks: 6));
        var hp = new Hyperparameters { Epochs = 1000, BatchSize = 32 };
        HistoryEstimate estimate = Estimate(model, s_cifar10, hp, new MonitoringOptions { StatsEvery = 1 });
        Assert.True(estimate.Bytes > DefaultLimit);

        long every = estimate.StatsEveryWithin(DefaultLimit)!.Value;
        long epochs = estimate.LengthWithin(DefaultLimit);

        Assert.InRange(Estimate(model, s_cifar10, hp, new MonitoringOptions { StatsEvery = (int)every }).Bytes, DefaultLimit * 9 / 10, DefaultLimit);
        Assert.True(Estimate(model, s_cifar10, hp, new MonitoringOptions { StatsEvery = (int)every - 1 }).Bytes > DefaultLimit);
        Assert.InRange(Estimate(model, s_cifar10, hp with { Epochs = (int)epochs }, new MonitoringOptions { StatsEvery = 1 }).Bytes, DefaultLimit * 9 / 10, DefaultLimit);
        Assert.Null(estimate.StatsEveryWithin(estimate.Steps * estimate.StepBytes / 2)); // the step events alone are over
    }

    [Fact]
    public void ASanityCheckIsMeasuredInItsOwnStepsWithoutSnapshots()
    {
        SpecAnalysis model = SpecAnalyzer.Analyze(ConvNet(blocks: 1));
        HistoryEstimate range = Estimate(model, s_cifar10, new Hyperparameters(), new MonitoringOptions(),
            new SanityOptions { Check = SanityCheck.LearningRateRangeTest, Steps = 1000 });
        HistoryEstimate overfit = Estimate(model, s_cifar10, new Hyperparameters(), new MonitoringOptions(),
            new SanityOptions { Check = SanityCheck.OverfitSubset, MaxSteps = 300 });

        Assert.Equal(("sanity.steps", 1000L, 1000L), (range.LengthField, range.Length, range.Steps));
        Assert.Equal(("sanity.maxSteps", 300L, 300L, 300L), (overfit.LengthField, overfit.Length, overfit.Steps, overfit.Epochs)); // an epoch a step
        Assert.Equal(HistoryEstimate.RowBytes + HistoryEstimate.EpochJson, overfit.EpochBytes);
    }

    [Theory]
    [InlineData("tiny")]
    [InlineData("lenet5")]
    [InlineData("vgg")]
    [InlineData("alexnet")]
    [InlineData("resnet8")]
    [InlineData("inception")]
    public void EachKindNamesTheParameterTensorsItsModuleRegisters(string preset)
    {
        SpecAnalysis model = SpecAnalyzer.Analyze(ModelPresets.All(3, 32, 32, 10).Single(p => p.Name == preset).Spec);
        using var built = new SpecModel(model, 1);

        string[] named = [.. model.Plan.SelectMany(layer => layer.Kind.ParameterNames(layer).Select(name => $"{layer.Name}.{name}"))];

        Assert.Equal(built.named_parameters().Select(p => p.name), named);
    }

    private static HistoryEstimate Estimate(ModelSpec spec, DatasetShape data, Hyperparameters hp, MonitoringOptions monitoring) =>
        Estimate(SpecAnalyzer.Analyze(spec), data, hp, monitoring);

    private static HistoryEstimate Estimate(
        SpecAnalysis model, DatasetShape data, Hyperparameters hp, MonitoringOptions monitoring, SanityOptions? sanity = null) =>
        HistoryEstimate.Of(TrainingPlan.Require(model, data, hp, monitoring, sanity));

    /// <summary>A ResNet-sized net: blocks of 3×3 "same" convolution, batch norm and ReLU, then global average pooling and a classifier.</summary>
    private static ModelSpec ConvNet(int blocks) => new()
    {
        Input = new InputSpec(3, 32, 32),
        Layers =
        [
            .. Enumerable.Range(0, blocks).SelectMany(_ => new[]
            {
                new LayerSpec { Kind = "conv2d", Filters = 32, Kernel = 3, Padding = Padding.SameAsInput },
                new LayerSpec { Kind = "batchnorm2d" },
                new LayerSpec { Kind = "relu" },
            }),
            new LayerSpec { Kind = "globalavgpool" },
            new LayerSpec { Kind = "linear", Units = 10 },
        ],
    };

    /// <summary>As deep as the default caps allow: 498 ReLUs between a flatten and a classifier.</summary>
    private static ModelSpec Deep(int layers) => new()
    {
        Input = new InputSpec(1, 8, 8),
        Layers = [new LayerSpec { Kind = "flatten" }, .. Enumerable.Repeat(new LayerSpec { Kind = "relu" }, layers - 2), new LayerSpec { Kind = "linear", Units = 2 }],
    };
}
