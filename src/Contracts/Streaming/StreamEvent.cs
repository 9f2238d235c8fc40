using System.Text.Json.Serialization;
using TrainingService.Contracts.Training;

namespace TrainingService.Contracts.Streaming;

/// <summary>
/// One event of a job as the stream and the history carry it: <see cref="Kind"/> says which other fields are set
/// (JSON leaves the rest out). Flat rather than polymorphic so both SignalR protocols, JSON and MessagePack, carry it.
/// </summary>
public sealed record StreamEvent
{
    /// <summary>1, 2, 3, … per job, with no gap; assigned by the service's event writer alone.</summary>
    public long Seq { get; init; }

    /// <summary>step, layers, epoch, state, alert, hyperparameters, sanity or snapshot.</summary>
    public required string Kind { get; init; }

    /// <summary>When it happened, UTC.</summary>
    public DateTime Time { get; init; }

    /// <summary>step, epoch.</summary>
    public int? Epoch { get; init; }

    /// <summary>step, layers, alert: the global step, from 1.</summary>
    public long? Step { get; init; }

    /// <summary>step: the batch's mean cross-entropy.</summary>
    public double? Loss { get; init; }

    public double? LearningRate { get; init; }

    public double? SamplesPerSecond { get; init; }

    /// <summary>layers: each layer's output statistics.</summary>
    public IReadOnlyList<LayerStats>? Layers { get; init; }

    /// <summary>layers: each parameter tensor's norm, gradient norm and update ratio.</summary>
    public IReadOnlyList<ParameterStats>? Parameters { get; init; }

    /// <summary>
    /// layers, as stored: true when its statistics were dropped to keep the job's history under its byte limit (only
    /// seq, kind, time and step are left); absent on every live event.
    /// </summary>
    public bool? Thinned { get; init; }

    public double? TrainLoss { get; init; }

    public double? TrainAccuracy { get; init; }

    public double? ValidationLoss { get; init; }

    public double? ValidationAccuracy { get; init; }

    /// <summary>state: Running, Paused, Succeeded, Failed or Cancelled.</summary>
    public RunState? State { get; init; }

    /// <summary>
    /// state: the run that wrote it. A job's first run is attempt 1; each claim by a worker (after a pause, a worker's
    /// death, a restart) adds one. A client reconnecting gives the attempt of the last state event it holds
    /// (SubscribeAfter), so the server can tell it which of its events a later run replaced.
    /// </summary>
    public int? Attempt { get; init; }

    /// <summary>state: why (a failure's cause, "resumed at step 120", …); hyperparameters: the person's reason.</summary>
    public string? Reason { get; init; }

    /// <summary>hyperparameters: the momentum from now on.</summary>
    public double? Momentum { get; init; }

    /// <summary>hyperparameters: the weight decay from now on.</summary>
    public double? WeightDecay { get; init; }

    /// <summary>sanity: which check.</summary>
    public SanityCheck? Check { get; init; }

    /// <summary>sanity: whether it passed.</summary>
    public bool? Passed { get; init; }

    /// <summary>sanity (learningRateRangeTest): the suggested learning rate.</summary>
    public double? SuggestedLearningRate { get; init; }

    /// <summary>alert: the rule (initial-loss, loss-explosion, dead-relu, …); state: why a sweep stopped the trial (asha-cut, diverged, sweep-cancelled).</summary>
    public string? Code { get; init; }

    /// <summary>alert: info, warning or critical.</summary>
    public string? Severity { get; init; }

    /// <summary>alert: the layer or parameter tensor concerned.</summary>
    public string? Layer { get; init; }

    /// <summary>alert, sanity: what was seen, with the numbers.</summary>
    public string? Message { get; init; }

    /// <summary>alert: what to try.</summary>
    public string? Suggestion { get; init; }
}

/// <summary>What the server calls on a connected dashboard (SignalR hub at /hubs/training).</summary>
public interface ITrainingClient
{
    /// <summary>Events of one job in seq order, continuing exactly after the last one sent to this connection.</summary>
    Task Events(Guid jobId, IReadOnlyList<StreamEvent> events);

    /// <summary>
    /// The job's events after <paramref name="afterSeq"/> were replaced: its run stopped after its last checkpoint (its
    /// worker died or lost its lease) and a new run resumed from that checkpoint under the same seqs. Drop the events
    /// held after afterSeq; Events continues from afterSeq + 1. (TensorBoard calls this purging orphaned data.)
    /// </summary>
    Task Rewind(Guid jobId, long afterSeq);
}
