using System.Linq.Expressions;
using TrainingService.Contracts.Specs;
using TrainingService.Contracts.Training;

namespace TrainingService.Api.Persistence;

/// <summary>A dataset the service keeps: its files live in the data folder under datasets/{Id}/.</summary>
public sealed class DatasetRecord
{
    public Guid Id { get; set; }

    public required string Owner { get; set; }

    public required string Name { get; set; }

    /// <summary>"shapes" (generated) or the upload's format: "idx", "csv", "cifar" or "imagefolder".</summary>
    public required string Source { get; set; }

    public int Classes { get; set; }

    /// <summary>Class names by label, when the upload named them (CIFAR's names file, image folders); null otherwise.</summary>
    public string[]? ClassNames { get; set; }

    /// <summary>Image folders: how images were fitted to the size, "crop" or "pad" (predictions fit theirs the same way); null otherwise.</summary>
    public string? Fit { get; set; }

    public int Channels { get; set; }

    public int Height { get; set; }

    public int Width { get; set; }

    public int TrainCount { get; set; }

    public int TestCount { get; set; }

    public required float[] Mean { get; set; }

    public required float[] Std { get; set; }

    public DateTime CreatedAt { get; set; }

    /// <summary>The sizes a job's plan depends on, from the record alone (no pixels loaded).</summary>
    public Training.Loop.DatasetShape Shape => new(Name, Channels, Height, Width, Classes, TrainCount, TestCount);
}

/// <summary>A named, validated model spec.</summary>
public sealed class ModelRecord
{
    public Guid Id { get; set; }

    public required string Owner { get; set; }

    public required string Name { get; set; }

    /// <summary>The spec as JSON, as sent (after validation).</summary>
    public required string Spec { get; set; }

    public long Parameters { get; set; }

    public DateTime CreatedAt { get; set; }
}

/// <summary>Which jobs hold a place: the ones a worker trains or will (what quotas and a sweep's parallelism count).</summary>
public static class ActiveJobs
{
    /// <summary>The stop code of a sweep's trial paused at asha's rung to wait for promotion: it holds no worker and no place.</summary>
    public const string WaitingAtRung = "asha-rung";

    /// <summary>Queued, running or paused, except a trial waiting at a rung (its checkpoint is all it holds).</summary>
    public static readonly Expression<Func<JobRecord, bool>> Holding =
        j => j.State == RunState.Queued || j.State == RunState.Running || (j.State == RunState.Paused && j.StopCode != WaitingAtRung);

    public static readonly Expression<Func<JobRecord, bool>> AtRung = j => j.State == RunState.Paused && j.StopCode == WaitingAtRung;
}

/// <summary>A training job: what to train and where it stands.</summary>
public sealed class JobRecord
{
    public Guid Id { get; set; }

    public required string Owner { get; set; }

    public RunState State { get; set; }

    public required ModelSpec Spec { get; set; }

    public Guid? ModelId { get; set; }

    public Guid DatasetId { get; set; }

    /// <summary>As requested; a person's changes update the learning rate, momentum and weight decay.</summary>
    public required Hyperparameters Hyperparameters { get; set; }

    public required MonitoringOptions Monitoring { get; set; }

    /// <summary>The sanity check the job runs instead of training, or null.</summary>
    public SanityOptions? Sanity { get; set; }

    /// <summary>Intra-op threads the job trains with, fixed when it is created (results depend on it).</summary>
    public int Threads { get; set; } = 1;

    public long TotalSteps { get; set; }

    public long Step { get; set; }

    public int Epoch { get; set; }

    public double? LatestLoss { get; set; }

    public double? BestValidationAccuracy { get; set; }

    public double? SamplesPerSecond { get; set; }

    /// <summary>The last event's seq persisted.</summary>
    public long LastSeq { get; set; }

    /// <summary>
    /// Bytes of the job's stored events: each one's JSON and <see cref="Training.Loop.HistoryEstimate.RowBytes"/>, and a
    /// step event's figures (<see cref="Training.Loop.HistoryEstimate.StepFiguresBytes"/>): HistoryThinning.Cost.
    /// </summary>
    public long HistoryBytes { get; set; }

