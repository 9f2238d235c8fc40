using TorchSharp;
using TrainingService.Training.Specs;
using static TorchSharp.torch;

namespace TrainingService.Training.Models;

/// <summary>
/// The network a valid spec describes: one named child per layer with parameters or state (conv1.weight, …),
/// evaluated in the spec's order, each layer on the outputs of the layers it names (add sums them, concat stacks their
/// channels). Unlike Sequential it can hand every layer's output to an observer, for per-layer statistics.
/// </summary>
public sealed class SpecModel : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor>?[] _layers;

    /// <summary>A model drawing every random number, initialisation and dropout, from its own generator seeded with <paramref name="seed"/>.</summary>
    public SpecModel(SpecAnalysis analysis, ulong seed)
        : base(nameof(SpecModel))
    {
        if (!analysis.IsValid)
        {
            throw new ArgumentException("the spec has errors: " + string.Join("; ", analysis.Result.Errors.Select(e => e.Message)), nameof(analysis));
        }

        Generator generator = new(seed);
        Generator = generator;
        Plan = analysis.Plan;
        _layers = [.. Plan.Select(layer => layer.Kind.CreateModule(layer, generator))];
        for (int i = 0; i < _layers.Length; i++)
        {
            if (_layers[i] is { } layer)
            {
                register_module(Plan[i].Name, layer);
            }
        }
    }

    /// <summary>The job's own random stream (dropout masks while training); a checkpoint keeps its state.</summary>
    public Generator Generator { get; }

    public IReadOnlyList<LayerPlan> Plan { get; }

    /// <summary>Called with each layer's index and output during forward while set; the tensor lives until the step's dispose scope ends.</summary>
    public Action<int, Tensor>? LayerOutputObserver { get; set; }

    public override Tensor forward(Tensor input) => Observed(input, LayerOutputObserver);

    /// <summary>The forward pass with <paramref name="observer"/> in place of <see cref="LayerOutputObserver"/>: two halves of a batch running at once each record their own.</summary>
    public Tensor Observed(Tensor input, Action<int, Tensor>? observer)
    {
        var outputs = new Tensor[_layers.Length];
        Tensor Input(int j) => j == LayerPlan.ModelInput ? input : outputs[j];
        for (int i = 0; i < _layers.Length; i++)
        {
            int[] inputs = Plan[i].Inputs;
            outputs[i] = _layers[i] is { } layer
                ? layer.call(Input(inputs[0]))
                : Plan[i].Kind.Forward(Plan[i], [.. inputs.Select(Input)], LayerWeights.None);
            observer?.Invoke(i, outputs[i]);
        }

        return outputs[^1];
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Generator.Dispose();
        }

        base.Dispose(disposing);
    }
}
