using System.Globalization;
using System.Text.RegularExpressions;
using TorchSharp;
using TrainingService.Contracts.Specs;
using TrainingService.Training.Models;
using TrainingService.Training.Specs;
using Xunit;
using static TrainingService.Training.Tests.Specs.Net;
using Padding = TrainingService.Contracts.Specs.Padding;

namespace TrainingService.Training.Tests.Specs;

/// <summary>The analyser computes shapes and parameter counts without torch; the built model must agree layer by layer.</summary>
public sealed class TorchAgreementTests
{
    internal static readonly Dictionary<string, ModelSpec> s_specs = new(StringComparer.Ordinal)
    {
        ["lenet5 preset, 28x28 with pad 2"] = ModelPresets.LeNet5(),
        ["tiny preset, 3x16x16, 7 classes"] = ModelPresets.TinyCnn(3, 16, 16, 7),
        ["vgg preset, 28x28"] = ModelPresets.SmallVgg(),
        ["vgg preset, 3x32x32"] = ModelPresets.SmallVgg(3, 32, 32, 10),
        ["lenet5 preset, 16x16 (the smallest the presets endpoint accepts)"] = ModelPresets.LeNet5(1, 16, 16, 2),
        ["lenet5 classic, 32x32 without padding"] = Of(1, 32, 32,
            Conv(6, 5), Relu(), MaxPool(2), Conv(16, 5), Relu(), MaxPool(2), Flatten(),
            Linear(120), Relu(), Linear(84), Relu(), Linear(10)),
        ["rectangular kernel, stride and padding on a non-square input"] = Of(3, 20, 30,
            Conv(8, new IntPair(3, 5), stride: new IntPair(1, 2), padding: new IntPair(1, 2)), Relu(),
            MaxPool(new IntPair(2, 3)), Flatten(), Linear(10)),
        ["same padding with odd kernels and dilation"] = Of(3, 17, 23,
            Conv(4, 3, padding: Padding.SameAsInput), Conv(6, 5, padding: Padding.SameAsInput, dilation: 2),
            Layer("tanh"), Layer("globalavgpool"), Linear(5)),
        ["same padding with even kernels"] = Of(1, 16, 15,
            Conv(4, 4, padding: Padding.SameAsInput), Conv(4, new IntPair(2, 4), padding: Padding.SameAsInput),
            Conv(3, 2, padding: Padding.SameAsInput, dilation: new IntPair(1, 3)), Layer("sigmoid"), Flatten(), Linear(3)),
        ["dilation with stride and a per-side dilation"] = Of(3, 32, 32,
            Conv(8, 3, stride: 2, dilation: 2), Conv(8, 3, padding: 1, dilation: new IntPair(2, 3)), Relu(),
            Layer("globalavgpool"), Linear(4)),
        ["avgpool with padding"] = Of(3, 15, 15,
            Conv(6, 3), AvgPool(3, stride: 2, padding: 1), AvgPool(new IntPair(3, 2), stride: new IntPair(1, 2), padding: new IntPair(1, 0)),
            Flatten(), Linear(7)),
        ["batchnorm, dropout, leakyrelu, conv and linear without bias"] = Of(3, 24, 24,
            Conv(16, 3, padding: 1, bias: false), Layer("batchnorm2d"), Relu(), MaxPool(2),
            new LayerSpec { Kind = "dropout", P = 0.25 },
            Conv(32, 3, bias: false), new LayerSpec { Kind = "batchnorm2d", Eps = 1e-3, Momentum = 0.01 },
            new LayerSpec { Kind = "leakyrelu", Slope = 0.2 }, Layer("globalavgpool"), Layer("dropout"), Linear(10, bias: false)),
        ["multilayer perceptron on a flattened image"] = Of(1, 8, 8,
            Flatten(), Linear(32, bias: false), Layer("sigmoid"), new LayerSpec { Kind = "dropout", P = 0 }, Linear(16), Layer("tanh"), Linear(2)),
        ["alexnet stem on 227x227x3"] = Of(3, 227, 227,
            Conv(96, 11, stride: 4), Relu(), MaxPool(3, stride: 2), Conv(64, 5, padding: 2), Relu(), MaxPool(3, stride: 2),
            Layer("globalavgpool"), Linear(10)),
        ["non-square strides and a 1x1 convolution"] = Of(2, 37, 19,
            Conv(5, new IntPair(5, 3), stride: new IntPair(2, 1), padding: new IntPair(2, 0)),
            MaxPool(new IntPair(3, 1), stride: new IntPair(2, 1), padding: new IntPair(1, 0)), Layer("tanh"), Conv(3, 1),
            Flatten(), Linear(6)),
        ["windows that do not tile their input"] = Of(3, 29, 31,
            Conv(4, 3, stride: 2), MaxPool(3, stride: 2, padding: 1), Conv(5, 4, stride: 3), Flatten(), Linear(2)),
        ["1x1 bottleneck on 64 channels"] = Of(64, 28, 28,
            Conv(16, 1), Relu(), Conv(64, 3, padding: 1), Layer("batchnorm2d"), Relu(), Layer("globalavgpool"), Linear(10)),
        ["alexnet preset, 3x32x32"] = ModelPresets.SmallAlexNet(3, 32, 32, 10),
        ["alexnet preset, 28x28"] = ModelPresets.SmallAlexNet(1, 28, 28, 10),
        ["resnet8 preset, 3x32x32"] = ModelPresets.ResNet8(3, 32, 32, 10),
        ["resnet8 preset, 28x28"] = ModelPresets.ResNet8(1, 28, 28, 10),
        ["inception preset, 3x32x32"] = ModelPresets.MiniInception(3, 32, 32, 10),
        ["inception preset, 1x28x28, 4 classes"] = ModelPresets.MiniInception(1, 28, 28, 4),
        ["graph presets at 16x16 (the smallest the presets endpoint accepts)"] = ModelPresets.ResNet8(1, 16, 16, 2),
        ["add of three inputs, one of them the image"] = Of(3, 10, 10,
            Conv(3, 3, padding: Padding.SameAsInput, name: "a"), Relu("r"),
            new LayerSpec { Kind = "conv2d", Name = "b", Inputs = ["input"], Filters = 3, Kernel = 1 },
            new LayerSpec { Kind = "add", Inputs = ["r", "b", "input"] }, Flatten(), Linear(4)),
        ["concat of flat features from two paths"] = Of(2, 9, 7,
            Conv(4, 3, name: "c"), Layer("globalavgpool", name: "g"),
            new LayerSpec { Kind = "flatten", Name = "f", Inputs = ["input"] }, Linear(5, name: "l"),
            new LayerSpec { Kind = "concat", Inputs = ["g", "l"] }, Relu(), Linear(3)),
        ["depthwise separable block, 3x16x16"] = DepthwiseSeparable(3, 16, 16),
        ["depthwise separable block, 3x23x17"] = DepthwiseSeparable(3, 23, 17),
        ["grouped convolutions with stride, dilation and same padding"] = Of(4, 19, 13,
            Conv(8, 3, stride: 2, padding: 1) with { Groups = 2 }, Relu(),
            Conv(12, new IntPair(3, 5), padding: Padding.SameAsInput, dilation: 2) with { Groups = 4, Bias = false },
            Conv(12, 1) with { Groups = 3 }, Layer("globalavgpool"), Linear(3)),
        ["user names and automatic names together"] = Of(3, 12, 12,
            Conv(4, 3, name: "conv2"), Relu(), Conv(4, 3), Conv(4, 3), MaxPool(2, name: "pool"), Flatten(), Linear(3, name: "head")),
    };

