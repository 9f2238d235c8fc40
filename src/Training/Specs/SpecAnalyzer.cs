using TrainingService.Contracts.Specs;

namespace TrainingService.Training.Specs;

/// <summary>
/// Validates a model spec and infers, without torch, each layer's output shape, parameters, multiply-adds,
/// receptive field and jump, with PyTorch's formulas: out = ⌊(W + 2P − D·(F − 1) − 1)/S⌋ + 1.
/// A layer takes the previous layer's output or the earlier layers it names, so the spec is a graph in evaluation
/// order; at a merge (add, concat) the receptive field is the largest over its inputs' paths.
/// </summary>
public static class SpecAnalyzer
{
    /// <summary>The name by which a layer's inputs refer to the model's input image.</summary>
    public const string ModelInputName = "input";

    public static SpecAnalysis Analyze(ModelSpec spec, SpecLimits? limits = null) =>
        new GraphAnalysis(spec, limits ?? SpecLimits.Default).Run();

    /// <summary>Each layer's name: the given one, or its kind's prefix and the next free number (conv1, relu1, …).</summary>
    public static string[] LayerNames(IReadOnlyList<LayerSpec> layers) => LayerNaming.Assign(layers, _ => { });
}
