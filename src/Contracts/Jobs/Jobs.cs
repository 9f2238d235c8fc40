using System.Text.Json;
using TrainingService.Contracts.Specs;
using TrainingService.Contracts.Training;

namespace TrainingService.Contracts.Jobs;

/// <summary>Start a training job. Every field has a default: the newest dataset, a LeNet-style CNN sized to it, 10 epochs of SGD.</summary>
public sealed record CreateJobRequest
{
    /// <summary>The dataset to train on (POST /datasets or /datasets/builtin); left out: the newest dataset.</summary>
    public Guid? DatasetId { get; init; }

    /// <summary>A model spec; leave out (with modelId) for the default.</summary>
    public JsonElement? Model { get; init; }

    /// <summary>A model saved with POST /models, instead of model.</summary>
    public Guid? ModelId { get; init; }

    public Hyperparameters? Hyperparameters { get; init; }

    public MonitoringOptions? Monitoring { get; init; }

    /// <summary>Run a sanity check (overfitSubset, learningRateRangeTest) instead of training; see docs/diagnostics.md.</summary>
    public SanityOptions? Sanity { get; init; }
}

/// <summary>One page of a listing, newest first; <see cref="Next"/> is the after value of the next page, null on the last.</summary>
public sealed record Page<T>(IReadOnlyList<T> Items, Guid? Next);

/// <summary>Where a job stands, as listed: no spec or settings (GET /jobs/{id} has them).</summary>
public record JobSummary
{
    public Guid Id { get; init; }

    public RunState State { get; init; }

    public Guid DatasetId { get; init; }

    public Guid? ModelId { get; init; }

    /// <summary>The spec's name, if it has one.</summary>
    public string? ModelName { get; init; }

    /// <summary>Steps done over steps in all, 0 to 1.</summary>
    public double Progress { get; init; }

    public long Step { get; init; }

    public long TotalSteps { get; init; }

    public int Epoch { get; init; }

    /// <summary>Seconds left at the latest speed; null until it is running.</summary>
    public double? EtaSeconds { get; init; }

    public double? LatestLoss { get; init; }

    public double? BestValidationAccuracy { get; init; }

    public double? SamplesPerSecond { get; init; }

    /// <summary>The last event's seq: history up to here is available at /jobs/{id}/events.</summary>
    public long LastSeq { get; init; }

    /// <summary>
    /// Bytes of event history stored for the job (each event's JSON and its row, and a step's figures kept for charts); kept under Jobs:MaxHistoryBytesPerJob
    /// by thinning old layer statistics (docs/reliability.md).
    /// </summary>
    public long HistoryBytes { get; init; }

    /// <summary>Why the job failed (or why a sweep stopped it).</summary>
    public string? Error { get; init; }

    /// <summary>The sweep this job is a trial of (GET /sweeps/{id}), and its trial's index; null for other jobs.</summary>
    public Guid? SweepId { get; init; }

    public int? SweepTrial { get; init; }

    /// <summary>Why a sweep stopped the trial before its end: asha-cut, diverged or sweep-cancelled.</summary>
    public string? StopCode { get; init; }

    public DateTime CreatedAt { get; init; }

    public DateTime? StartedAt { get; init; }

    public DateTime? FinishedAt { get; init; }
}

/// <summary>A job, where it stands and what it trains.</summary>
public sealed record JobView : JobSummary
{
    public JobView()
    {
    }

    public JobView(JobSummary summary)
        : base(summary)
    {
    }

    public required ModelSpec Model { get; init; }

    public required Hyperparameters Hyperparameters { get; init; }

    public required MonitoringOptions Monitoring { get; init; }

    /// <summary>The sanity check this job runs, if it is one.</summary>
    public SanityOptions? Sanity { get; init; }

    /// <summary>The node whose worker holds the job now, and its attempt (one more at each claim); null when none does.</summary>
    public string? Worker { get; init; }

    /// <summary>How many times a worker has claimed the job: 1 for a run that was never interrupted, paused or handed back.</summary>
    public int Attempt { get; init; }
}

/// <summary>GET /jobs/compare: the jobs (as GET /jobs/{id} gives each), in the order asked, and the settings in which they differ.</summary>
public sealed record JobComparison(IReadOnlyList<JobView> Jobs, IReadOnlyList<SettingDifference> Differences);

/// <summary>A setting (hyperparameters.learningRate, layers.conv1.filters, …) with each job's value; null where a job lacks it.</summary>
public sealed record SettingDifference(string Path, IReadOnlyList<System.Text.Json.Nodes.JsonNode?> Values);

/// <summary>Save a validated model spec under a name.</summary>
public sealed record CreateModelRequest
{
    public required string Name { get; init; }

    public required JsonElement Spec { get; init; }
}

/// <summary>A saved model spec.</summary>
public sealed record ModelView(Guid Id, string Name, long Parameters, ModelSpec Spec, DateTime CreatedAt);

/// <summary>A saved model as listed: GET /models/{id} has its spec.</summary>
public sealed record ModelSummary(Guid Id, string Name, long Parameters, DateTime CreatedAt);
