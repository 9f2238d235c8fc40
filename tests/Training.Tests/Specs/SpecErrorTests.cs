using TrainingService.Contracts.Specs;
using TrainingService.Training.Specs;
using Xunit;
using static TrainingService.Training.Tests.Specs.Net;

namespace TrainingService.Training.Tests.Specs;

/// <summary>Every way a spec can be wrong: each error is pinned to its layer and field and gives the numbers.</summary>
public sealed class SpecErrorTests
{
    private static SpecIssue SingleError(ModelSpec spec, SpecLimits? limits = null)
    {
        ModelValidationResult result = Analyze(spec, limits);
        Assert.False(result.Valid);
        Assert.Null(result.OutputShape);
        return Assert.Single(result.Errors);
    }

    private static void AssertIssue(SpecIssue issue, int? index, string? name, string field, params string[] messageParts)
    {
        Assert.Equal((index, name, field), (issue.LayerIndex, issue.LayerName, issue.Field));
        Assert.All(messageParts, part => Assert.Contains(part, issue.Message, StringComparison.Ordinal));
    }

    [Fact]
    public void KernelLargerThanItsInputGivesTheFormulaWithItsNumbers()
    {
        ModelSpec spec = Of(1, 12, 12, Conv(4, 5), Relu(), Conv(8, 5), Relu(), Conv(8, 5), Flatten(), Linear(10));

        ModelValidationResult result = Analyze(spec);

        Assert.False(result.Valid);
        Assert.Equal([4, 8, 8], result.Layers[0].OutputShape);
        Assert.Equal([8, 4, 4], result.Layers[3].OutputShape);
        Assert.Equal(4, result.Layers.Count);
        SpecIssue height = Assert.Single(result.Errors);
        Assert.Equal((4, "conv3", "layers[4].kernel"), (height.LayerIndex, height.LayerName, height.Field));
        Assert.Equal("conv3: output height ⌊(4 − 5 + 2·0)/1⌋ + 1 = 0 — the kernel is larger than its 4×4 input", height.Message);
    }

    [Fact]
    public void KernelWiderThanANonSquareInputNamesTheWidth()
    {
        SpecIssue issue = SingleError(Classifier(1, 8, 4, Conv(2, 5)));

        AssertIssue(issue, 0, "conv1", "layers[0].kernel");
        Assert.Equal("conv1: output width ⌊(4 − 5 + 2·0)/1⌋ + 1 = 0 — the kernel is larger than its 8×4 input", issue.Message);
    }

    [Fact]
    public void PaddedAndDilatedWindowsShowTheirPaddingAndEffectiveKernel()
    {
        SpecIssue pool = Analyze(Classifier(1, 2, 9, MaxPool(new IntPair(5, 3), padding: 1))).Errors[0];
        SpecIssue dilated = Analyze(Classifier(1, 6, 6, Conv(2, 3, dilation: 3))).Errors[0];

        AssertIssue(pool, 0, "maxpool1", "layers[0].kernel",
            "maxpool1: output height ⌊(2 − 5 + 2·1)/5⌋ + 1 = 0", "the window is larger than its 2×9 input padded by 1");
        AssertIssue(dilated, 0, "conv1", "layers[0].kernel",
            "⌊(6 − 7 + 2·0)/1⌋ + 1 = 0, with the dilated kernel 3·(3 − 1) + 1 = 7");
    }

    [Fact]
    public void LinearOnASpatialTensorAsksForAFlatten()
    {
        ModelValidationResult result = Analyze(Of(1, 28, 28, Conv(6, 5), Relu(), MaxPool(2), Linear(10)));

        SpecIssue issue = Assert.Single(result.Errors);
        AssertIssue(issue, 3, "linear1", "layers[3].kind",
            "linear needs a flat input, but gets 6×12×12", "add { \"kind\": \"flatten\" } (or globalavgpool) before it");
        Assert.Equal(3, result.Layers.Count);
    }

