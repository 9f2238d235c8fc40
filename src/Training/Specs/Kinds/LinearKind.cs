using TorchSharp.Modules;
using TrainingService.Contracts.Specs;
using TrainingService.Training.Export;
using TrainingService.Training.Models;
using static TorchSharp.torch;
using static TrainingService.Training.Export.OnnxGraph;
using F = TorchSharp.torch.nn.functional;

namespace TrainingService.Training.Specs.Kinds;

/// <summary>linear: units outputs, each a weighted sum of every input feature; the last layer, one unit per class.</summary>
public sealed class LinearKind : LayerKind
{
    public override string Name => "linear";

    public override IReadOnlyList<string> Fields => ["units", "bias", "biasInit"];

    internal override LayerPlan Resolve(LayerPlan plan, LayerSpec layer, LayerCheck check) =>
        plan with { Units = check.RequirePositive("units", layer.Units), Bias = layer.Bias ?? true, BiasInit = check.BiasInit(layer) };

    internal override void Infer(LayerAnalysis layer)
    {
        int[] input = layer.Input;
        if (input.Length != 1)
        {
            layer.Error("kind", $"linear needs a flat input, but gets {SpecText.Shape(input)}; add {{ \"kind\": \"flatten\" }} (or globalavgpool) before it");
            return;
        }

        int units = layer.Plan.Units;
        long multiplyAdds = (long)input[0] * units;
        layer.Accept([units], multiplyAdds + (layer.Plan.Bias ? units : 0), multiplyAdds);
    }

    internal override nn.Module<Tensor, Tensor> CreateModule(LayerPlan layer, Generator generator)
    {
        (Parameter weight, Parameter? bias) = InitialParameters([layer.Units, layer.InputShape[0]], layer.Bias, layer.BiasInit, generator);
        return nn.Linear(weight, bias);
    }

    internal override Tensor Forward(LayerPlan layer, IReadOnlyList<Tensor> inputs, LayerWeights weights) =>
        F.linear(inputs[0], weights.Required("weight"), weights.Optional("bias"));

    internal override void ToOnnx(LayerPlan layer, OnnxGraph graph, string[] inputs, string output)
    {
        string weight = graph.Weight(layer, "weight", [layer.Units, layer.InputShape[0]]);
        graph.Node("Gemm", layer.Name, [inputs[0], weight, .. graph.OptionalBias(layer, layer.Units)], [output], Int("transB", 1));
    }
}
