using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using TrainingService.Contracts.Jobs;
using TrainingService.Contracts.Training;

namespace TrainingService.Contracts.Sweeps;

/// <summary>Which way a sweep's metric is better.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<MetricGoal>))]
public enum MetricGoal
{
    [JsonStringEnumMemberName("maximize")] Maximize,
    [JsonStringEnumMemberName("minimize")] Minimize,
}

/// <summary>How a sweep chooses its trials' settings.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<SweepStrategy>))]
public enum SweepStrategy
{
    /// <summary>Every combination of the dimensions' choices (or points), in order, the last dimension fastest.</summary>
    [JsonStringEnumMemberName("grid")] Grid,

    /// <summary><c>trials</c> seeded draws.</summary>
    [JsonStringEnumMemberName("random")] Random,

    /// <summary>Asynchronous successive halving: trials judged at rungs of epochs, the worse stopped.</summary>
    [JsonStringEnumMemberName("asha")] Asha,
}

/// <summary>What a sweep ranks its trials by: a figure of each epoch's <c>epoch</c> event.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<SweepMetricName>))]
public enum SweepMetricName
{
    [JsonStringEnumMemberName("validationAccuracy")] ValidationAccuracy,
    [JsonStringEnumMemberName("validationLoss")] ValidationLoss,
    [JsonStringEnumMemberName("trainAccuracy")] TrainAccuracy,
    [JsonStringEnumMemberName("trainLoss")] TrainLoss,
}

/// <summary>POST /sweeps: many jobs from one base job, each with its own settings from the search space.</summary>
public sealed record CreateSweepRequest
{
    /// <summary>A name for people (at most 200 characters).</summary>
    public string? Name { get; init; }

    /// <summary>The job every trial starts from: as POST /jobs (dataset, model or modelId, hyperparameters, monitoring), without sanity.</summary>
    public CreateJobRequest? Base { get; init; }

    /// <summary>The settings to vary, in order; grid order is nested loops with the last dimension fastest.</summary>
    public IReadOnlyList<SearchDimension>? SearchSpace { get; init; }

    /// <summary>grid (default), random or asha.</summary>
    public SweepStrategy? Strategy { get; init; }

    /// <summary>grid: the number of combinations (may be left out); random and asha: how many trials to draw.</summary>
    public int? Trials { get; init; }

    /// <summary>How many trials train at once (default 2).</summary>
    public int? Parallelism { get; init; }

    /// <summary>The seed of random draws (and of asha's grid order); default 1.</summary>
    public int? Seed { get; init; }

    public SweepMetric? Metric { get; init; }

    /// <summary>asha's rungs: at minEpochs·reductionFactor^k epochs, below maxEpochs, which every trial is planned for.</summary>
    public AshaOptions? Asha { get; init; }

    /// <summary>
    /// "fromRangeTest": before any trial, the sweep runs a learning-rate range test on the base (a job of its own) and
    /// every trial's learning rate is its suggestion. (A logUniform dimension on the learning rate can instead range
    /// around the suggestion: { "around": "fromRangeTest", "factor": 10 }.)
    /// </summary>
    public string? LearningRate { get; init; }

    /// <summary>The range test's settings when one runs (its first and last rate, its steps); defaults as a job's.</summary>
    public SweepRangeTest? RangeTest { get; init; }
}

public sealed record SweepRangeTest
{
    public double? MinLearningRate { get; init; }

    public double? MaxLearningRate { get; init; }

    public int? Steps { get; init; }
}

/// <summary>One setting to vary: a path and exactly one of choice, uniform, logUniform, intUniform.</summary>
public sealed record SearchDimension
{
    /// <summary>hyperparameters.&lt;field&gt; (e.g. hyperparameters.learningRate, hyperparameters.augmentation.translate), monitoring.&lt;field&gt;, or layers.&lt;layer name&gt;.&lt;field&gt; (e.g. layers.conv1.filters).</summary>
    public string? Path { get; init; }

    /// <summary>The values to choose from, as JSON values of the field.</summary>
    public IReadOnlyList<JsonElement>? Choice { get; init; }

    public SearchRange? Uniform { get; init; }

    /// <summary>Uniform in log space: for learning rates and decays spanning decades; min above 0.</summary>
    public SearchRange? LogUniform { get; init; }