    [Theory]
    [InlineData("conv2d", "conv1")]
    [InlineData("maxpool2d", "maxpool2")]
    [InlineData("avgpool2d", "avgpool1")]
    public void WindowLayersAfterFlattenAskToMoveBeforeIt(string kind, string name)
    {
        var layer = new LayerSpec { Kind = kind, Filters = kind == "conv2d" ? 2 : null, Kernel = 1 };

        SpecIssue issue = SingleError(Of(1, 8, 8, MaxPool(2), Flatten(), layer, Linear(2)));

        AssertIssue(issue, 2, name, "layers[2].kind",
            $"{name}: {kind} needs a channels×height×width input, but gets 16 features (after flattening); move it before the flatten");
    }

    [Fact]
    public void BatchNormAndGlobalAvgPoolNeedASpatialInput()
    {
        SpecIssue norm = SingleError(Of(1, 4, 4, Flatten(), Layer("batchnorm2d"), Linear(2)));
        SpecIssue global = SingleError(Of(1, 4, 4, Flatten(), Layer("globalavgpool"), Linear(2)));

        AssertIssue(norm, 1, "batchnorm1", "layers[1].kind", "batchnorm2d needs a channels×height×width input, but gets 16 features");
        AssertIssue(global, 1, "globalavgpool1", "layers[1].kind", "globalavgpool needs a channels×height×width input, but gets 16 features");
    }

    public static TheoryData<LayerSpec, string, string> NonPositiveSettings => new()
    {
        { Conv(0, 3), "filters", "conv1: filters must be at least 1, got 0" },
        { Conv(-4, 3), "filters", "conv1: filters must be at least 1, got -4" },
        { Conv(4, 0), "kernel", "conv1: kernel must be at least 1, got 0" },
        { Conv(4, new IntPair(3, -1)), "kernel", "conv1: kernel must be at least 1, got [3, -1]" },
        { Conv(4, 3, stride: 0), "stride", "conv1: stride must be at least 1, got 0" },
        { Conv(4, 3, stride: new IntPair(-2, 1)), "stride", "conv1: stride must be at least 1, got [-2, 1]" },
        { Conv(4, 3, dilation: 0), "dilation", "conv1: dilation must be at least 1, got 0" },
        { Conv(4, 3, padding: -1), "padding", "conv1: padding must be 0 or more, got -1" },
        { Conv(4, 3, padding: new IntPair(0, -2)), "padding", "conv1: padding must be 0 or more, got [0, -2]" },
        { MaxPool(0), "kernel", "maxpool1: kernel must be at least 1, got 0" },
        { MaxPool(2, stride: 0), "stride", "maxpool1: stride must be at least 1, got 0" },
        { AvgPool(2, padding: -1), "padding", "avgpool1: padding must be 0 or more, got -1" },
        { Conv(null, 3), "filters", "conv1: filters is required" },
        { Conv(4, null), "kernel", "conv1: kernel is required: an integer or [height, width]" },
        { MaxPool(null), "kernel", "maxpool1: kernel is required: an integer or [height, width]" },
    };

    [Theory]
    [MemberData(nameof(NonPositiveSettings))]
    public void NonPositiveOrMissingWindowSettingsAreRejectedOnce(LayerSpec layer, string field, string message)
    {
        SpecIssue issue = SingleError(Classifier(3, 16, 16, layer));

        string name = message[..message.IndexOf(':', StringComparison.Ordinal)];
        Assert.Equal((0, name, $"layers[0].{field}", message), (issue.LayerIndex, issue.LayerName, issue.Field, issue.Message));
    }

    [Theory]
    [InlineData(0, "linear1: units must be at least 1, got 0")]
    [InlineData(-10, "linear1: units must be at least 1, got -10")]
    [InlineData(null, "linear1: units is required")]
    public void LinearUnitsMustBePositive(int? units, string message)
    {
        SpecIssue issue = SingleError(Of(1, 4, 4, Flatten(), Linear(units), Relu(), Linear(2)));

        Assert.Equal((1, "linear1", "layers[1].units", message), (issue.LayerIndex, issue.LayerName, issue.Field, issue.Message));
    }

