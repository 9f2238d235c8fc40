using TorchSharp.Modules;
using TrainingService.Contracts.Specs;
using TrainingService.Training.Export;
using TrainingService.Training.Models;
using static TorchSharp.torch;

namespace TrainingService.Training.Specs.Kinds;

/// <summary>dropout: zeroes each element with probability p while training; passes its input on in evaluation.</summary>
public sealed class DropoutKind : LayerKind
{
    public override string Name => "dropout";

    internal override bool SplitsByBatch => false;

    public override IReadOnlyList<string> Fields => ["p"];

    internal override LayerPlan Resolve(LayerPlan plan, LayerSpec layer, LayerCheck check)
    {
        double p = layer.P ?? 0.5;
        if (!(p is >= 0 and < 1))
        {
            check.Error("p", $"p must be in [0, 1): the probability of zeroing an element, got {SpecText.Number(p)}");
        }

        return plan with { P = p };
    }

    internal override nn.Module<Tensor, Tensor> CreateModule(LayerPlan layer, Generator generator) => new Dropout(layer.P, generator);

    internal override Tensor Forward(LayerPlan layer, IReadOnlyList<Tensor> inputs, LayerWeights weights) => inputs[0];

    internal override void ToOnnx(LayerPlan layer, OnnxGraph graph, string[] inputs, string output) =>
        graph.Node("Identity", layer.Name, [inputs[0]], [output]);

    /// <summary>PyTorch's CPU dropout (a Bernoulli(1 − p) mask scaled by 1/(1 − p)), the mask drawn from the model's generator.</summary>
    private sealed class Dropout(double p, Generator generator) : ParameterLessModule<Tensor, Tensor>("Dropout")
    {
        public override Tensor forward(Tensor input)
        {
            if (!training || p == 0)
            {
                return input.alias();
            }

            using Tensor mask = empty_like(input).bernoulli_(1 - p, generator);
            mask.div_(1 - p);
            return input * mask;
        }
    }
}