    /// <summary>A whole number from min to max, both included.</summary>
    public SearchRange? IntUniform { get; init; }
}

/// <summary>A range to draw from; points: grid only, that many evenly spaced values, both ends included.</summary>
public sealed record SearchRange
{
    public double? Min { get; init; }

    public double? Max { get; init; }

    public int? Points { get; init; }

    /// <summary>logUniform on hyperparameters.learningRate only: "fromRangeTest", a range from suggestion ÷ factor to suggestion × factor (instead of min and max).</summary>
    public string? Around { get; init; }

    /// <summary>With around: how far each way (default 10).</summary>
    public double? Factor { get; init; }
}

public sealed record SweepMetric
{
    /// <summary>validationAccuracy (default), validationLoss, trainAccuracy or trainLoss.</summary>
    public SweepMetricName? Name { get; init; }

    /// <summary>Default: maximize for accuracies, minimize for losses.</summary>
    public MetricGoal? Goal { get; init; }
}

public sealed record AshaOptions
{
    /// <summary>The first rung, in epochs (default 1).</summary>
    public int? MinEpochs { get; init; }

    /// <summary>η: about one trial in η passes each rung (default 3).</summary>
    public int? ReductionFactor { get; init; }

    /// <summary>The epochs of a trial that passes every rung (default: the base's epochs).</summary>
    public int? MaxEpochs { get; init; }

    /// <summary>random (default): draws; grid: the dimensions' product, shuffled by the seed.</summary>
    public string? Sampler { get; init; }

    /// <summary>
    /// promotion (default, the paper's): a trial waits at each rung, its slot given to the next trial, and trains on once it
    /// is among the best 1/η of the trials that reported there; stopping: a trial goes on at once unless it is worse than
    /// the cut of the reports before it, so nothing waits, but early trials pass easily and more steps are spent.
    /// </summary>
    public string? Mode { get; init; }
}

/// <summary>asha's forms (<see cref="AshaOptions.Mode"/>).</summary>
public static class AshaModes
{
    public const string Promotion = "promotion";
    public const string Stopping = "stopping";
}

/// <summary>A sweep as it was accepted: every default filled in, the base's spec resolved (a modelId's spec copied).</summary>
public sealed record SweepSettings
{
    public string? Name { get; init; }

    public required Guid DatasetId { get; init; }

    public Guid? ModelId { get; init; }

    public required JsonElement Model { get; init; }

    public required Hyperparameters Hyperparameters { get; init; }

    public required MonitoringOptions Monitoring { get; init; }

    public required IReadOnlyList<SearchDimension> SearchSpace { get; init; }

    public required SweepStrategy Strategy { get; init; }

    public required int Trials { get; init; }

    public required int Parallelism { get; init; }

    public required int Seed { get; init; }

    public required SweepMetricName Metric { get; init; }

    public required MetricGoal Goal { get; init; }

    /// <summary>asha only: its rungs' settings, resolved.</summary>
    public AshaOptions? Asha { get; init; }

    /// <summary>asha only: the epochs at which trials are judged.</summary>
    public IReadOnlyList<int>? Rungs { get; init; }

    /// <summary>The range test the sweep runs first, when its learning rate comes from one; null otherwise.</summary>
    public SanityOptions? RangeTest { get; init; }

    /// <summary>Every trial's learning rate is the range test's suggestion (not a search dimension).</summary>
    public bool LearningRateFromRangeTest { get; init; }
}

[JsonConverter(typeof(JsonStringEnumConverter<TrialStatus>))]
public enum TrialStatus
{
    /// <summary>Not started yet.</summary>
    Pending,

    /// <summary>Its job is queued, running or paused.</summary>
    Active,

    /// <summary>asha's promotion form: checkpointed at a rung, waiting to be promoted (its job Paused, code asha-rung; it holds no slot).</summary>
    Waiting,

    /// <summary>Trained to the end.</summary>
    Completed,

    /// <summary>Stopped by asha at a rung (its job Cancelled, code asha-cut).</summary>
    Stopped,

    /// <summary>Its loss became NaN or exploded: stopped at once (code diverged).</summary>
    Diverged,

    Failed,

    Cancelled,
}

/// <summary>One trial: its settings and where its job stands.</summary>
public sealed record SweepTrial
{
    public int Index { get; init; }