    /// <summary>MobileNet's block: 3×3 depthwise convolutions (one filter per channel) and a 1×1 pointwise one between.</summary>
    private static ModelSpec DepthwiseSeparable(int channels, int height, int width) => Of(channels, height, width,
        Conv(16, 3, padding: 1), Relu(),
        Conv(16, 3, padding: 1) with { Groups = 16 }, Layer("batchnorm2d"), Relu(),
        Conv(32, 1), Relu(),
        Conv(32, 3, stride: 2) with { Groups = 32, Bias = false }, Relu(),
        Layer("globalavgpool"), Linear(5));

    public static TheoryData<string> SpecNames => [.. s_specs.Keys];

    [Theory]
    [MemberData(nameof(SpecNames))]
    public void EveryLayerShapeAndParameterCountMatchTorchSharp(string specName)
    {
        ModelSpec spec = s_specs[specName];
        SpecAnalysis analysis = SpecAnalyzer.Analyze(spec);
        Assert.True(analysis.IsValid, Describe(analysis.Result.Errors));
        IReadOnlyList<LayerReport> reports = analysis.Result.Layers;

        using var model = new SpecModel(analysis, seed: 1);
        var shapes = new long[reports.Count][];
        model.LayerOutputObserver = (index, output) => shapes[index] = output.shape[1..];
        long[] finalShape;
        using (var scope = torch.NewDisposeScope())
        {
            torch.Tensor x = torch.randn(2, spec.Input!.Channels, spec.Input.Height, spec.Input.Width);
            finalShape = model.call(x).shape;
        }

        var parameters = model.named_parameters()
            .GroupBy(p => p.name.Split('.')[0], StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Sum(p => p.parameter.numel()), StringComparer.Ordinal);
        var mismatches = new List<string>();
        foreach (LayerReport report in reports)
        {
            long[] expected = [.. report.OutputShape.Select(d => (long)d)];
            if (shapes[report.Index] is not { } actual || !actual.SequenceEqual(expected))
            {
                mismatches.Add($"{report.Name}: analysis shape [{string.Join(", ", expected)}], torch [{string.Join(", ", shapes[report.Index] ?? [])}]");
            }

            long torchParameters = parameters.GetValueOrDefault(report.Name);
            if (torchParameters != report.Parameters)
            {
                mismatches.Add($"{report.Name}: analysis {report.Parameters} parameters, torch {torchParameters}");
            }
        }

        Assert.Empty(mismatches);
        Assert.Subset(reports.Select(r => r.Name).ToHashSet(StringComparer.Ordinal), parameters.Keys.ToHashSet(StringComparer.Ordinal));
        Assert.Equal(analysis.Result.TotalParameters, model.parameters().Sum(p => p.numel()));
        Assert.Equal([2L, .. analysis.Result.OutputShape!.Select(d => (long)d)], finalShape);
    }