    [Theory]
    [InlineData(0, 28, 28, "input.channels", "input channels must be at least 1, got 0")]
    [InlineData(1, -1, 28, "input.height", "input height must be at least 1, got -1")]
    [InlineData(1, 28, 0, "input.width", "input width must be at least 1, got 0")]
    [InlineData(65, 28, 28, "input.channels", "input channels is 65, over the cap of 64")]
    [InlineData(3, 1025, 28, "input.height", "input height is 1025, over the cap of 1024")]
    [InlineData(3, 28, 4096, "input.width", "input width is 4096, over the cap of 1024")]
    public void InputSizesMustBePositiveAndWithinTheDefaultCaps(int channels, int height, int width, string field, string message)
    {
        SpecIssue issue = SingleError(Of(channels, height, width, Flatten(), Linear(2)));

        Assert.Equal((null, null, field, message), (issue.LayerIndex, issue.LayerName, issue.Field, issue.Message));
    }

    [Fact]
    public void InputCapsComeFromTheLimits()
    {
        var limits = new SpecLimits { MaxInputChannels = 3, MaxInputSide = 64 };

        Assert.True(Analyze(Of(3, 64, 64, Flatten(), Linear(2)), limits).Valid);
        ModelValidationResult result = Analyze(Of(4, 65, 64, Flatten(), Linear(2)), limits);

        Assert.Equal(
            [("input.channels", "input channels is 4, over the cap of 3"), ("input.height", "input height is 65, over the cap of 64")],
            result.Errors.Select(e => (e.Field, e.Message)));
        Assert.Empty(result.Layers);
    }

    [Fact]
    public void MissingInputIsReportedAtTheTop()
    {
        SpecIssue issue = SingleError(new ModelSpec { Layers = [Flatten(), Linear(2)] });

        AssertIssue(issue, null, null, "input", "the model needs an input: { \"channels\", \"height\", \"width\" } of one image");
    }

    [Fact]
    public void MissingOrEmptyLayersAreReportedAtTheTop()
    {
        SpecIssue missing = SingleError(new ModelSpec { Input = new InputSpec(1, 28, 28) });
        SpecIssue empty = SingleError(Of(1, 28, 28));

        AssertIssue(missing, null, null, "layers", "the model has no layers; it needs at least one, ending in a linear layer with one unit per class");
        Assert.Equal(missing, empty);
    }

    [Fact]
    public void UnknownKindNamesTheKindAndListsTheKnownOnes()
    {
        SpecIssue issue = SingleError(Of(1, 28, 28, new LayerSpec { Kind = "conv" }, Flatten(), Linear(2)));

        AssertIssue(issue, 0, "layer1", "layers[0].kind",
            "layer1: unknown kind \"conv\"; expected one of conv2d, maxpool2d, avgpool2d, relu, leakyrelu, sigmoid, tanh, batchnorm2d, dropout, flatten, linear, globalavgpool");
    }

    [Fact]
    public void KindsAreCaseSensitive()
    {
        SpecIssue issue = SingleError(Of(1, 28, 28, Flatten(), new LayerSpec { Kind = "Linear", Units = 2, Name = "out" }, Linear(2)));

        AssertIssue(issue, 1, "out", "layers[1].kind", "out: unknown kind \"Linear\"");
    }

    [Fact]
    public void MissingKindIsReportedByPosition()
    {
        SpecIssue issue = SingleError(Of(1, 28, 28, Flatten(), new LayerSpec { Kind = null! }, Linear(2)));

        AssertIssue(issue, 1, "layer1", "layers[1].kind", "layer 1: kind is missing; expected one of conv2d,");
    }

    [Fact]
    public void DuplicateNamesPointAtTheLaterLayerAndTheFirstHolder()
    {
        SpecIssue issue = SingleError(Of(1, 28, 28, Conv(4, 3, name: "features"), Relu(), Conv(4, 3, name: "features"), Flatten(), Linear(2)));

        AssertIssue(issue, 2, "features", "layers[2].name", "features: duplicate name; layer 0 is already called \"features\"");
    }

