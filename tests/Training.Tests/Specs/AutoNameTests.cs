using TrainingService.Contracts.Specs;
using TrainingService.Training.Models;
using TrainingService.Training.Specs;
using Xunit;
using static TrainingService.Training.Tests.Specs.Net;

namespace TrainingService.Training.Tests.Specs;

/// <summary>Unnamed layers get their kind and a counter per kind; given names are kept and never collided with.</summary>
public sealed class AutoNameTests
{
    [Fact]
    public void UnnamedLayersCountPerKind()
    {
        ModelValidationResult result = Analyze(Of(3, 32, 32,
            Conv(6, 5), Relu(), MaxPool(2), Conv(16, 5), Relu(), MaxPool(2), Flatten(), Linear(120), Relu(), Linear(10)));

        Assert.Equal(
            ["conv1", "relu1", "maxpool1", "conv2", "relu2", "maxpool2", "flatten1", "linear1", "relu3", "linear2"],
            result.Layers.Select(l => l.Name));
    }

    [Fact]
    public void EveryKindHasItsPrefix()
    {
        ModelValidationResult result = Analyze(Of(3, 16, 16,
            Conv(4, 3), Layer("batchnorm2d"), Layer("leakyrelu"), AvgPool(2), Layer("sigmoid"), Layer("tanh"), Layer("dropout"),
            MaxPool(1), Layer("globalavgpool"), Linear(2)));

        Assert.Equal(
            ["conv1", "batchnorm1", "leakyrelu1", "avgpool1", "sigmoid1", "tanh1", "dropout1", "maxpool1", "globalavgpool1", "linear1"],
            result.Layers.Select(l => l.Name));
    }

    [Fact]
    public void GivenConv2OnTheFirstConvMakesTheOthersConv1AndConv3()
    {
        ModelValidationResult result = Analyze(Of(1, 16, 16,
            Conv(4, 3, name: "conv2"), Relu(), Conv(4, 3), Relu(), Conv(4, 3), Flatten(), Linear(2)));

        Assert.True(result.Valid, Describe(result.Errors));
        string[] names = [.. result.Layers.Select(l => l.Name)];
        Assert.Equal(["conv2", "relu1", "conv1", "relu2", "conv3", "flatten1", "linear1"], names);
        Assert.Equal(names.Length, names.Distinct(StringComparer.Ordinal).Count());
    }

    [Fact]
    public void GivenNamesAreReservedBeforeAnyAutomaticName()
    {
        ModelValidationResult result = Analyze(Of(1, 16, 16,
            Conv(4, 3), Conv(4, 3), Conv(4, 3, name: "conv1"), Relu(name: "conv3"), Flatten(), Linear(2, name: "relu1"), Relu(), Linear(2)));

        Assert.True(result.Valid, Describe(result.Errors));
        Assert.Equal(["conv2", "conv4", "conv1", "conv3", "flatten1", "relu1", "relu2", "linear1"], result.Layers.Select(l => l.Name));
    }

    [Fact]
    public void UnknownKindsAreCalledLayerN()
    {
        SpecAnalysis analysis = SpecAnalyzer.Analyze(Of(1, 8, 8, Layer("norm"), Layer("pool", name: "layer1"), Flatten(), Linear(2)));

        Assert.Equal(
            [(0, "layer2"), (1, "layer1")],
            analysis.Result.Errors.Select(e => (e.LayerIndex ?? -1, e.LayerName ?? "")));
    }

    [Fact]
    public void TheModelsChildrenTakeTheSameNames()
    {
        SpecAnalysis analysis = SpecAnalyzer.Analyze(Of(1, 16, 16, Conv(4, 3, name: "conv2"), Conv(4, 3), Flatten(), Linear(2, name: "head")));

        using var model = new SpecModel(analysis, seed: 1);

        Assert.Equal(["conv2", "conv1", "flatten1", "head"], model.named_children().Select(c => c.name));
        Assert.Equal(["conv2.weight", "conv2.bias", "conv1.weight", "conv1.bias", "head.weight", "head.bias"], model.named_parameters().Select(p => p.name));
    }
}
