using TrainingService.Contracts.Specs;
using TrainingService.Contracts.Training;
using TrainingService.Training.Loop;
using TrainingService.Training.Specs;
using Xunit;

namespace TrainingService.Training.Tests.Loop;

/// <summary>TrainingPlan.EstimateMemoryBytes, what admission at POST /jobs compares with Jobs:MemoryBudgetBytes.</summary>
public sealed class MemoryEstimateTests
{
    private const long DefaultBudget = 4L << 30;

    [Fact]
    public void EveryOutputCountsThreeTimesPerSampleAndParametersWithGradientsAndOptimizerState()
    {
        // 1×4×4 input (16 values), flatten (16), linear to 2 (2 values, 34 parameters): 34 values per sample.
        SpecAnalysis model = SpecAnalyzer.Analyze(new ModelSpec
        {
            Input = new InputSpec(1, 4, 4),
            Layers = [new LayerSpec { Kind = "flatten" }, new LayerSpec { Kind = "linear", Units = 2 }],
        });

        Assert.Equal((34 * 4 * 3 * 10) + (34 * 4 * 3), TrainingPlan.EstimateMemoryBytes(model, new Hyperparameters { BatchSize = 10 }));
        Assert.Equal((34 * 4 * 3 * 10) + (34 * 4 * 2), TrainingPlan.EstimateMemoryBytes(model, new Hyperparameters { BatchSize = 10, Momentum = 0 }));
        Assert.Equal((34 * 4 * 3 * 10) + (34 * 4 * 4), TrainingPlan.EstimateMemoryBytes(model, new Hyperparameters { BatchSize = 10, Optimizer = OptimizerKind.Adam }));
    }

    [Theory]
    [InlineData("lenet5", 1, 28, 64)]
    [InlineData("vgg", 3, 32, 128)]
    [InlineData("resnet8", 3, 32, 128)]
    public void WellKnownModelsAtTheirUsualBatchSizesNeedAFractionOfTheDefaultBudget(string preset, int channels, int side, int batchSize)
    {
        SpecAnalysis model = SpecAnalyzer.Analyze(ModelPresets.All(channels, side, side, 10).Single(p => p.Name == preset).Spec);

        long bytes = TrainingPlan.EstimateMemoryBytes(model, new Hyperparameters { BatchSize = batchSize });

        Assert.InRange(bytes, 1, DefaultBudget / 4);
    }

    [Fact]
    public void TheVggPresetAtTheLargestBatchSizeIsOverTheDefaultBudget()
    {
        SpecAnalysis model = SpecAnalyzer.Analyze(ModelPresets.SmallVgg(3, 32, 32, 10));

        Assert.True(TrainingPlan.EstimateMemoryBytes(model, new Hyperparameters { BatchSize = 8192 }) > DefaultBudget);
    }
}
