using TrainingService.Contracts.Specs;
using TrainingService.Contracts.Training;
using TrainingService.Training.Data;
using TrainingService.Training.Loop;
using TrainingService.Training.Specs;
using Xunit;

namespace TrainingService.Training.Tests.Loop;

/// <summary>
/// Tests that train run alone, after every parallel test: torch's random generator and thread count are
/// process-wide, and the memory test reads the whole process's working set.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SequentialTraining
{
    public const string Name = "training (sequential)";
}

/// <summary>Keeps every event, numbered as the service's writer numbers them; <paramref name="onEvent"/> runs on the training thread after it is kept.</summary>
internal sealed class RecordingSink(Action<TrainingEvent>? onEvent = null) : ITrainingSink
{
    private readonly List<TrainingEvent> _events = [];
    private readonly List<long> _seqs = [];
    private long _lastSeq;

    public IReadOnlyList<TrainingEvent> Events => _events;

    public IReadOnlyList<long> Seqs => _seqs;

    public IReadOnlyList<StepEvent> Steps => [.. _events.OfType<StepEvent>()];

    public IReadOnlyList<EpochEvent> Epochs => [.. _events.OfType<EpochEvent>()];

    public IReadOnlyList<RunState> States => [.. _events.OfType<StateEvent>().Select(e => e.State)];

    public IReadOnlyList<AlertEvent> Alerts => [.. _events.OfType<AlertEvent>()];

    public void Publish(TrainingEvent trainingEvent)
    {
        _events.Add(trainingEvent);
        _seqs.Add(++_lastSeq);
        onEvent?.Invoke(trainingEvent);
    }

    public long Flush() => _lastSeq;

    /// <summary>Numbers on after a restored checkpoint's seq, as the worker does.</summary>
    public void ContinueAfter(long seq) => _lastSeq = seq;
}

internal static class Harness
{
    public static ImageDataset Shapes(int samples, int classes = 4, int testSamples = 0, int seed = 1) =>
        ShapesDataset.Generate(new ShapesOptions { Samples = samples, Classes = classes, TestSamples = testSamples, Seed = seed });

    /// <summary>The plan of a valid job, on two threads unless told.</summary>
    public static TrainingPlan Plan(
        ModelSpec spec, ImageDataset data, Hyperparameters hyperparameters, MonitoringOptions? monitoring = null, SanityOptions? sanity = null, int threads = 2) =>
        TrainingPlan.Require(SpecAnalyzer.Analyze(spec), DatasetShape.Of(data), hyperparameters, monitoring ?? new MonitoringOptions { StatsEvery = 0 }, sanity, threads);

    public static Trainer Trainer(
        ModelSpec spec, ImageDataset data, Hyperparameters hyperparameters, ITrainingSink sink, int statsEvery = 0, string? checkpointPath = null) =>
        new(Plan(spec, data, hyperparameters, new MonitoringOptions { StatsEvery = statsEvery }), data, sink, new TrainerOptions { CheckpointPath = checkpointPath });

    /// <summary>Trains to the end with no commands and returns what the sink saw.</summary>
    public static RecordingSink Train(ModelSpec spec, ImageDataset data, Hyperparameters hyperparameters, int statsEvery = 0)
    {
        var sink = new RecordingSink();
        using Trainer trainer = Trainer(spec, data, hyperparameters, sink, statsEvery);
        using var control = new TrainingControl();
        Assert.Equal(TrainingOutcome.Succeeded, trainer.Run(control, CancellationToken.None));
        return sink;
    }

    /// <summary>A small network with dropout twice, so a resumed run must restore the random generator to match.</summary>
    public static ModelSpec DropoutNet(int classes = 4) => new()
    {
        Name = "dropout",
        Input = new InputSpec(1, 28, 28),
        Layers =
        [
            new LayerSpec { Kind = "conv2d", Filters = 8, Kernel = 3, Padding = 1 },
            new LayerSpec { Kind = "relu" },
            new LayerSpec { Kind = "maxpool2d", Kernel = 2 },
            new LayerSpec { Kind = "dropout", P = 0.3 },
            new LayerSpec { Kind = "flatten" },
            new LayerSpec { Kind = "linear", Units = 32 },
            new LayerSpec { Kind = "relu" },
            new LayerSpec { Kind = "dropout", P = 0.5 },
            new LayerSpec { Kind = "linear", Units = classes },
        ],
    };

    /// <summary>Asserts that event numbers run 1, 2, 3, … with no gap or repeat.</summary>
    public static void AssertConsecutiveSeq(IEnumerable<long> numbered)
    {
        long[] seqs = [.. numbered];
        Assert.Equal(Enumerable.Range(1, seqs.Length).Select(i => (long)i), seqs);
    }
}

/// <summary>A temporary folder deleted with everything in it.</summary>
internal sealed class TempFolder : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("training-tests-").FullName;

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
