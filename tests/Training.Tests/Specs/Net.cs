using TrainingService.Contracts.Specs;
using TrainingService.Training.Specs;

namespace TrainingService.Training.Tests.Specs;

/// <summary>Short constructors for specs, so that each test reads as the network it describes.</summary>
internal static class Net
{
    public static ModelSpec Of(int channels, int height, int width, params LayerSpec[] layers) =>
        new() { Input = new InputSpec(channels, height, width), Layers = layers };

    /// <summary>The layers under test followed by flatten and a 10-way linear layer, so the spec is a valid classifier.</summary>
    public static ModelSpec Classifier(int channels, int height, int width, params LayerSpec[] layers) =>
        Of(channels, height, width, [.. layers, Flatten(), Linear(10)]);

    public static ModelValidationResult Analyze(ModelSpec spec, SpecLimits? limits = null) => SpecAnalyzer.Analyze(spec, limits).Result;

    public static LayerSpec Conv(
        int? filters, IntPair? kernel, IntPair? stride = null, Padding? padding = null, IntPair? dilation = null, bool? bias = null, string? name = null) =>
        new() { Kind = "conv2d", Name = name, Filters = filters, Kernel = kernel, Stride = stride, Padding = padding, Dilation = dilation, Bias = bias };

    public static LayerSpec MaxPool(IntPair? kernel, IntPair? stride = null, Padding? padding = null, string? name = null) =>
        new() { Kind = "maxpool2d", Name = name, Kernel = kernel, Stride = stride, Padding = padding };

    public static LayerSpec AvgPool(IntPair? kernel, IntPair? stride = null, Padding? padding = null) =>
        new() { Kind = "avgpool2d", Kernel = kernel, Stride = stride, Padding = padding };

    public static LayerSpec Linear(int? units, bool? bias = null, string? name = null) =>
        new() { Kind = "linear", Name = name, Units = units, Bias = bias };

    public static LayerSpec Relu(string? name = null) => new() { Kind = "relu", Name = name };

    public static LayerSpec Flatten(string? name = null) => new() { Kind = "flatten", Name = name };

    public static LayerSpec Layer(string kind, string? name = null) => new() { Kind = kind, Name = name };

    public static string Describe(IEnumerable<SpecIssue> issues) =>
        string.Join(Environment.NewLine, issues.Select(i => $"[{i.LayerIndex}] {i.LayerName} {i.Field}: {i.Message}"));
}