    [Theory]
    [InlineData("conv-1")]
    [InlineData("1conv")]
    [InlineData("conv 1")]
    [InlineData("")]
    [InlineData("conv1.weight")]
    [InlineData("naïve")]
    public void NamesMustBeIdentifiers(string name)
    {
        SpecIssue issue = SingleError(Of(1, 28, 28, Flatten(), Linear(2, name: name)));

        AssertIssue(issue, 1, name, "layers[1].name",
            $"layer 1: name \"{name}\" must start with a letter or _ and hold only letters, digits and _ (at most 64)");
    }

    [Theory]
    [InlineData("_hidden")]
    [InlineData("Block2_conv1")]
    public void IdentifierNamesAreAccepted(string name) =>
        Assert.True(Analyze(Of(1, 28, 28, Flatten(), Linear(2, name: name))).Valid);

    [Fact]
    public void NamesHoldAtMost64Characters()
    {
        string longest = new('a', 64), tooLong = new('a', 65);

        Assert.True(Analyze(Of(1, 28, 28, Flatten(), Linear(2, name: longest))).Valid);
        SpecIssue issue = SingleError(Of(1, 28, 28, Flatten(), Linear(2, name: tooLong)));
        AssertIssue(issue, 1, tooLong, "layers[1].name", "(at most 64)");
    }

    [Fact]
    public void FieldThatDoesNotApplyToTheKindListsTheFieldsItTakes()
    {
        ModelValidationResult result = Analyze(Classifier(1, 28, 28,
            new LayerSpec { Kind = "conv2d", Filters = 4, Kernel = 3, Units = 10 },
            new LayerSpec { Kind = "relu", P = 0.5 },
            new LayerSpec { Kind = "maxpool2d", Kernel = 2, Dilation = 2 }));

        Assert.Equal(3, result.Errors.Count);
        AssertIssue(result.Errors[0], 0, "conv1", "layers[0].units",
            "conv1: units does not apply to conv2d; it takes filters, kernel, stride, padding, dilation, groups, bias");
        AssertIssue(result.Errors[1], 1, "relu1", "layers[1].p", "relu1: p does not apply to relu, which takes no settings");
        AssertIssue(result.Errors[2], 2, "maxpool1", "layers[2].dilation", "maxpool1: dilation does not apply to maxpool2d; it takes kernel, stride, padding");
    }

    [Fact]
    public void SamePaddingNeedsStrideOne()
    {
        SpecIssue issue = SingleError(Classifier(1, 28, 28, Conv(4, 3, stride: 2, padding: Padding.SameAsInput)));

        AssertIssue(issue, 0, "conv1", "layers[0].padding", "padding \"same\" needs stride 1 (as in PyTorch), but stride is 2");
    }

    [Fact]
    public void SamePaddingAppliesToConvolutionsOnly()
    {
        SpecIssue issue = SingleError(Classifier(1, 28, 28, MaxPool(3, stride: 1, padding: Padding.SameAsInput)));

        AssertIssue(issue, 0, "maxpool1", "layers[0].padding", "padding \"same\" applies to conv2d only; give maxpool2d a number");
    }

    [Theory]
    [InlineData(1.0, "got 1")]
    [InlineData(-0.1, "got -0.1")]
    [InlineData(double.NaN, "got NaN")]
    public void DropoutProbabilityMustBeInZeroToOne(double p, string got)
    {
        SpecIssue issue = SingleError(Classifier(1, 8, 8, new LayerSpec { Kind = "dropout", P = p }));

        AssertIssue(issue, 0, "dropout1", "layers[0].p", "dropout1: p must be in [0, 1): the probability of zeroing an element, " + got);
    }

    [Theory]
    [InlineData(0.0, 0.1, "eps", "eps must be a small positive number, got 0")]
    [InlineData(-1e-5, 0.1, "eps", "eps must be a small positive number, got -1E-05")]
    [InlineData(1e-5, 1.5, "momentum", "momentum must be in [0, 1], got 1.5")]
    [InlineData(1e-5, -0.1, "momentum", "momentum must be in [0, 1], got -0.1")]
    public void BatchNormEpsAndMomentumAreChecked(double eps, double momentum, string field, string message)
    {
        SpecIssue issue = SingleError(Classifier(1, 8, 8, new LayerSpec { Kind = "batchnorm2d", Eps = eps, Momentum = momentum }));

        AssertIssue(issue, 0, "batchnorm1", $"layers[0].{field}", message);
    }

