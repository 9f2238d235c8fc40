using TrainingService.Contracts.Specs;

namespace TrainingService.Training.Specs;

/// <summary>A layer with every default filled in and its input and output shapes known: what the model builder needs.</summary>
/// <remarks>
/// <see cref="Inputs"/> are the indices of the layers it takes, or <see cref="ModelInput"/>; always earlier layers,
/// so the plan's order is an order of evaluation. <see cref="InputShape"/> is its first input's shape.
/// </remarks>
public sealed record LayerPlan(int Index, string Name, LayerKind Kind, int[] InputShape, int[] OutputShape)
{
    /// <summary>In <see cref="Inputs"/>: the model's input image.</summary>
    public const int ModelInput = -1;

    public int[] Inputs { get; init; } = [];

    public int Filters { get; init; }

    public IntPair Kernel { get; init; }

    public IntPair Stride { get; init; }

    public Padding Padding { get; init; }

    public IntPair Dilation { get; init; }

    /// <summary>conv2d: the groups its input channels and filters are split into; 1 for an ordinary convolution.</summary>
    public int Groups { get; init; } = 1;

    public bool Bias { get; init; }

    /// <summary>conv2d, linear: the biases' starting value; null for PyTorch's default initialisation.</summary>
    public double? BiasInit { get; init; }

    public int Units { get; init; }

    public double P { get; init; }

    public double Slope { get; init; }

    public double Eps { get; init; }

    public double Momentum { get; init; }

    public long Parameters { get; init; }
}

/// <summary>The result of analysing a spec: the report for people and, when valid, the plan for the builder.</summary>
public sealed record SpecAnalysis(ModelValidationResult Result, IReadOnlyList<LayerPlan> Plan)
{
    /// <summary>The spec as read; null when it could not be read at all.</summary>
    public ModelSpec? Spec { get; init; }

    public bool IsValid => Result.Valid;

    /// <summary>The number of classes the network scores: the last linear layer's units.</summary>
    public int Classes => IsValid ? Plan[^1].Units : 0;
}
