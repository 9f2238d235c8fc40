using TrainingService.Contracts.Specs;
using Xunit;
using static TrainingService.Training.Tests.Specs.Net;

namespace TrainingService.Training.Tests.Specs;

/// <summary>A window that does not tile its input silently ignores its last rows or columns: valid, but worth a warning.</summary>
public sealed class WindowWarningTests
{
    [Fact]
    public void ThreeByThreeAtStrideTwoOn28WarnsOnceThatTheLastRowAndColumnAreNeverSeen()
    {
        ModelValidationResult result = Analyze(Classifier(1, 28, 28, Conv(4, 3, stride: 2)));

        Assert.True(result.Valid, Describe(result.Errors));
        Assert.Equal([4, 13, 13], result.Layers[0].OutputShape);
        SpecIssue warning = Assert.Single(result.Warnings);
        Assert.Equal((0, "conv1", "layers[0].stride"), (warning.LayerIndex, warning.LayerName, warning.Field));
        Assert.Equal(
            "conv1: the 3×3 window at stride 2 does not tile the height and width (28 + 2·0 − 3 = 25 is not a multiple of 2): the last 1 row and column of the input is never seen",
            warning.Message);
    }

    [Fact]
    public void NonSquareInputWarnsForEachSideWithItsOwnNumbers()
    {
        ModelValidationResult onlyHeight = Analyze(Classifier(1, 28, 31, Conv(4, 3, stride: 2)));
        ModelValidationResult bothSides = Analyze(Classifier(1, 28, 30, Conv(4, 3, stride: 2)));

        Assert.Equal([4, 13, 15], onlyHeight.Layers[0].OutputShape);
        Assert.Equal(
            ["conv1: the 3×3 window at stride 2 does not tile the height (28 + 2·0 − 3 = 25 is not a multiple of 2): the last 1 row of the input is never seen"],
            onlyHeight.Warnings.Select(w => w.Message));
        Assert.Equal(
            [
                "conv1: the 3×3 window at stride 2 does not tile the height (28 + 2·0 − 3 = 25 is not a multiple of 2): the last 1 row of the input is never seen",
                "conv1: the 3×3 window at stride 2 does not tile the width (30 + 2·0 − 3 = 27 is not a multiple of 2): the last 1 column of the input is never seen",
            ],
            bothSides.Warnings.Select(w => w.Message));
    }

    [Fact]
    public void TwoByTwoPoolOn28TilesEvenlyAndDoesNotWarn()
    {
        ModelValidationResult result = Analyze(Classifier(1, 28, 28, MaxPool(2), MaxPool(2)));

        Assert.Equal([1, 7, 7], result.Layers[1].OutputShape);
        Assert.Empty(result.Warnings);
    }

    [Fact]
    public void StrideOneNeverWarns() =>
        Assert.Empty(Analyze(Classifier(1, 29, 31, Conv(4, 4), Conv(4, new IntPair(2, 6)), MaxPool(3, stride: 1))).Warnings);

    [Fact]
    public void SeveralDroppedRowsArePlural()
    {
        ModelValidationResult result = Analyze(Classifier(1, 28, 30, MaxPool(new IntPair(5, 5), stride: new IntPair(3, 5))));

        SpecIssue warning = Assert.Single(result.Warnings);
        Assert.Equal((0, "maxpool1", "layers[0].stride"), (warning.LayerIndex, warning.LayerName, warning.Field));
        Assert.Equal(
            "maxpool1: the 5×5 window at stride 3 does not tile the height (28 + 2·0 − 5 = 23 is not a multiple of 3): the last 2 rows of the input are never seen",
            warning.Message);
    }

    [Fact]
    public void DilatedKernelWarnsWithItsEffectiveSizeInPlural()
    {
        SpecIssue warning = Assert.Single(Analyze(Classifier(1, 28, 28, Conv(4, 3, stride: 3, dilation: 2))).Warnings);

        Assert.EndsWith("(28 + 2·0 − 5 = 23 is not a multiple of 3): the last 2 rows and columns of the input are never seen", warning.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void WarningsDoNotMakeASpecInvalidAndEachLayerWarnsForItself()
    {
        ModelValidationResult result = Analyze(Classifier(1, 28, 28, MaxPool(3), Conv(2, 2, stride: new IntPair(1, 2))));

        Assert.True(result.Valid, Describe(result.Errors));
        Assert.Equal(
            [(0, "layers[0].stride"), (1, "layers[1].stride")],
            result.Warnings.Select(w => (w.LayerIndex ?? -1, w.Field)));
    }

    [Fact]
    public void StrideTwoWithPadOneOnAnEvenSizeDropsOnlyPaddingAndDoesNotWarn()
    {
        // ResNet's stem and downsampling: 28 + 2 − 3 = 27 leaves one row over, but that row is the bottom padding.
        ModelValidationResult result = Analyze(Classifier(3, 28, 28, Conv(8, 3, stride: 2, padding: 1), MaxPool(3, stride: 2, padding: 1)));

        Assert.Equal([8, 14, 14], result.Layers[0].OutputShape);
        Assert.Equal([8, 7, 7], result.Layers[1].OutputShape);
        Assert.Empty(result.Warnings);
    }

    [Fact]
    public void DroppedRowsCountOnlyInputRowsNotPadding()
    {
        // 28 + 2·1 − 7 = 23 leaves 3 rows over at stride 4; the last is padding, so 2 input rows are never seen.
        ModelValidationResult result = Analyze(Classifier(1, 28, 28, Conv(4, new IntPair(7, 1), stride: new IntPair(4, 1), padding: new IntPair(1, 0))));

        SpecIssue warning = Assert.Single(result.Warnings);
        Assert.Contains("the last 2 rows of the input are never seen", warning.Message, StringComparison.Ordinal);
    }
}
