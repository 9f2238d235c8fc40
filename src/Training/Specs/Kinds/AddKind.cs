using TrainingService.Training.Export;
using TrainingService.Training.Models;
using static TorchSharp.torch;

namespace TrainingService.Training.Specs.Kinds;

/// <summary>add: the element-wise sum of two or more inputs of one shape, for residual connections.</summary>
public sealed class AddKind : LayerKind
{
    public override string Name => "add";

    public override string MergeVerb => "sum";

    internal override void Infer(LayerAnalysis layer)
    {
        int[] first = layer.Input;
        for (int k = 1; k < layer.InputShapes.Length; k++)
        {
            int[] other = layer.InputShapes[k];
            if (!first.SequenceEqual(other))
            {
                layer.Error("inputs", $"add sums element by element, so its inputs' shapes must match, but {layer.InputName(0)} gives {SpecText.Shape(first)} and {layer.InputName(k)} gives {SpecText.Shape(other)}{ProjectionHint(first, other, layer.InputName(k))}");
                return;
            }
        }

        layer.Accept(first, 0, 0);
    }

    internal override nn.Module<Tensor, Tensor>? CreateModule(LayerPlan layer, Generator generator) => null;

    /// <summary>The inputs summed into one new tensor (in place after the first sum: one output, not one per input).</summary>
    internal override Tensor Forward(LayerPlan layer, IReadOnlyList<Tensor> inputs, LayerWeights weights)
    {
        Tensor sum = inputs[0] + inputs[1];
        for (int k = 2; k < inputs.Count; k++)
        {
            sum.add_(inputs[k]);
        }

        return sum;
    }

    internal override void ToOnnx(LayerPlan layer, OnnxGraph graph, string[] inputs, string output)
    {
        // Left to right, as the model sums: ((a + b) + c) + …
        string sum = inputs[0];
        for (int k = 1; k < inputs.Length; k++)
        {
            bool last = k == inputs.Length - 1;
            string next = last ? output : $"{layer.Name}.sum{k}";
            graph.Node("Add", last ? layer.Name : next, [sum, inputs[k]], [next]);
            if (!last)
            {
                graph.ValueInfo(next, layer.OutputShape);
            }

            sum = next;
        }
    }

    /// <summary>For inputs that differ in channels or size: the 1×1 convolution that would make them match.</summary>
    private static string ProjectionHint(int[] first, int[] other, string otherName)
    {
        if (first.Length != 3 || other.Length != 3 || other[1] % first[1] != 0 || other[2] % first[2] != 0 || other[1] / first[1] != other[2] / first[2])
        {
            return "";
        }

        int stride = other[1] / first[1];
        return $"; a 1×1 conv2d with {first[0]} filters{(stride > 1 ? $" and stride {stride}" : "")} after {otherName} (a projection shortcut) would make them match";
    }
}
