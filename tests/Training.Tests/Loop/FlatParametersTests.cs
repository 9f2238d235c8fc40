using TorchSharp;
using TorchSharp.Modules;
using TrainingService.Contracts.Specs;
using TrainingService.Contracts.Training;
using TrainingService.Training.Loop;
using TrainingService.Training.Models;
using TrainingService.Training.Specs;
using Xunit;
using static TorchSharp.torch;

namespace TrainingService.Training.Tests.Loop;

/// <summary>The optimizer updates one flat tensor that the model's parameters are views of: the same run, bit for bit.</summary>
[Collection(SequentialTraining.Name)]
public sealed class FlatParametersTests : IDisposable
{
    private static readonly SpecAnalysis s_lenet = SpecAnalyzer.Analyze(ModelPresets.LeNet5(classes: 4));

    // One parameter tensor: both checkpoint layouts hold one optimizer state, the older one in the tensor's shape.
    private static readonly SpecAnalysis s_oneTensor = SpecAnalyzer.Analyze(new ModelSpec
    {
        Input = new InputSpec(1, 28, 28),
        Layers = [new LayerSpec { Kind = "flatten" }, new LayerSpec { Kind = "linear", Units = 4, Bias = false }],
    });

    private readonly TempFolder _folder = new();

    public static TheoryData<OptimizerKind, double, bool> Optimizers => new()
    {
        { OptimizerKind.Sgd, 0.9, false },
        { OptimizerKind.Sgd, 0.9, true }, // Nesterov
        { OptimizerKind.Sgd, 0, false }, // no momentum buffer at all
        { OptimizerKind.Adam, 0, false },
        { OptimizerKind.AdamW, 0, false },
    };

    [Theory]
    [MemberData(nameof(Optimizers))]
    public void TheFlatUpdateIsThePerTensorUpdateBitForBit(OptimizerKind kind, double momentum, bool nesterov)
    {
        using var flatModel = new SpecModel(s_lenet, seed: 3);
        using var flat = FlatParameters.Of(flatModel);
        using OptimizerHelper flatOptimizer = Optimizer(kind, momentum, nesterov, [flat.All]);
        using var model = new SpecModel(s_lenet, seed: 3);
        using OptimizerHelper optimizer = Optimizer(kind, momentum, nesterov, model.parameters());

        for (int step = 1; step <= 5; step++)
        {
            Step(flatModel, flatOptimizer, step);
            Step(model, optimizer, step);
            AssertSameParameters(model, flatModel, $"after step {step}");
        }

        // The parameters are views of the flat tensor, the gradients of the flat gradient: nothing was copied away.
        Assert.Equal(flatModel.parameters().Sum(p => p.numel()), flat.All.numel());
        Assert.All(flatModel.parameters(), p => Assert.NotEqual(0f, p.grad!.abs().sum().item<float>())); // the last step's
        flatOptimizer.zero_grad();
        Assert.All(flatModel.parameters(), p => Assert.Equal(0f, p.grad!.abs().sum().item<float>())); // zeroed with the flat one
    }

    [Theory]
    [MemberData(nameof(Optimizers))]
    public void ACheckpointWithOneOptimizerStatePerTensorContinuesTheSameRun(OptimizerKind kind, double momentum, bool nesterov) =>
        CheckpointContinuesTheSameRun(s_lenet, kind, momentum, nesterov);

    [Theory]
    [InlineData(OptimizerKind.Sgd, 0.9)]
    [InlineData(OptimizerKind.Adam, 0)]
    public void AOneTensorModelsCheckpointInEitherLayoutContinuesTheSameRun(OptimizerKind kind, double momentum) =>
        CheckpointContinuesTheSameRun(s_oneTensor, kind, momentum, nesterov: false);

    private void CheckpointContinuesTheSameRun(SpecAnalysis spec, OptimizerKind kind, double momentum, bool nesterov)
    {
        // Before the parameters were flat, a checkpoint held one optimizer state per parameter tensor (a job that was
        // running when the service was upgraded resumes from one of those).
        string perTensor = _folder.File("per-tensor.checkpoint"), flatFile = _folder.File("flat.checkpoint");
        using var model = new SpecModel(spec, seed: 3);
        using OptimizerHelper optimizer = Optimizer(kind, momentum, nesterov, model.parameters());
        using var flatModel = new SpecModel(spec, seed: 3);
        using var flat = FlatParameters.Of(flatModel);
        using OptimizerHelper flatOptimizer = Optimizer(kind, momentum, nesterov, [flat.All]);
        for (int step = 1; step <= 3; step++)
        {
            Step(model, optimizer, step);
            Step(flatModel, flatOptimizer, step);
        }

        var position = new TrainingPosition { Step = 3 };
        Checkpoint.Save(perTensor, position, model, optimizer);
        Checkpoint.Save(flatFile, position, flatModel, flatOptimizer);

        var resumed = new List<(string File, SpecModel Model, FlatParameters Flat, OptimizerHelper Optimizer)>();
        try
        {
            foreach (string file in new[] { perTensor, flatFile })
            {
                var fresh = new SpecModel(spec, seed: 11); // other weights until the checkpoint's are read
                var freshFlat = FlatParameters.Of(fresh);
                OptimizerHelper freshOptimizer = Optimizer(kind, momentum, nesterov, [freshFlat.All]);
                resumed.Add((Path.GetFileName(file), fresh, freshFlat, freshOptimizer));
                Assert.Equal(3, Checkpoint.Load(file, fresh, freshOptimizer, () => Optimizer(kind, momentum, nesterov, fresh.parameters())).Step);
                AssertSameParameters(flatModel, fresh, $"{Path.GetFileName(file)}, as read");
            }

            // Each continues exactly as the run that was never stopped: the optimizer's state came back too.
            for (int step = 4; step <= 6; step++)
            {
                Step(flatModel, flatOptimizer, step);
                foreach ((string file, SpecModel m, _, OptimizerHelper o) in resumed)
                {
                    Step(m, o, step);
                    AssertSameParameters(flatModel, m, $"{file}, after step {step}");
                }
            }
        }
        finally
        {
            foreach ((_, SpecModel m, FlatParameters f, OptimizerHelper o) in resumed)
            {
                o.Dispose();
                f.Dispose();
                m.Dispose();
            }
        }
    }

    private static OptimizerHelper Optimizer(OptimizerKind kind, double momentum, bool nesterov, IEnumerable<Parameter> parameters) => kind switch
    {
        OptimizerKind.Adam => optim.Adam(parameters, 1e-3, weight_decay: 1e-4),
        OptimizerKind.AdamW => optim.AdamW(parameters, 1e-3, weight_decay: 1e-2),
        _ => optim.SGD(parameters, 0.05, momentum, weight_decay: 5e-4, nesterov: nesterov),
    };

    /// <summary>One step on a batch drawn from <paramref name="step"/>: the same batch for every model.</summary>
    private static void Step(SpecModel model, OptimizerHelper optimizer, int step)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator((ulong)step);
        Tensor x = randn([16, 1, 28, 28], generator: generator);
        Tensor y = randint(0, 4, [16], generator: generator);
        optimizer.zero_grad();
        nn.functional.cross_entropy(model.call(x), y).backward();
        optimizer.step();
    }

    private static void AssertSameParameters(SpecModel expected, SpecModel actual, string when)
    {
        foreach (((string name, Parameter e), (_, Parameter a)) in expected.named_parameters().Zip(actual.named_parameters()))
        {
            Assert.True(e.data<float>().ToArray().SequenceEqual(a.data<float>().ToArray()), $"{name} differs {when}");
        }
    }

    public void Dispose() => _folder.Dispose();
}
