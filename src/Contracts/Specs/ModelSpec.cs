using System.Text.Json.Serialization;

namespace TrainingService.Contracts.Specs;

/// <summary>A convolutional network: its input and its layers, applied in order.</summary>
public sealed record ModelSpec
{
    /// <summary>A name for people, e.g. "lenet5".</summary>
    public string? Name { get; init; }

    /// <summary>The shape of one input image.</summary>
    public InputSpec? Input { get; init; }

    /// <summary>
    /// The layers, first to last. Each takes the previous layer's output unless it names its <see cref="LayerSpec.Inputs"/>;
    /// the last is a linear layer with one unit per class, and its output is the model's.
    /// </summary>
    public IReadOnlyList<LayerSpec>? Layers { get; init; }
}

/// <summary>The shape of one input image: channels × height × width.</summary>
public sealed record InputSpec(int Channels, int Height, int Width);

/// <summary>
/// One layer. <see cref="Kind"/> decides which of the other fields apply:
/// conv2d (filters, kernel, stride, padding, dilation, groups, bias, biasInit), maxpool2d/avgpool2d (kernel, stride, padding),
/// leakyrelu (slope), batchnorm2d (eps, momentum), dropout (p), linear (units, bias, biasInit);
/// relu, sigmoid, tanh, flatten and globalavgpool take none. Any layer may name its <see cref="Inputs"/>; add (element-wise
/// sum, for residual connections) and concat (channel concatenation, for inception blocks) need two or more.
/// Fields left unset are left out of its JSON.
/// </summary>
public sealed record LayerSpec
{
    /// <summary>conv2d, maxpool2d, avgpool2d, relu, leakyrelu, sigmoid, tanh, batchnorm2d, dropout, flatten, linear, globalavgpool, add or concat.</summary>
    public required string Kind { get; init; }

    /// <summary>Unique layer name; defaults to the kind and a counter (conv1, relu1, …).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Name { get; init; }

    /// <summary>
    /// The names of the earlier layers whose outputs this layer takes, or "input" for the model's input.
    /// Default: the previous layer (the input, for the first). add and concat take two or more; every other kind one.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<string>? Inputs { get; init; }

    /// <summary>conv2d: the number of filters (output channels).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? Filters { get; init; }

    /// <summary>conv2d, pools: window size, an integer or [height, width].</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IntPair? Kernel { get; init; }

    /// <summary>conv2d (default 1), pools (default the kernel): an integer or [height, width].</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IntPair? Stride { get; init; }

    /// <summary>conv2d, pools: zero padding on each side, an integer or [height, width]; conv2d also takes "same" (stride 1 only).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Padding? Padding { get; init; }

    /// <summary>conv2d: spacing between kernel taps (default 1), an integer or [height, width].</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IntPair? Dilation { get; init; }

    /// <summary>
    /// conv2d: split the input channels and the filters into this many groups, each filter seeing only its group's
    /// channels (default 1); groups = input channels = filters is a depthwise convolution. Both must divide by it.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? Groups { get; init; }

    /// <summary>conv2d, linear: whether to learn a bias (default true).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? Bias { get; init; }

    /// <summary>conv2d, linear: start every bias at this value instead of PyTorch's small random ones (bias must be on).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? BiasInit { get; init; }

    /// <summary>linear: the number of outputs.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? Units { get; init; }

    /// <summary>dropout: the probability of zeroing an element, in [0, 1) (default 0.5).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? P { get; init; }

    /// <summary>leakyrelu: the slope for negative inputs (default 0.01).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? Slope { get; init; }

    /// <summary>batchnorm2d: added to the variance for stability (default 1e-5).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? Eps { get; init; }

    /// <summary>batchnorm2d: the running statistics' update factor (default 0.1).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? Momentum { get; init; }
}

/// <summary>A size along height and width; written as one integer when both are equal, else [height, width].</summary>
[JsonConverter(typeof(IntPairJsonConverter))]
public readonly record struct IntPair(int Height, int Width)
{
    public static implicit operator IntPair(int both) => new(both, both);

    public bool IsSquare => Height == Width;

    public override string ToString() => IsSquare ? $"{Height}" : $"[{Height}, {Width}]";
}

/// <summary>Zero padding: a size, or "same" (output as large as the input, stride 1 only).</summary>
[JsonConverter(typeof(PaddingJsonConverter))]
public readonly record struct Padding(IntPair Size, bool Same)
{
    public static Padding SameAsInput => new(default, true);

    public static implicit operator Padding(int both) => new(both, false);

    public static implicit operator Padding(IntPair size) => new(size, false);

    public override string ToString() => Same ? "\"same\"" : Size.ToString();
}