    /// <summary>Input size, kernel, stride, padding and dilation along the height.</summary>
    public static TheoryData<int, int, int, int, int> Windows => new()
    {
        { 28, 3, 2, 0, 1 },
        { 28, 2, 2, 0, 1 },
        { 28, 5, 3, 0, 1 },
        { 28, 3, 2, 1, 1 },
        { 224, 7, 2, 3, 1 },
        { 28, 7, 4, 1, 1 },
        { 28, 5, 4, 0, 1 },
        { 29, 4, 3, 1, 1 },
        { 28, 3, 3, 0, 2 },
        { 30, 3, 4, 1, 3 },
    };

    [Theory]
    [MemberData(nameof(Windows))]
    public void WindowWarningCountsExactlyTheInputRowsTorchNeverReads(int size, int kernel, int stride, int padding, int dilation)
    {
        ModelValidationResult result = Analyze(Classifier(1, size, 1,
            Conv(1, new IntPair(kernel, 1), stride: new IntPair(stride, 1), padding: new IntPair(padding, 0), dilation: new IntPair(dilation, 1))));
        Assert.True(result.Valid, Describe(result.Errors));
        int warned = result.Warnings
            .Select(w => Regex.Match(w.Message, @"the last (\d+) rows? of the input"))
            .Where(m => m.Success)
            .Select(m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture))
            .SingleOrDefault();

        using var conv = torch.nn.Conv2d(1, 1, (kernel, 1), stride: (stride, 1), padding: (padding, 0), dilation: (dilation, 1), bias: false);
        using var scope = torch.NewDisposeScope();
        using (torch.no_grad())
        {
            conv.weight!.fill_(1);
        }

        torch.Tensor input = torch.ones(new long[] { 1, 1, size, 1 }, requires_grad: true);
        conv.call(input).sum().backward();
        float[] gradient = [.. input.grad!.flatten().data<float>()];
        int unread = gradient.Reverse().TakeWhile(g => g == 0).Count();

        Assert.Equal(unread, warned);
    }

    [Fact]
    public void EverySpecInTheAgreementSetIsValidAndCoversEveryKind()
    {
        var kinds = s_specs.Values.SelectMany(s => s.Layers!).Select(l => l.Kind).ToHashSet(StringComparer.Ordinal);

        Assert.True(s_specs.Count >= 10);
        Assert.Superset(LayerKinds.Names.ToHashSet(StringComparer.Ordinal), kinds);
    }

    [Fact]
    public void ModelRegistersOneChildPerLayerUnderItsName()
    {
        SpecAnalysis analysis = SpecAnalyzer.Analyze(ModelPresets.LeNet5());

        using var model = new SpecModel(analysis, seed: 1);

        Assert.Equal(analysis.Result.Layers.Select(l => l.Name), model.named_children().Select(c => c.name));
        Assert.Equal(
            ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias", "linear3.weight", "linear3.bias"],
            model.named_parameters().Select(p => p.name));
    }

    [Fact]
    public void ModelRefusesAnInvalidAnalysisAndSaysWhy()
    {
        SpecAnalysis analysis = SpecAnalyzer.Analyze(Of(1, 4, 4, Conv(2, 5), Flatten(), Linear(2)));

        ArgumentException error = Assert.Throws<ArgumentException>(() => new SpecModel(analysis, seed: 1));

        Assert.Contains("the kernel is larger than its 4×4 input", error.Message, StringComparison.Ordinal);
    }
}
