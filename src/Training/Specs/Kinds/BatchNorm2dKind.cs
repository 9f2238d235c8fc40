using TrainingService.Contracts.Specs;
using TrainingService.Training.Export;
using TrainingService.Training.Models;
using static TorchSharp.torch;
using static TrainingService.Training.Export.OnnxGraph;
using F = TorchSharp.torch.nn.functional;

namespace TrainingService.Training.Specs.Kinds;

/// <summary>batchnorm2d: each channel normalised over the batch, height and width, with a learnt scale and shift.</summary>
public sealed class BatchNorm2dKind : LayerKind
{
    public override string Name => "batchnorm2d";

    internal override bool SplitsByBatch => false;

    public override string AutoNamePrefix => "batchnorm";

    public override IReadOnlyList<string> Fields => ["eps", "momentum"];

    internal override LayerPlan Resolve(LayerPlan plan, LayerSpec layer, LayerCheck check)
    {
        double eps = layer.Eps ?? 1e-5, momentum = layer.Momentum ?? 0.1;
        if (!(eps > 0) || !double.IsFinite(eps))
        {
            check.Error("eps", $"eps must be a small positive number, got {SpecText.Number(eps)}");
        }

        if (!(momentum is >= 0 and <= 1))
        {
            check.Error("momentum", $"momentum must be in [0, 1], got {SpecText.Number(momentum)}");
        }

        return plan with { Eps = eps, Momentum = momentum };
    }

    internal override void Infer(LayerAnalysis layer)
    {
        int[] input = layer.Input;
        if (input.Length != 3)
        {
            layer.Error("kind", $"batchnorm2d needs a channels×height×width input, but gets {SpecText.Shape(input)}; it normalises each channel over height and width");
            return;
        }

        layer.Accept(input, 2L * input[0], 0);
    }

    internal override nn.Module<Tensor, Tensor> CreateModule(LayerPlan layer, Generator generator) => nn.BatchNorm2d(layer.InputShape[0], layer.Eps, layer.Momentum);

    public override IReadOnlyList<string> ParameterNames(LayerPlan layer) => ["weight", "bias"]; // running statistics are buffers

    internal override Tensor Forward(LayerPlan layer, IReadOnlyList<Tensor> inputs, LayerWeights weights) =>
        F.batch_norm(inputs[0], weights.Required("running_mean"), weights.Required("running_var"), weights.Optional("weight"), weights.Optional("bias"), false, layer.Momentum, layer.Eps);

    internal override void ToOnnx(LayerPlan layer, OnnxGraph graph, string[] inputs, string output)
    {
        // Eval mode: the running statistics; ONNX's momentum attribute only matters for training.
        int channels = layer.InputShape[0];
        graph.Node("BatchNormalization", layer.Name,
            [inputs[0], graph.WeightOr(layer, "weight", channels, 1f), graph.WeightOr(layer, "bias", channels, 0f),
             graph.Weight(layer, "running_mean", [channels]), graph.Weight(layer, "running_var", [channels])],
            [output], Float("epsilon", (float)layer.Eps));
    }
}