    [Fact]
    public void LeakyReluSlopeMustBeFinite()
    {
        SpecIssue issue = SingleError(Classifier(1, 8, 8, new LayerSpec { Kind = "leakyrelu", Slope = double.PositiveInfinity }));

        AssertIssue(issue, 0, "leakyrelu1", "layers[0].slope", "slope must be a finite number");
    }

    [Fact]
    public void LastLayerMustBeLinear()
    {
        SpecIssue issue = SingleError(Of(1, 8, 8, Flatten(), Linear(10), Relu()));

        AssertIssue(issue, 2, "relu1", "layers[2].kind",
            "relu1: the last layer must be linear, with one unit per class (its scores go to softmax and cross-entropy), but it is relu");
    }

    [Fact]
    public void LastLinearNeedsAtLeastTwoClasses()
    {
        SpecIssue issue = SingleError(Of(1, 8, 8, Flatten(), Linear(1, name: "score")));

        AssertIssue(issue, 1, "score", "layers[1].units",
            "score: a classifier needs at least 2 classes, so the last linear layer needs units ≥ 2, got 1");
    }

    [Fact]
    public void LinearWithOneUnitIsFineInsideTheNetwork() =>
        Assert.True(Analyze(Of(1, 8, 8, Flatten(), Linear(1), Relu(), Linear(2))).Valid);

    [Fact]
    public void ParameterCapFromTheLimitsGivesBothCounts()
    {
        ModelValidationResult result = Analyze(ModelPresets.LeNet5(), new SpecLimits { MaxParameters = 1000 });

        SpecIssue issue = Assert.Single(result.Errors);
        AssertIssue(issue, null, null, "layers", "the model has 61,706 parameters, over the cap of 1,000");
        Assert.Equal(61_706, result.TotalParameters);
        Assert.Equal(12, result.Layers.Count);
    }

    [Fact]
    public void DefaultParameterCapOf50MillionStopsAHugeLinearLayer()
    {
        ModelValidationResult result = Analyze(Of(3, 1024, 1024, Flatten(), Linear(100)));

        SpecIssue issue = Assert.Single(result.Errors);
        AssertIssue(issue, null, null, "layers", "the model has 314,572,900 parameters, over the cap of 50,000,000");
        Assert.True(Analyze(Of(3, 1024, 1024, Flatten(), Linear(15))).Valid);
    }

    [Fact]
    public void PoolPaddingMustBeAtMostHalfTheWindow()
    {
        SpecIssue square = SingleError(Classifier(1, 28, 28, MaxPool(2, padding: 2)));
        SpecIssue rectangular = SingleError(Classifier(1, 28, 28, AvgPool(new IntPair(3, 4), padding: new IntPair(1, 3))));

        AssertIssue(square, 0, "maxpool1", "layers[0].padding", "maxpool1: padding 2 is more than half the 2×2 window (PyTorch allows at most 1)");
        AssertIssue(rectangular, 0, "avgpool1", "layers[0].padding", "padding [1, 3] is more than half the 3×4 window (PyTorch allows at most [1, 2])");
        Assert.True(Analyze(Classifier(1, 28, 28, MaxPool(3, padding: 1), AvgPool(new IntPair(3, 4), padding: new IntPair(1, 2)))).Valid);
    }

    [Fact]
    public void LayerCountCapReportsOnceAndAnalysesNoLayer()
    {
        LayerSpec[] layers = [Flatten(), Linear(8), Relu(), Linear(2)];

        ModelValidationResult result = Analyze(Of(1, 8, 8, layers), new SpecLimits { MaxLayers = 3 });

        SpecIssue issue = Assert.Single(result.Errors);
        AssertIssue(issue, null, null, "layers", "the model has 4 layers, over the cap of 3");
        Assert.Empty(result.Layers);
        Assert.True(Analyze(Of(1, 8, 8, layers), new SpecLimits { MaxLayers = 4 }).Valid);
    }

