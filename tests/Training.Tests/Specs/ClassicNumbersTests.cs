using TrainingService.Contracts.Specs;
using TrainingService.Training.Specs;
using Xunit;
using static TrainingService.Training.Tests.Specs.Net;

namespace TrainingService.Training.Tests.Specs;

/// <summary>Textbook networks whose numbers are known by heart (CS231n, AlexNet, LeNet-5).</summary>
public sealed class ClassicNumbersTests
{
    [Fact]
    public void TenFiveByFiveFiltersWithPadTwoKeep32x32AndHave760Parameters()
    {
        ModelValidationResult result = Analyze(Classifier(3, 32, 32, Conv(10, 5, padding: 2)));

        Assert.True(result.Valid, Describe(result.Errors));
        LayerReport conv = result.Layers[0];
        Assert.Equal([10, 32, 32], conv.OutputShape);
        Assert.Equal(760, conv.Parameters);
        Assert.Equal(76, conv.Parameters / 10);
        Assert.Equal(32L * 32 * 10 * 5 * 5 * 3, conv.MultiplyAdds);
        Assert.Equal(4L * 10 * 32 * 32, conv.ActivationBytes);
    }

    [Fact]
    public void TenFiveByFiveFiltersWithoutPaddingShrink32To28()
    {
        LayerReport conv = Analyze(Classifier(3, 32, 32, Conv(10, 5))).Layers[0];

        Assert.Equal([10, 28, 28], conv.OutputShape);
        Assert.Equal(760, conv.Parameters);
        Assert.Equal(28L * 28 * 10 * 5 * 5 * 3, conv.MultiplyAdds);
    }

    [Fact]
    public void AlexNetFirstLayerGives96x55x55With34944Parameters()
    {
        ModelValidationResult result = Analyze(Classifier(3, 227, 227, Conv(96, 11, stride: 4)));

        LayerReport conv = result.Layers[0];
        Assert.Equal([96, 55, 55], conv.OutputShape);
        Assert.Equal(34_944, conv.Parameters);
        Assert.Equal(55L * 55 * 96 * 11 * 11 * 3, conv.MultiplyAdds);
        Assert.Equal([11, 11], conv.ReceptiveField!);
        Assert.Equal([4, 4], conv.Jump!);
        Assert.Empty(result.Warnings);
    }

    [Fact]
    public void LeNet5On32x32Has61706ParametersAndTheTextbookTable()
    {
        ModelSpec spec = Of(1, 32, 32,
            Conv(6, 5), Relu(), MaxPool(2), Conv(16, 5), Relu(), MaxPool(2), Flatten(),
            Linear(120), Relu(), Linear(84), Relu(), Linear(10));

        ModelValidationResult result = Analyze(spec);

        Assert.True(result.Valid, Describe(result.Errors));
        Assert.Equal(61_706, result.TotalParameters);
        Assert.Equal([10], result.OutputShape!);
        Assert.Equal(
            ["conv1", "relu1", "maxpool1", "conv2", "relu2", "maxpool2", "flatten1", "linear1", "relu3", "linear2", "relu4", "linear3"],
            result.Layers.Select(l => l.Name));
        int[][] shapes = [[6, 28, 28], [6, 28, 28], [6, 14, 14], [16, 10, 10], [16, 10, 10], [16, 5, 5], [400], [120], [120], [84], [84], [10]];
        Assert.Equal(shapes, result.Layers.Select(l => l.OutputShape));
        Assert.Equal([156L, 0, 0, 2_416, 0, 0, 0, 48_120, 0, 10_164, 0, 850], result.Layers.Select(l => l.Parameters));
    }

    [Fact]
    public void LeNet5ReceptiveFieldsGrow5To6To14To16WithJumps1To2To2To4()
    {
        ModelSpec spec = Of(1, 32, 32,
            Conv(6, 5), Relu(), MaxPool(2), Conv(16, 5), Relu(), MaxPool(2), Flatten(),
            Linear(120), Relu(), Linear(84), Relu(), Linear(10));

        IReadOnlyList<LayerReport> layers = Analyze(spec).Layers;

        int?[] receptiveFields = [.. layers.Select(l => l.ReceptiveField?[0])];
        int?[] jumps = [.. layers.Select(l => l.Jump?[0])];
        Assert.Equal([5, 5, 6, 14, 14, 16, null, null, null, null, null, null], receptiveFields);
        Assert.Equal([1, 1, 2, 2, 2, 4, null, null, null, null, null, null], jumps);
        Assert.All(layers.Take(6), l => Assert.Equal(l.ReceptiveField![0], l.ReceptiveField[1]));
    }

