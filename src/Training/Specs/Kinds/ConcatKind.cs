using TrainingService.Training.Export;
using TrainingService.Training.Models;
using static TorchSharp.torch;
using static TrainingService.Training.Export.OnnxGraph;

namespace TrainingService.Training.Specs.Kinds;

/// <summary>concat: two or more inputs stacked along channels (or features), for inception blocks.</summary>
public sealed class ConcatKind : LayerKind
{
    public override string Name => "concat";

    public override string MergeVerb => "concatenate";

    internal override void Infer(LayerAnalysis layer)
    {
        int[] first = layer.Input;
        for (int k = 1; k < layer.InputShapes.Length; k++)
        {
            int[] other = layer.InputShapes[k];
            if (first.Length != other.Length || (first.Length == 3 && (first[1] != other[1] || first[2] != other[2])))
            {
                layer.Error("inputs", first.Length != other.Length
                    ? $"concat joins inputs that are all images or all flat, but {layer.InputName(0)} gives {SpecText.Shape(first)} and {layer.InputName(k)} gives {SpecText.Shape(other)}"
                    : $"concat stacks channels, so its inputs' heights and widths must match, but {layer.InputName(0)} gives {SpecText.Shape(first)} and {layer.InputName(k)} gives {SpecText.Shape(other)}");
                return;
            }
        }

        layer.Accept([layer.InputShapes.Sum(s => (long)s[0]), .. first.Skip(1).Select(d => (long)d)], 0, 0);
    }

    internal override nn.Module<Tensor, Tensor>? CreateModule(LayerPlan layer, Generator generator) => null;

    internal override Tensor Forward(LayerPlan layer, IReadOnlyList<Tensor> inputs, LayerWeights weights) => cat([.. inputs], 1);

    internal override void ToOnnx(LayerPlan layer, OnnxGraph graph, string[] inputs, string output) =>
        graph.Node("Concat", layer.Name, inputs, [output], Int("axis", 1));
}
