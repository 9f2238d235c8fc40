using TrainingService.Contracts.Specs;
using TrainingService.Contracts.Training;
using TrainingService.Training.Data;
using TrainingService.Training.Loop;
using TrainingService.Training.Specs;
using Xunit;

namespace TrainingService.Training.Tests.Loop;

public sealed class TrainingPlanTests
{
    private static readonly ImageDataset s_shapes = Harness.Shapes(samples: 40, classes: 4, testSamples: 8);
    private static readonly MonitoringOptions s_monitoring = new();

    [Fact]
    public void AGoodJobHasNoIssues()
    {
        Assert.Empty(Validate(ModelPresets.LeNet5(classes: 4), new Hyperparameters()));
    }

    [Fact]
    public void ClassCountMismatchNamesBothCounts()
    {
        SpecIssue issue = Assert.Single(Validate(ModelPresets.LeNet5(classes: 10), new Hyperparameters()));

        Assert.Equal("model.layers", issue.Field);
        Assert.Contains("10 classes", issue.Message, StringComparison.Ordinal);
        Assert.Contains("has 4", issue.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void InputShapeMismatchNamesBothShapes()
    {
        SpecIssue issue = Assert.Single(Validate(ModelPresets.LeNet5(channels: 3, height: 32, width: 32, classes: 4), new Hyperparameters()));

        Assert.Equal("model.input", issue.Field);
        Assert.Contains("3×32×32", issue.Message, StringComparison.Ordinal);
        Assert.Contains("1×28×28", issue.Message, StringComparison.Ordinal);
    }

    public static TheoryData<string, Hyperparameters, string> BadHyperparameters => new()
    {
        { "epochs 0", new Hyperparameters { Epochs = 0 }, "hyperparameters.epochs" },
        { "batchSize 0", new Hyperparameters { BatchSize = 0 }, "hyperparameters.batchSize" },
        { "learningRate 0", new Hyperparameters { LearningRate = 0 }, "hyperparameters.learningRate" },
        { "learningRate NaN", new Hyperparameters { LearningRate = double.NaN }, "hyperparameters.learningRate" },
        { "momentum 1", new Hyperparameters { Momentum = 1 }, "hyperparameters.momentum" },
        { "validationFraction 0.95", new Hyperparameters { ValidationFraction = 0.95 }, "hyperparameters.validationFraction" },
        { "nesterov with adam", new Hyperparameters { Optimizer = OptimizerKind.Adam, Nesterov = true }, "hyperparameters.nesterov" },
        { "nesterov without momentum", new Hyperparameters { Momentum = 0, Nesterov = true }, "hyperparameters.nesterov" },
        { "weightDecay -0.1", new Hyperparameters { WeightDecay = -0.1 }, "hyperparameters.weightDecay" },
        { "gamma 0", new Hyperparameters { Schedule = ScheduleKind.Step, Gamma = 0 }, "hyperparameters.gamma" },
        { "stepSize 0", new Hyperparameters { Schedule = ScheduleKind.Step, StepSize = 0 }, "hyperparameters.stepSize" },
    };

    [Theory]
    [MemberData(nameof(BadHyperparameters))]
    public void EachBadHyperparameterNamesItsField(string description, Hyperparameters hp, string field)
    {
        SpecIssue issue = Assert.Single(Validate(ModelPresets.LeNet5(classes: 4), hp));

        Assert.True(field == issue.Field, $"{description}: expected {field}, got {issue.Field}: {issue.Message}");
        string name = field["hyperparameters.".Length..];
        Assert.Contains(name, issue.Message, StringComparison.Ordinal);
    }

    public static TheoryData<string, AugmentationOptions, string, string> BadAugmentations => new()
    {
        // The shapes here are 28×28: padding up to 14, translate up to 7.
        { "padding 0", new AugmentationOptions { RandomCrop = new RandomCropOptions { Padding = 0 } }, "randomCrop.padding", "from 1 to 14" },
        { "padding 15", new AugmentationOptions { RandomCrop = new RandomCropOptions { Padding = 15 } }, "randomCrop.padding", "got 15" },
        { "translate 0", new AugmentationOptions { Translate = 0 }, "translate", "from 1 to 7 pixels" },
        { "translate 8", new AugmentationOptions { Translate = 8, HorizontalFlip = true }, "translate", "got 8" },
    };

    [Theory]
    [MemberData(nameof(BadAugmentations))]
    public void EachBadAugmentationSettingNamesItsField(string description, AugmentationOptions augmentation, string field, string says)
    {
        SpecIssue issue = Assert.Single(Validate(ModelPresets.LeNet5(classes: 4), new Hyperparameters { Augmentation = augmentation }));

        Assert.True("hyperparameters.augmentation." + field == issue.Field, $"{description}: got {issue.Field}: {issue.Message}");
        Assert.StartsWith(field + " must be", issue.Message, StringComparison.Ordinal);
        Assert.Contains(says, issue.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheLargestAugmentationsAllowedAreValid()
    {
        var augmentation = new AugmentationOptions { RandomCrop = new RandomCropOptions { Padding = 14 }, HorizontalFlip = true, Translate = 7 };

        Assert.Empty(Validate(ModelPresets.LeNet5(classes: 4), new Hyperparameters { Augmentation = augmentation }));
        Assert.Empty(Validate(ModelPresets.LeNet5(classes: 4), new Hyperparameters { Augmentation = new AugmentationOptions() }));
    }

    [Fact]
    public void NegativeStatsEveryNamesItsField()
    {
        IReadOnlyList<SpecIssue> issues = TrainingPlan.Create(
            SpecAnalyzer.Analyze(ModelPresets.LeNet5(classes: 4)), DatasetShape.Of(s_shapes), new Hyperparameters(), new MonitoringOptions { StatsEvery = -1 }).Errors;

        Assert.Equal("monitoring.statsEvery", Assert.Single(issues).Field);
    }

    [Fact]
    public void AnInvalidJobHasNoPlanAndRequireNamesTheField()
    {
        var error = Assert.Throws<ArgumentException>(() => Harness.Plan(ModelPresets.LeNet5(classes: 4), s_shapes, new Hyperparameters { BatchSize = 0 }));

        Assert.Contains("hyperparameters.batchSize", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void StepsAndTheValidationSplitAreCountedOnceWithTheSanityOverridesApplied()
    {
        ModelSpec lenet = ModelPresets.LeNet5(classes: 4);
        TrainingPlan onTest = Harness.Plan(lenet, s_shapes, new Hyperparameters { Epochs = 3, BatchSize = 16 });
        TrainingPlan heldOut = Harness.Plan(lenet, s_shapes, new Hyperparameters { Epochs = 2, BatchSize = 16, ValidationFraction = 0.25 });
        TrainingPlan overfit = Harness.Plan(lenet, s_shapes, new Hyperparameters { WeightDecay = 0.1 },
            sanity: new SanityOptions { Check = SanityCheck.OverfitSubset, Samples = 20, MaxSteps = 50 });
        TrainingPlan range = Harness.Plan(lenet, s_shapes, new Hyperparameters { BatchSize = 16 },
            sanity: new SanityOptions { Check = SanityCheck.LearningRateRangeTest, Steps = 10 });

        Assert.Equal((0, true, 40, 3L, 9L), (onTest.ValidationCount, onTest.ValidateOnTest, onTest.TrainCount, onTest.StepsPerEpoch, onTest.TotalSteps));
        Assert.Equal((10, false, 30, 2L, 4L), (heldOut.ValidationCount, heldOut.ValidateOnTest, heldOut.TrainCount, heldOut.StepsPerEpoch, heldOut.TotalSteps));
        Assert.Equal((20, 50, 0.0, 1L, 50L, false), (overfit.Hyperparameters.BatchSize, overfit.Hyperparameters.Epochs,
            overfit.Hyperparameters.WeightDecay, overfit.StepsPerEpoch, overfit.TotalSteps, overfit.ValidateOnTest));
        Assert.Equal((4, 3L, 10L), (range.Hyperparameters.Epochs, range.StepsPerEpoch, range.TotalSteps));
    }

    [Fact]
    public void SanityErrorsAreNamedByTheirPathInTheRequest()
    {
        IReadOnlyList<SpecIssue> issues = TrainingPlan.Create(SpecAnalyzer.Analyze(ModelPresets.LeNet5(classes: 4)), DatasetShape.Of(s_shapes),
            new Hyperparameters(), s_monitoring, new SanityOptions { Check = SanityCheck.OverfitSubset, Samples = 1 }).Errors;

        Assert.Equal("sanity.samples", Assert.Single(issues).Field);
    }

    private static IReadOnlyList<SpecIssue> Validate(ModelSpec spec, Hyperparameters hp) =>
        TrainingPlan.Create(SpecAnalyzer.Analyze(spec), DatasetShape.Of(s_shapes), hp, s_monitoring).Errors;
}
