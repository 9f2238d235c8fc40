using TorchSharp;
using TorchSharp.Modules;
using TrainingService.Contracts.Specs;
using TrainingService.Contracts.Training;
using TrainingService.Training.Export;
using TrainingService.Training.Models;
using TrainingService.Training.Monitoring;
using TrainingService.Training.Specs.Kinds;
using static TorchSharp.torch;

namespace TrainingService.Training.Specs;

/// <summary>
/// One kind of layer, whole: its spec fields and their defaults, its shape and size rule, its TorchSharp module, its
/// functional forward pass, its ONNX nodes and its statistics. The kinds are listed in <see cref="LayerKinds"/>.
/// </summary>
public abstract class LayerKind
{
    /// <summary>The name in a spec's "kind".</summary>
    public abstract string Name { get; }

    /// <summary>conv1, maxpool1, batchnorm1, linear1, …: the kind without its "2d".</summary>
    public virtual string AutoNamePrefix => Name;

    /// <summary>The optional and required fields of the kind, besides "kind", "name" and "inputs".</summary>
    public virtual IReadOnlyList<string> Fields => [];

    /// <summary>add and concat, the kinds that take two or more inputs: what they do to them ("sum"); null for the rest.</summary>
    public virtual string? MergeVerb => null;

    public bool IsMerge => MergeVerb is not null;

    /// <summary>
    /// Whether a training batch keeps its meaning split into two halves that run at once (the Trainer's
    /// <see cref="Loop.HalfBatches"/>): false for batch norm, whose statistics are the whole batch's, and dropout, whose
    /// masks come in order from the model's one generator.
    /// </summary>
    internal virtual bool SplitsByBatch => true;

    public override string ToString() => Name;

    /// <summary>The plan with the layer's fields checked and every default filled in.</summary>
    internal virtual LayerPlan Resolve(LayerPlan plan, LayerSpec layer, LayerCheck check) => plan;

    /// <summary>Infers the output shape, parameters and multiply-adds, and accepts the layer or reports why not.</summary>
    internal virtual void Infer(LayerAnalysis layer) => layer.Accept(layer.Input, 0, 0);

    /// <summary>The layer's module, every random draw from <paramref name="generator"/>; null when the model runs <see cref="Forward"/> instead (add, concat).</summary>
    internal abstract nn.Module<Tensor, Tensor>? CreateModule(LayerPlan layer, Generator generator);

    /// <summary>The layer in evaluation mode as functional ops on <paramref name="weights"/>.</summary>
    internal abstract Tensor Forward(LayerPlan layer, IReadOnlyList<Tensor> inputs, LayerWeights weights);

    /// <summary>Adds the layer's nodes, from <paramref name="inputs"/> to <paramref name="output"/>.</summary>
    internal abstract void ToOnnx(LayerPlan layer, OnnxGraph graph, string[] inputs, string output);

    /// <summary>The kind's own figures added to a layer's statistics (ReLU's inactive units, saturation).</summary>
    internal virtual LayerStats Observe(LayerStats stats, LayerOutput output) => stats;

    /// <summary>The layer's parameter tensors as its module registers them ("weight" is conv1.weight), each measured in layer statistics.</summary>
    public virtual IReadOnlyList<string> ParameterNames(LayerPlan layer) =>
        layer.Parameters == 0 ? [] : layer.Bias ? ["weight", "bias"] : ["weight"];

    /// <summary>
    /// conv2d, linear: PyTorch's default initialisation, drawn from <paramref name="generator"/>: weights by
    /// kaiming_uniform_(a = √5), biases uniform in ±1/√fan_in, or all at the spec's biasInit.
    /// </summary>
    private protected static (Parameter Weight, Parameter? Bias) InitialParameters(long[] weightShape, bool bias, double? biasInit, Generator generator)
    {
        using var noGrad = no_grad();
        long fanIn = weightShape.Skip(1).Aggregate(1L, (a, b) => a * b);
        double slope = Math.Sqrt(5), gain = Math.Sqrt(2.0 / (1 + (slope * slope)));
        double weightBound = Math.Sqrt(3.0) * (gain / Math.Sqrt(fanIn));
        Parameter weight = empty(weightShape).uniform_(-weightBound, weightBound, generator).AsParameter();
        if (!bias)
        {
            return (weight, null);
        }

        double biasBound = fanIn > 0 ? 1 / Math.Sqrt(fanIn) : 0;
        Tensor biases = empty(weightShape[0]);
        biases = biasInit is { } start ? biases.fill_(start) : biases.uniform_(-biasBound, biasBound, generator);
        return (weight, biases.AsParameter());
    }

    private protected static (long, long) Sides(IntPair pair) => (pair.Height, pair.Width);

    private protected static long[] SideArray(IntPair pair) => [pair.Height, pair.Width];
}

/// <summary>The kinds by their spec names.</summary>
public static class LayerKinds
{
    private static readonly LayerKind[] s_all =
    [
        new Conv2dKind(), new MaxPool2dKind(), new AvgPool2dKind(), new ReluKind(), new LeakyReluKind(), new SigmoidKind(),
        new TanhKind(), new BatchNorm2dKind(), new DropoutKind(), new FlattenKind(), new LinearKind(), new GlobalAvgPoolKind(),
        new AddKind(), new ConcatKind(),
    ];

    private static readonly Dictionary<string, LayerKind> s_byName = s_all.ToDictionary(k => k.Name, StringComparer.Ordinal);

    public static IReadOnlyCollection<string> Names => s_byName.Keys;

    public static bool TryParse(string name, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out LayerKind? kind) =>
        s_byName.TryGetValue(name, out kind);
}
