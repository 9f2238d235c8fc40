using System.Text.Json.Serialization;
using TrainingService.Contracts.Streaming;

namespace TrainingService.Contracts.Training;

/// <summary>
/// Something that happened in a job, typed for the code that raises and inspects it. It goes out only as its
/// <see cref="StreamEvent"/>, numbered and timed by the service's one event writer; a new kind is a record here.
/// </summary>
public abstract record TrainingEvent
{
    /// <summary>The wire form: the kind and this event's fields (seq and time are the writer's).</summary>
    public abstract StreamEvent ToStream();
}

/// <summary>One optimisation step.</summary>
public sealed record StepEvent : TrainingEvent
{
    /// <summary>Epoch, from 1.</summary>
    public int Epoch { get; init; }

    /// <summary>Global step, from 1.</summary>
    public long Step { get; init; }

    /// <summary>The batch's mean cross-entropy before the update.</summary>
    public double Loss { get; init; }

    public double LearningRate { get; init; }

    /// <summary>This step's batch size over its wall-clock time, statistics included.</summary>
    public double SamplesPerSecond { get; init; }

    public override StreamEvent ToStream() =>
        new() { Kind = "step", Epoch = Epoch, Step = Step, Loss = Loss, LearningRate = LearningRate, SamplesPerSecond = SamplesPerSecond };
}

/// <summary>Per-layer activation and per-parameter statistics, measured on one step's batch.</summary>
public sealed record LayersEvent : TrainingEvent
{
    public long Step { get; init; }

    public required IReadOnlyList<LayerStats> Layers { get; init; }

    public required IReadOnlyList<ParameterStats> Parameters { get; init; }

    public override StreamEvent ToStream() => new() { Kind = "layers", Step = Step, Layers = Layers, Parameters = Parameters };
}

/// <summary>A layer's output over a batch.</summary>
/// <param name="Histogram">Counts in equal-width bins from <paramref name="Min"/> to <paramref name="Max"/>.</param>
/// <param name="ZeroFraction">Fraction of outputs exactly 0 (dead or inactive ReLU units).</param>
public sealed record LayerStats(string Name, string Kind, double Mean, double Std, double Min, double Max, double ZeroFraction, long[] Histogram)
{
    /// <summary>ReLU layers: fraction of units (channels, or features) with no positive output anywhere in the batch.</summary>
    public double? InactiveUnits { get; init; }

    /// <summary>Sigmoid and tanh layers: fraction of outputs within 2% of the function's limits.</summary>
    public double? Saturated { get; init; }
}

/// <summary>A parameter tensor at one step.</summary>
/// <param name="Name">e.g. conv1.weight.</param>
/// <param name="Norm">‖w‖ before the update.</param>
/// <param name="GradNorm">‖∂loss/∂w‖.</param>
/// <param name="UpdateRatio">‖Δw‖ / ‖w‖ of this step's update; about 1e-3 is healthy.</param>
public sealed record ParameterStats(string Name, double Norm, double GradNorm, double UpdateRatio);

/// <summary>The end of an epoch. Train figures are running means over the epoch's steps (in training mode).</summary>
public sealed record EpochEvent : TrainingEvent
{
    public int Epoch { get; init; }

    public double TrainLoss { get; init; }

    public double TrainAccuracy { get; init; }

    public double? ValidationLoss { get; init; }

    public double? ValidationAccuracy { get; init; }

    public override StreamEvent ToStream() => new()
    {
        Kind = "epoch", Epoch = Epoch, TrainLoss = TrainLoss, TrainAccuracy = TrainAccuracy, ValidationLoss = ValidationLoss, ValidationAccuracy = ValidationAccuracy,
    };
}

[JsonConverter(typeof(JsonStringEnumConverter<RunState>))]
public enum RunState
{
    Queued,
    Running,
    Paused,
    Succeeded,
    Failed,
    Cancelled,
}

public static class RunStates
{
    /// <summary>Succeeded, Failed or Cancelled: the job will not train again.</summary>
    public static bool IsEnded(this RunState state) => state is RunState.Succeeded or RunState.Failed or RunState.Cancelled;
}

/// <summary>The run changed state.</summary>
public sealed record StateEvent : TrainingEvent
{
    public RunState State { get; init; }

    public string? Reason { get; init; }

    /// <summary>Cancelled by a sweep: asha-cut, diverged or sweep-cancelled; null otherwise.</summary>
    public string? Code { get; init; }

    public override StreamEvent ToStream() => new() { Kind = "state", State = State, Reason = Reason, Code = Code };
}

/// <summary>A diagnosis: something in the run looks wrong, what it probably means and what to try.</summary>
public sealed record AlertEvent : TrainingEvent
{
    /// <summary>The rule: initial-loss, non-finite, loss-explosion, loss-not-falling, update-ratio-high, update-ratio-low,
    /// dead-relu, saturation, vanishing-gradients, exploding-gradients, overfitting, plateau.</summary>
    public required string Code { get; init; }

    /// <summary>info, warning or critical.</summary>
    public required string Severity { get; init; }

    /// <summary>The layer or parameter tensor it is about, when it is about one.</summary>
    public string? Layer { get; init; }

    /// <summary>The step at which it was seen.</summary>
    public long Step { get; init; }

    /// <summary>What was seen, with the numbers.</summary>
    public required string Message { get; init; }

    /// <summary>What to try.</summary>
    public string? Suggestion { get; init; }

    public override StreamEvent ToStream() =>
        new() { Kind = "alert", Step = Step, Code = Code, Severity = Severity, Layer = Layer, Message = Message, Suggestion = Suggestion };
}

/// <summary>A person changed the hyperparameters of the running job; they apply from the step after <see cref="Step"/>.</summary>
public sealed record HyperparametersEvent : TrainingEvent
{
    /// <summary>The last step trained with the old values.</summary>
    public long Step { get; init; }

    /// <summary>The base learning rate from now on (a schedule still scales it).</summary>
    public double LearningRate { get; init; }

    public double Momentum { get; init; }

    public double WeightDecay { get; init; }

    /// <summary>Why, as the person said it.</summary>
    public string? Reason { get; init; }

    public override StreamEvent ToStream() =>
        new() { Kind = "hyperparameters", Step = Step, LearningRate = LearningRate, Momentum = Momentum, WeightDecay = WeightDecay, Reason = Reason };
}

/// <summary>A sanity check's verdict, the last event before the run ends.</summary>
public sealed record SanityEvent : TrainingEvent
{
    public required SanityCheck Check { get; init; }

    public bool Passed { get; init; }

    /// <summary>What was seen, with the numbers.</summary>
    public required string Message { get; init; }

    /// <summary>learningRateRangeTest: the suggested learning rate.</summary>
    public double? SuggestedLearningRate { get; init; }

    /// <summary>The last step.</summary>
    public long Step { get; init; }

    public override StreamEvent ToStream() =>
        new() { Kind = "sanity", Step = Step, Check = Check, Passed = Passed, Message = Message, SuggestedLearningRate = SuggestedLearningRate };
}

/// <summary>New pictures of what the network sees (filters, feature maps) at this step: GET /jobs/{id}/filters/{layer}.png, /featuremaps/{layer}.png.</summary>
public sealed record SnapshotEvent : TrainingEvent
{
    public long Step { get; init; }

    public int Epoch { get; init; }

    public override StreamEvent ToStream() => new() { Kind = "snapshot", Step = Step, Epoch = Epoch };
}
