using TorchSharp;
using TorchSharp.Modules;
using TrainingService.Contracts.Specs;
using TrainingService.Training.Models;
using TrainingService.Training.Specs;
using Xunit;
using static TorchSharp.torch;
using static TrainingService.Training.Tests.Specs.Net;

namespace TrainingService.Training.Tests.Specs;

/// <summary>conv2d's groups, PyTorch's semantics: each group of filters sees only its share of the input channels.</summary>
public sealed class GroupedConvolutionTests
{
    public static TheoryData<int, int, int, int, int, int, int> Convolutions => new()
    {
        // channels, filters, groups, kernel, stride, padding, dilation
        { 8, 8, 8, 3, 1, 1, 1 },
        { 8, 16, 8, 3, 2, 0, 1 },
        { 6, 9, 3, 5, 1, 2, 2 },
        { 4, 8, 2, 1, 1, 0, 1 },
        { 3, 6, 1, 3, 1, 0, 1 },
    };

    [Theory]
    [MemberData(nameof(Convolutions))]
    public void ShapesParametersAndWeightsMatchTorchSharpsOwnConv2dAtTwoSizes(
        int channels, int filters, int groups, int kernel, int stride, int padding, int dilation)
    {
        foreach ((int height, int width) in new[] { (16, 16), (21, 13) })
        {
            LayerSpec conv = Conv(filters, kernel, stride: stride, padding: padding, dilation: dilation) with { Groups = groups };
            SpecAnalysis analysis = SpecAnalyzer.Analyze(Of(channels, height, width, conv, Flatten(), Linear(2)));
            Assert.True(analysis.IsValid, Describe(analysis.Result.Errors));
            LayerReport report = analysis.Result.Layers[0];

            using Conv2d reference = nn.Conv2d(channels, filters, (kernel, kernel), stride: (stride, stride), padding: (padding, padding),
                dilation: (dilation, dilation), groups: groups);
            using var model = new SpecModel(analysis, seed: 1);
            using (NewDisposeScope())
            {
                long[] shape = reference.call(randn(2, channels, height, width)).shape;
                Assert.Equal([.. shape[1..].Select(d => (int)d)], report.OutputShape);
                Assert.Equal(reference.parameters().Sum(p => p.numel()), report.Parameters);
                Assert.Equal(reference.weight!.shape, model.state_dict()["conv1.weight"].shape);
                Assert.Equal((long)shape[2] * shape[3] * filters * (channels / groups) * kernel * kernel, report.MultiplyAdds);
            }
        }
    }

    [Fact]
    public void ADepthwiseConvolutionHasOneFilterPerChannelAndAGroupPerChannel()
    {
        SpecAnalysis analysis = SpecAnalyzer.Analyze(Of(32, 10, 10, Conv(32, 3, padding: 1) with { Groups = 32 }, Flatten(), Linear(2)));

        LayerReport report = analysis.Result.Layers[0];
        Assert.Equal([32, 10, 10], report.OutputShape);
        Assert.Equal((32 * 3 * 3) + 32, report.Parameters);
        Assert.Equal(10L * 10 * 32 * 3 * 3, report.MultiplyAdds);
        Assert.Equal(32, analysis.Plan[0].Groups);
    }

    [Fact]
    public void GroupsThatDoNotDivideOrAreBelowOneAreErrorsOnTheGroupsField()
    {
        SpecIssue channels = Assert.Single(Analyze(Classifier(6, 8, 8, Conv(8, 3) with { Groups = 4 })).Errors);
        SpecIssue filters = Assert.Single(Analyze(Classifier(6, 8, 8, Conv(8, 3) with { Groups = 3 })).Errors);
        SpecIssue zero = Assert.Single(Analyze(Classifier(6, 8, 8, Conv(8, 3) with { Groups = 0 })).Errors);
        SpecIssue negative = Assert.Single(Analyze(Classifier(6, 8, 8, Conv(8, 3) with { Groups = -2 })).Errors);

        Assert.Equal((0, "conv1", "layers[0].groups"), (channels.LayerIndex, channels.LayerName, channels.Field));
        Assert.Equal("conv1: groups 4 does not divide the 6 input channels: each group takes an equal share of them", channels.Message);
        Assert.Equal("layers[0].groups", filters.Field);
        Assert.Equal("conv1: groups 3 does not divide the 8 filters: each group makes an equal share of them", filters.Message);
        Assert.Equal(("layers[0].groups", "conv1: groups must be at least 1, got 0"), (zero.Field, zero.Message));
        Assert.Equal(("layers[0].groups", "conv1: groups must be at least 1, got -2"), (negative.Field, negative.Message));
    }

    [Fact]
    public void GroupsIsReadFromJsonAndAppliesToConv2dOnly()
    {
        SpecAnalysis read = SpecReader.ReadAndAnalyze(System.Text.Json.JsonDocument.Parse("""
            { "input": { "channels": 4, "height": 8, "width": 8 },
              "layers": [ { "kind": "conv2d", "filters": 4, "kernel": 3, "groups": 4 }, { "kind": "flatten" }, { "kind": "linear", "units": 2 } ] }
            """).RootElement);
        SpecAnalysis wrongType = SpecReader.ReadAndAnalyze(System.Text.Json.JsonDocument.Parse("""
            { "input": { "channels": 4, "height": 8, "width": 8 },
              "layers": [ { "kind": "conv2d", "filters": 4, "kernel": 3, "groups": "all" }, { "kind": "flatten" }, { "kind": "linear", "units": 2 } ] }
            """).RootElement);
        SpecIssue pool = Assert.Single(Analyze(Classifier(4, 8, 8, MaxPool(2) with { Groups = 2 })).Errors);

        Assert.True(read.IsValid, Describe(read.Result.Errors));
        Assert.Equal(4, read.Plan[0].Groups);
        SpecIssue type = Assert.Single(wrongType.Result.Errors);
        Assert.Equal(("layers[0].groups", "conv1: groups must be an integer, got the string \"all\""), (type.Field, type.Message));
        Assert.Equal(("layers[0].groups", "maxpool1: groups does not apply to maxpool2d; it takes kernel, stride, padding"), (pool.Field, pool.Message));
    }
}