    /// <summary>
    /// Layer statistics up to this seq are thinned (0: none ever were): of those, only the first full layers event in
    /// each block of <see cref="HistoryBlock"/> seqs is kept (HistoryThinning).
    /// </summary>
    public long HistoryThinnedSeq { get; set; }

    public long HistoryBlock { get; set; }

    public string? Error { get; set; }

    /// <summary>
    /// Runs started by a process that never ended them: counted before a run starts, cleared when it ends in order; a
    /// job still Running when the service starts was being trained by a process that died (Jobs:MaxCrashes).
    /// </summary>
    public int CrashCount { get; set; }

    /// <summary>
    /// The fencing token: one more each time a worker claims the job. Every event and checkpoint a run writes is
    /// checked against it, so a worker that lost its lease can write nothing (JobDispatch).
    /// </summary>
    public int Attempt { get; set; }

    /// <summary>The node whose worker holds the job (null: no one; the job waits to be claimed, or has ended).</summary>
    public string? LeaseOwner { get; set; }

    /// <summary>When the holder's lease runs out unless renewed; after it, any worker may claim the job.</summary>
    public DateTime? LeaseExpiresAt { get; set; }

    /// <summary>The sweep the job is a trial of, and which trial (both null for other jobs).</summary>
    public Guid? SweepId { get; set; }

    public int? SweepTrial { get; set; }

    /// <summary>Why a trial stopped before its end: asha-cut, diverged or sweep-cancelled; null otherwise.</summary>
    public string? StopCode { get; set; }

    /// <summary>A trial's best full-epoch value of its sweep's metric, and the epoch of it.</summary>
    public double? SweepValue { get; set; }

    public int? SweepValueEpoch { get; set; }

    public DateTime CreatedAt { get; set; }

    public DateTime? StartedAt { get; set; }

    public DateTime? FinishedAt { get; set; }
}

/// <summary>One event of a job's history, as streamed: (JobId, Seq) is unique.</summary>
public sealed class JobEventRecord
{
    public Guid JobId { get; set; }

    public long Seq { get; set; }

    public required string Kind { get; set; }

    /// <summary>The event as the stream's camelCase JSON.</summary>
    public required string Json { get; set; }

    /// <summary>UTF-8 bytes of <see cref="Json"/>.</summary>
    public int Bytes { get; set; }

    // A step event's figures, which the database reads out of Json as it stores the row (generated, stored columns:
    // EventSql.StepColumns), so charts of long runs read them without parsing 20,000 JSON texts; null for other kinds.
    // The figures are the JSON text as stored (a number, or "NaN" with its quotes), so they read back bit for bit.

    /// <summary>A step event's step.</summary>
    public long? Step { get; private set; }

    /// <summary>A step event's epoch.</summary>
    public int? Epoch { get; private set; }

    /// <summary>A step event's loss as JSON text.</summary>
    public string? Loss { get; private set; }

    /// <summary>A step event's learning rate as JSON text.</summary>
    public string? LearningRate { get; private set; }

    /// <summary>A step event's images per second as JSON text.</summary>
    public string? SamplesPerSecond { get; private set; }
}

/// <summary>A person (or a program) that owns records: records' Owner is a user's Id.</summary>
public sealed class UserRecord
{
    /// <summary>"local" for the first admin (who owned everything before there were accounts); otherwise a random id.</summary>
    public required string Id { get; set; }

    public required string Name { get; set; }

    /// <summary>"admin" or "user".</summary>
    public required string Role { get; set; }

    public DateTime CreatedAt { get; set; }

    /// <summary>Set when the user is removed: their keys stop working; their records stay (an admin sees them).</summary>
    public DateTime? DisabledAt { get; set; }
}

/// <summary>An API key: only its SHA-256 is kept, so the key itself is shown once, when it is created.</summary>
public sealed class ApiKeyRecord
{
    public Guid Id { get; set; }