    [Fact]
    public void InferenceStopsAtTheFirstShapeErrorButLaterFieldErrorsAreStillReported()
    {
        ModelSpec spec = Of(1, 4, 4,
            Conv(4, 3), Conv(4, 3), Relu(), Conv(0, 3), Linear(10), Layer("dropout") with { P = 2 }, Linear(-1), Linear(10));

        SpecAnalysis analysis = SpecAnalyzer.Analyze(spec);

        Assert.False(analysis.IsValid);
        Assert.Empty(analysis.Plan);
        Assert.Null(analysis.Result.OutputShape);
        Assert.Equal(["conv1"], analysis.Result.Layers.Select(l => l.Name));
        Assert.Equal(
            ["layers[1].kernel", "layers[3].filters", "layers[5].p", "layers[6].units"],
            analysis.Result.Errors.Select(e => e.Field));
        Assert.DoesNotContain(analysis.Result.Errors, e => e.LayerIndex == 4);
    }

    [Fact]
    public void ManyErrorsAreReportedInOnePassInputThenNamesThenLayers()
    {
        ModelSpec spec = new()
        {
            Input = new InputSpec(0, 28, 28),
            Layers = [Conv(0, 3), Conv(4, 0, name: "bad name"), Linear(2, name: "head"), Linear(3, name: "head")],
        };

        ModelValidationResult result = Analyze(spec);

        Assert.Equal(
            ["input.channels", "layers[1].name", "layers[3].name", "layers[0].filters", "layers[1].kernel"],
            result.Errors.Select(e => e.Field));
        Assert.Empty(result.Layers);
    }

    [Fact]
    public void InvalidAnalysisHasNoPlanAndNoClasses()
    {
        SpecAnalysis analysis = SpecAnalyzer.Analyze(Of(1, 8, 8, Flatten(), Linear(1)));

        Assert.False(analysis.IsValid);
        Assert.Empty(analysis.Plan);
        Assert.Equal(0, analysis.Classes);
    }

    [Fact]
    public void FlattenedSizeBeyondInt32IsAnErrorNotAWrappedShape()
    {
        // 4096 filters on 1024×1024 make 2^32 values per sample, which would wrap to 0 in an int once flattened.
        ModelValidationResult result = Analyze(Of(1, 1024, 1024, Conv(4096, 1), Flatten(), Linear(10)));

        Assert.False(result.Valid);
        Assert.All(result.Layers, l => Assert.All(l.OutputShape, d => Assert.True(d > 0, $"{l.Name} has a dimension of {d}")));
        SpecIssue error = Assert.Single(result.Errors);
        Assert.Equal(0, error.LayerIndex);
        Assert.Contains("4,294,967,296 values per sample", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LayerOutputsOverTheActivationCapAreAnError()
    {
        // 64 filters on 1024×1024: 256 MiB per sample, over a 100 MiB cap.
        ModelValidationResult result = Analyze(Of(1, 1024, 1024, Conv(64, 1), Flatten(), Linear(10)), new SpecLimits { MaxActivationBytes = 100L << 20 });

        SpecIssue error = Assert.Single(result.Errors);
        Assert.Equal("conv1: its output 64×1024×1024 takes the layer outputs of one sample to 268,435,456 bytes, over the cap of 104,857,600", error.Message);
    }

    [Fact]
    public void OutputSideBeyondInt32IsAnErrorNotANegativeSize()
    {
        // 1 + 2·1,100,000,000 − 1 + 1 = 2,200,000,001 rows wraps to a negative int.
        ModelValidationResult result = Analyze(Of(1, 1, 1, Conv(1, 1, padding: 1_100_000_000), Layer("globalavgpool"), Linear(10)));

        Assert.False(result.Valid);
        Assert.All(result.Layers, l => Assert.All(l.OutputShape, d => Assert.True(d > 0, $"{l.Name} has a dimension of {d}")));
        Assert.True(result.TotalActivationBytes >= 0);
        Assert.Contains(result.Errors, e => e.LayerIndex == 0);
    }
}