    [Fact]
    public void LeNet5MultiplyAddsAndActivationBytesAddUpPerLayer()
    {
        ModelSpec spec = Of(1, 32, 32,
            Conv(6, 5), Relu(), MaxPool(2), Conv(16, 5), Relu(), MaxPool(2), Flatten(),
            Linear(120), Relu(), Linear(84), Relu(), Linear(10));

        ModelValidationResult result = Analyze(spec);

        long[] multiplyAdds = [28 * 28 * 6 * 25, 0, 0, 10 * 10 * 16 * 6 * 25, 0, 0, 0, 400 * 120, 0, 120 * 84, 0, 84 * 10];
        Assert.Equal(multiplyAdds, result.Layers.Select(l => l.MultiplyAdds));
        Assert.Equal(416_520, result.TotalMultiplyAdds);
        Assert.All(result.Layers, l => Assert.Equal(4L * l.OutputShape.Aggregate(1L, (a, b) => a * b), l.ActivationBytes));
        Assert.Equal(4L * 15_002, result.TotalActivationBytes);
    }

    [Fact]
    public void LeNet5PresetFits28x28WithTheSame61706Parameters()
    {
        SpecAnalysis analysis = SpecAnalyzer.Analyze(ModelPresets.LeNet5());

        Assert.True(analysis.IsValid, Describe(analysis.Result.Errors));
        Assert.Equal(61_706, analysis.Result.TotalParameters);
        Assert.Equal([6, 28, 28], analysis.Result.Layers[0].OutputShape);
        Assert.Equal([400], analysis.Result.Layers[6].OutputShape);
        Assert.Equal(10, analysis.Classes);
        Assert.Equal(analysis.Result.Layers.Count, analysis.Plan.Count);
    }

    [Fact]
    public void PresetClassesAndChannelsChangeOnlyTheEnds()
    {
        ModelValidationResult result = SpecAnalyzer.Analyze(ModelPresets.LeNet5(channels: 3, height: 32, width: 32, classes: 4)).Result;

        Assert.True(result.Valid, Describe(result.Errors));
        Assert.Equal([4], result.OutputShape!);
        Assert.Equal(6 * (3 * 25 + 1), result.Layers[0].Parameters);
        Assert.Equal([16 * 6 * 6], result.Layers[6].OutputShape);
    }

    [Fact]
    public void OneByOneConvolutionCuts64To16ChannelsFor1040Parameters()
    {
        ModelValidationResult result = Analyze(Classifier(64, 28, 28, Conv(16, 1)));

        LayerReport conv = result.Layers[0];
        Assert.Equal([16, 28, 28], conv.OutputShape);
        Assert.Equal(1_040, conv.Parameters);
        Assert.Equal(28L * 28 * 16 * 64, conv.MultiplyAdds);
        Assert.Equal([1, 1], conv.ReceptiveField!);
        Assert.True(conv.Parameters * 8 < Analyze(Classifier(64, 28, 28, Conv(16, 3, padding: 1))).Layers[0].Parameters);
    }

    [Fact]
    public void PoolingLearnsNothingAndMultipliesNothing()
    {
        ModelValidationResult result = Analyze(Classifier(8, 16, 16, MaxPool(2), AvgPool(3, stride: 1, padding: 1), Layer("globalavgpool")));

        Assert.True(result.Valid, Describe(result.Errors));
        Assert.All(result.Layers.Take(3), l => Assert.Equal((0L, 0L), (l.Parameters, l.MultiplyAdds)));
        Assert.Equal([8, 8, 8], result.Layers[0].OutputShape);
        Assert.Equal([8, 8, 8], result.Layers[1].OutputShape);
        Assert.Equal([8], result.Layers[2].OutputShape);
    }

    [Fact]
    public void ActivationsDropoutAndFlattenLearnNothing()
    {
        ModelValidationResult result = Analyze(Of(2, 4, 4,
            Relu(), Layer("leakyrelu"), Layer("sigmoid"), Layer("tanh"), Layer("dropout"), Flatten(), Linear(3)));

        Assert.True(result.Valid, Describe(result.Errors));
        Assert.All(result.Layers.SkipLast(1), l => Assert.Equal(0, l.Parameters));
        Assert.All(result.Layers.Take(5), l => Assert.Equal([2, 4, 4], l.OutputShape));
        Assert.Equal([32], result.Layers[5].OutputShape);
    }

    [Fact]
    public void LinearCostsInTimesOutMultiplyAddsPlusOneBiasPerUnit()
    {
        ModelValidationResult result = Analyze(Of(1, 10, 10, Flatten(), Linear(30), Linear(7, bias: false), Linear(2)));

        Assert.Equal([(100L * 30 + 30, 100L * 30), (30L * 7, 30L * 7), (7L * 2 + 2, 7L * 2)],
            result.Layers.Skip(1).Select(l => (l.Parameters, l.MultiplyAdds)));
        Assert.Equal(3_000 + 210 + 14, result.TotalMultiplyAdds);
    }