    public Guid? JobId { get; init; }

    public TrialStatus Status { get; init; }

    /// <summary>Its settings, by search-space path.</summary>
    public required IReadOnlyDictionary<string, JsonNode?> Params { get; init; }

    /// <summary>Its best full-epoch value of the metric, and that epoch.</summary>
    public double? Value { get; init; }

    public int? ValueEpoch { get; init; }

    public int Epoch { get; init; }

    public long Step { get; init; }

    /// <summary>
    /// Why it stopped before its end (asha-cut, diverged, sweep-cancelled), with the reason its job's state event gave; a
    /// waiting trial has the reason it waits (its code is its status).
    /// </summary>
    public string? StopCode { get; init; }

    public string? StopReason { get; init; }
}

/// <summary>A sweep as listed.</summary>
public record SweepSummary
{
    public Guid Id { get; init; }

    public string? Name { get; init; }

    /// <summary>Running, Succeeded (every trial ended and one has a value), Failed or Cancelled.</summary>
    public RunState State { get; init; }

    public SweepStrategy Strategy { get; init; }

    public SweepMetricName Metric { get; init; }

    public MetricGoal Goal { get; init; }

    public int Trials { get; init; }

    public int Parallelism { get; init; }

    /// <summary>How many trials are in each status.</summary>
    public IReadOnlyDictionary<TrialStatus, int> Counts { get; init; } = new Dictionary<TrialStatus, int>();

    /// <summary>The best trial so far, or null.</summary>
    public SweepBest? Best { get; init; }

    /// <summary>Training steps run by all its trials.</summary>
    public long Steps { get; init; }

    /// <summary>Why no trial starts now (the owner's active-job quota), or why the sweep failed.</summary>
    public string? Waiting { get; init; }

    public string? Error { get; init; }

    public DateTime CreatedAt { get; init; }

    public DateTime? FinishedAt { get; init; }
}

public sealed record SweepBest(int Index, Guid? JobId, double Value, IReadOnlyDictionary<string, JsonNode?> Params);

/// <summary>GET /sweeps/{id}: the summary, its settings and every trial.</summary>
public sealed record SweepView : SweepSummary
{
    /// <summary>The learning-rate range test the sweep ran first (a job of its own, not a trial), and what it suggested.</summary>
    [JsonPropertyOrder(1)]
    public Guid? RangeTestJobId { get; init; }

    [JsonPropertyOrder(1)]
    public double? SuggestedLearningRate { get; init; }

    public SweepView()
    {
    }

    public SweepView(SweepSummary summary)
        : base(summary)
    {
    }

    [JsonPropertyOrder(1)]
    public required SweepSettings Settings { get; init; }

    [JsonPropertyOrder(2)]
    public required IReadOnlyList<SweepTrial> TrialList { get; init; }
}

/// <summary>GET /sweeps/{id}/leaderboard: trials ranked by the metric (those with no value last, by index).</summary>
public sealed record SweepLeaderboard(SweepMetricName Metric, MetricGoal Goal, IReadOnlyList<RankedTrial> Ranked);

public sealed record RankedTrial
{
    public int Rank { get; init; }

    public required SweepTrial Trial { get; init; }

    /// <summary>asha: what the trial reported at each rung and whether it went on.</summary>
    public required IReadOnlyList<RungReport> Rungs { get; init; }
}

/// <summary>
/// A trial's value at a rung and asha's decision: <paramref name="Continued"/> (went on, or was promoted), or not (stopped,
/// cut), or <paramref name="Waiting"/> for promotion. The cut is the value it was compared with: stopping, the quantile
/// of the <paramref name="Earlier"/> reports before it (null: it was the first); promotion, the worst of the best ⌊n/η⌋
/// when it was promoted or cut, <paramref name="Earlier"/> being the n − 1 others then (null: fewer than η reported).
/// </summary>
public sealed record RungReport(int Epoch, double Value, double? Cutoff, bool Continued, int Earlier, bool Waiting = false);

/// <summary>POST /sweeps/{id}/best/model: save the best trial's (or a given trial's) spec as a model.</summary>
public sealed record SaveTrialModelRequest
{
    public string? Name { get; init; }

    /// <summary>A trial's index; default the best.</summary>
    public int? Trial { get; init; }
}