    public required string UserId { get; set; }

    public required string Name { get; set; }

    /// <summary>The key's first characters ("tsk_AbC1"), to tell keys apart in a list.</summary>
    public required string Prefix { get; set; }

    /// <summary>SHA-256 of the key, hex; unique.</summary>
    public required string Hash { get; set; }

    public DateTime CreatedAt { get; set; }

    /// <summary>Updated at most once a minute per key, so reads do not each cost a write.</summary>
    public DateTime? LastUsedAt { get; set; }

    public DateTime? RevokedAt { get; set; }
}

/// <summary>A read-only, expiring link to watch one job; the token in the link names this record, signed. Revoking deletes it.</summary>
public sealed class ShareLinkRecord
{
    public Guid Id { get; set; }

    public Guid JobId { get; set; }

    /// <summary>Who created it (the job's owner or an admin).</summary>
    public required string CreatedBy { get; set; }

    public DateTime CreatedAt { get; set; }

    public DateTime ExpiresAt { get; set; }
}

/// <summary>
/// A person's command to a job, waiting for the worker that runs it (on whichever node): pause, cancel, finish,
/// change, snapshot. The worker holding the job's lease reads and deletes them; a job claimed later reads those left.
/// </summary>
public sealed class JobCommandRecord
{
    public long Id { get; set; }

    public Guid JobId { get; set; }

    public JobCommandKind Kind { get; set; }

    /// <summary>A <see cref="JobCommandKind.Change"/>'s values as JSON; null for the others.</summary>
    public string? Payload { get; set; }

    public DateTime CreatedAt { get; set; }
}

public enum JobCommandKind
{
    Pause,
    Cancel,
    Finish,
    Change,
    Snapshot,
}

/// <summary>
/// A sweep: its settings and every trial's values, fixed when it was created; its trials are jobs (JobRecord.SweepId).
/// Any node's SweepController starts the next trial while fewer than Parallelism are active.
/// </summary>
public sealed class SweepRecord
{
    public Guid Id { get; set; }

    public required string Owner { get; set; }

    public string? Name { get; set; }

    /// <summary>Running, Succeeded, Failed or Cancelled.</summary>
    public RunState State { get; set; }

    public required Contracts.Sweeps.SweepSettings Settings { get; set; }

    /// <summary>Each trial's settings by path, as a JSON array of objects, in trial order.</summary>
    public required string TrialParams { get; set; }

    public Guid DatasetId { get; set; }

    public int Trials { get; set; }

    public int Parallelism { get; set; }

    /// <summary>How many trials have a job: the next trial to start is this one.</summary>
    public int TrialsCreated { get; set; }

    /// <summary>Why no trial can start now (the owner's active-job quota); null when none is waiting for that.</summary>
    public string? Waiting { get; set; }

    public string? Error { get; set; }

    /// <summary>The learning-rate range test run before the trials (when the settings ask for one), and its suggestion once it has passed.</summary>
    public Guid? RangeTestJobId { get; set; }

    public double? SuggestedLearningRate { get; set; }

    public DateTime CreatedAt { get; set; }

    public DateTime? FinishedAt { get; set; }
}

/// <summary>One trial's report at an asha rung and the decision: the audit of every cut, and what a replayed run is told again.</summary>
public sealed class SweepRungRecord
{
    public Guid SweepId { get; set; }

    /// <summary>The rung's epoch.</summary>
    public int Epoch { get; set; }

    public int Trial { get; set; }

    public double Value { get; set; }

    /// <summary>The cut it was compared with; null when it was the first to report at this rung.</summary>
    public double? Cutoff { get; set; }

    /// <summary>How many trials had reported at this rung before it.</summary>
    public int Earlier { get; set; }

    /// <summary>Went on (stopping form) or was promoted (promotion form).</summary>
    public bool Continued { get; set; }

    /// <summary>Promotion form: waiting at the rung to be promoted or, at the sweep's end, cut.</summary>
    public bool Waiting { get; set; }

    public DateTime ReportedAt { get; set; }
}
