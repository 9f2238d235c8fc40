namespace TrainingService.Training.Specs;

public enum LayerKind
{
    Conv2d,
    MaxPool2d,
    AvgPool2d,
    Relu,
    LeakyRelu,
    Sigmoid,
    Tanh,
    BatchNorm2d,
    Dropout,
    Flatten,
    Linear,
    GlobalAvgPool,
    Add,
    Concat,
}

/// <summary>The spec's names for each kind, the prefix of automatic layer names, and the fields each kind takes.</summary>
public static class LayerKinds
{
    private static readonly Dictionary<string, LayerKind> s_byName = new(StringComparer.Ordinal)
    {
        ["conv2d"] = LayerKind.Conv2d,
        ["maxpool2d"] = LayerKind.MaxPool2d,
        ["avgpool2d"] = LayerKind.AvgPool2d,
        ["relu"] = LayerKind.Relu,
        ["leakyrelu"] = LayerKind.LeakyRelu,
        ["sigmoid"] = LayerKind.Sigmoid,
        ["tanh"] = LayerKind.Tanh,
        ["batchnorm2d"] = LayerKind.BatchNorm2d,
        ["dropout"] = LayerKind.Dropout,
        ["flatten"] = LayerKind.Flatten,
        ["linear"] = LayerKind.Linear,
        ["globalavgpool"] = LayerKind.GlobalAvgPool,
        ["add"] = LayerKind.Add,
        ["concat"] = LayerKind.Concat,
    };

    public static IReadOnlyCollection<string> Names => s_byName.Keys;

    public static bool TryParse(string name, out LayerKind kind) => s_byName.TryGetValue(name, out kind);

    public static string Name(LayerKind kind) => kind switch
    {
        LayerKind.Conv2d => "conv2d",
        LayerKind.MaxPool2d => "maxpool2d",
        LayerKind.AvgPool2d => "avgpool2d",
        LayerKind.Relu => "relu",
        LayerKind.LeakyRelu => "leakyrelu",
        LayerKind.Sigmoid => "sigmoid",
        LayerKind.Tanh => "tanh",
        LayerKind.BatchNorm2d => "batchnorm2d",
        LayerKind.Dropout => "dropout",
        LayerKind.Flatten => "flatten",
        LayerKind.Linear => "linear",
        LayerKind.GlobalAvgPool => "globalavgpool",
        LayerKind.Add => "add",
        LayerKind.Concat => "concat",
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>conv1, maxpool1, batchnorm1, linear1, …: the kind without its "2d".</summary>
    public static string AutoNamePrefix(LayerKind kind) => kind switch
    {
        LayerKind.Conv2d => "conv",
        LayerKind.MaxPool2d => "maxpool",
        LayerKind.AvgPool2d => "avgpool",
        LayerKind.BatchNorm2d => "batchnorm",
        _ => Name(kind),
    };

    /// <summary>The optional and required fields of a kind, besides "kind" and "name".</summary>
    public static IReadOnlyList<string> Fields(LayerKind kind) => kind switch
    {
        LayerKind.Conv2d => ["filters", "kernel", "stride", "padding", "dilation", "bias", "biasInit"],
        LayerKind.MaxPool2d or LayerKind.AvgPool2d => ["kernel", "stride", "padding"],
        LayerKind.LeakyRelu => ["slope"],
        LayerKind.BatchNorm2d => ["eps", "momentum"],
        LayerKind.Dropout => ["p"],
        LayerKind.Linear => ["units", "bias", "biasInit"],
        _ => [],
    };

    /// <summary>add and concat: the kinds that take two or more inputs.</summary>
    public static bool IsMerge(LayerKind kind) => kind is LayerKind.Add or LayerKind.Concat;

    public static bool IsSpatialWindow(LayerKind kind) => kind is LayerKind.Conv2d or LayerKind.MaxPool2d or LayerKind.AvgPool2d;
}