    [Fact]
    public void ConvWithoutBiasHasOnlyWeights()
    {
        LayerReport conv = Analyze(Classifier(3, 8, 8, Conv(4, 3, bias: false))).Layers[0];

        Assert.Equal(4 * 3 * 3 * 3, conv.Parameters);
    }

    [Fact]
    public void BatchNormLearnsAScaleAndShiftPerChannel()
    {
        LayerReport norm = Analyze(Classifier(3, 8, 8, Conv(12, 3), Layer("batchnorm2d"))).Layers[1];

        Assert.Equal("batchnorm1", norm.Name);
        Assert.Equal([12, 6, 6], norm.OutputShape);
        Assert.Equal(24, norm.Parameters);
        Assert.Equal(0, norm.MultiplyAdds);
    }

    [Fact]
    public void RectangularKernelStrideAndPaddingActPerSide()
    {
        LayerReport conv = Analyze(Classifier(2, 20, 30, Conv(4, new IntPair(3, 5), stride: new IntPair(1, 2), padding: new IntPair(1, 2)))).Layers[0];

        Assert.Equal([4, 20, 15], conv.OutputShape);
        Assert.Equal(4 * (2 * 3 * 5 + 1), conv.Parameters);
        Assert.Equal([3, 5], conv.ReceptiveField!);
        Assert.Equal([1, 2], conv.Jump!);
    }

    [Fact]
    public void DilatedKernelWidensTheReceptiveFieldWithoutParameters()
    {
        ModelValidationResult result = Analyze(Classifier(1, 28, 28, Conv(4, 3, dilation: 2), Conv(4, 3, dilation: 2)));

        Assert.Equal([4, 24, 24], result.Layers[0].OutputShape);
        Assert.Equal([4, 20, 20], result.Layers[1].OutputShape);
        Assert.Equal([5, 5], result.Layers[0].ReceptiveField!);
        Assert.Equal([9, 9], result.Layers[1].ReceptiveField!);
        Assert.Equal(4 * (9 + 1), result.Layers[0].Parameters);
    }

    [Fact]
    public void SamePaddingKeepsTheSizeForOddAndEvenKernels()
    {
        ModelValidationResult result = Analyze(Classifier(3, 17, 16,
            Conv(4, 3, padding: Padding.SameAsInput), Conv(4, 4, padding: Padding.SameAsInput), Conv(4, new IntPair(2, 5), padding: Padding.SameAsInput, dilation: 2)));

        Assert.True(result.Valid, Describe(result.Errors));
        Assert.All(result.Layers.Take(3), l => Assert.Equal([4, 17, 16], l.OutputShape));
        Assert.Equal([3 + 3 + 2, 3 + 3 + 8], result.Layers[2].ReceptiveField!);
    }

    [Fact]
    public void GlobalAvgPoolKeepsOneFeaturePerChannelAndEndsSpatialTracking()
    {
        ModelValidationResult result = Analyze(Of(3, 9, 7, Conv(5, 3), Layer("globalavgpool"), Linear(2)));

        Assert.Equal([5], result.Layers[1].OutputShape);
        Assert.Null(result.Layers[1].ReceptiveField!);
        Assert.Null(result.Layers[1].Jump!);
        Assert.Equal(5 * 2 + 2, result.Layers[2].Parameters);
    }

    [Fact]
    public void ValidAnalysisPlansEveryLayerWithItsInputShapeAndDefaults()
    {
        SpecAnalysis analysis = SpecAnalyzer.Analyze(Of(3, 12, 12,
            Conv(4, 3), MaxPool(2), Layer("leakyrelu"), Layer("batchnorm2d"), Layer("dropout"), Flatten(), Linear(5)));

        Assert.True(analysis.IsValid, Describe(analysis.Result.Errors));
        IReadOnlyList<LayerPlan> plan = analysis.Plan;
        Assert.Equal((new IntPair(1, 1), new IntPair(1, 1), new Padding(0, false), true), (plan[0].Stride, plan[0].Dilation, plan[0].Padding, plan[0].Bias));
        Assert.Equal([3, 12, 12], plan[0].InputShape);
        Assert.Equal(new IntPair(2, 2), plan[1].Stride);
        Assert.Equal([4, 10, 10], plan[1].InputShape);
        Assert.Equal(0.01, plan[2].Slope);
        Assert.Equal((1e-5, 0.1), (plan[3].Eps, plan[3].Momentum));
        Assert.Equal(0.5, plan[4].P);
        Assert.Equal([100], plan[6].InputShape);
        Assert.Equal(5, analysis.Classes);
        Assert.Equal(analysis.Result.Layers.Select(l => l.Parameters), plan.Select(p => p.Parameters));
    }
}
