using System.Collections.Concurrent;
using TrainingService.Training.Loop;

namespace TrainingService.Api.Jobs;

/// <summary>Worker settings (configuration section "Jobs").</summary>
public sealed class JobOptions
{
    /// <summary>Jobs trained at once, each on its own thread.</summary>
    public int Concurrency { get; set; } = 1;

    /// <summary>Intra-op threads of each new job; null: one per core divided by the concurrency.</summary>
    public int? ThreadsPerJob { get; set; }

    /// <summary>What a job created now trains with, whatever runs beside it later.</summary>
    public int JobThreads => ThreadsPerJob ?? Math.Max(1, Environment.ProcessorCount / Math.Max(1, Concurrency));

    /// <summary>A checkpoint every this many steps (besides epoch ends, pauses and shutdown), so a crash loses little.</summary>
    public int CheckpointEverySteps { get; set; } = 500;

    /// <summary>Admission: a job whose training step needs more (TrainingPlan.EstimatedMemoryBytes) is refused.</summary>
    public long MemoryBudgetBytes { get; set; } = 4L << 30;

    /// <summary>
    /// Event history a job may keep: while it runs, its old layer statistics are thinned to stay under it
    /// (HistoryThinning); at admission, a job whose run would keep more than half of it even thinned is refused.
    /// </summary>
    public long MaxHistoryBytesPerJob { get; set; } = 1L << 30;

    /// <summary>Cap on the reason given with a change of hyperparameters, which the job's history keeps.</summary>
    public int MaxReasonLength { get; set; } = 200;

    /// <summary>
    /// Changes of hyperparameters that may wait for a job's run (while it is paused or queued, or its worker is gone);
    /// one more is refused (429). Other commands wait at most once each.
    /// </summary>
    public int MaxPendingCommands { get; set; } = 20;

    /// <summary>Times the service process may die while training a job before the job is set aside as Failed.</summary>
    public int MaxCrashes { get; set; } = 2;

    /// <summary>The longest wait between checks of storage while a storage fault pauses jobs (from 1 s, doubling).</summary>
    public int StorageRetryMaxSeconds { get; set; } = 30;

    /// <summary>Queued, running and paused jobs one owner may have; a new one is refused (429) until one ends.</summary>
    public int MaxActiveJobsPerOwner { get; set; } = 20;

    /// <summary>
    /// Seconds a node waits, once it trains nothing, before giving back the memory its runs left (a compacting
    /// collection and a malloc_trim); 0: never.
    /// </summary>
    public int ReleaseMemoryWhenIdleSeconds { get; set; } = 5;

    /// <summary>
    /// A worker's hold on a job lasts this long unless renewed (every third of it): a worker that dies loses its jobs
    /// within this time, and another worker resumes them from their checkpoints.
    /// </summary>
    public int LeaseSeconds { get; set; } = 30;

    /// <summary>How often an idle worker looks for a job (a job created on the same node wakes it at once).</summary>
    public int ClaimPollMilliseconds { get; set; } = 1000;

    /// <summary>How often a worker reads the commands (pause, cancel, steering) for the jobs it runs.</summary>
    public int CommandPollMilliseconds { get; set; } = 250;
}

/// <summary>
/// The runs of this node's worker: each job's <see cref="TrainingControl"/> (which its trainer obeys between steps)
/// and the claim it runs under. Commands reach them from the job's command table (<see cref="JobDispatch"/>), wherever
/// they were given.
/// </summary>
public sealed class JobControls
{
    private readonly ConcurrentDictionary<Guid, Run> _runs = new();

    /// <summary>Jobs this node is training.</summary>
    public int Running => _runs.Count;

    /// <summary>The claims of this node's runs.</summary>
    public IReadOnlyList<JobClaim> Claims => [.. _runs.Values.Select(r => r.Claim)];

    /// <summary>A run starts under <paramref name="claim"/>; null when this node already runs the job (an older run not yet stopped).</summary>
    public TrainingControl? TryStart(JobClaim claim)
    {
        var run = new Run(claim, new TrainingControl { PauseEndsRun = true });
        if (_runs.TryAdd(claim.JobId, run))
        {
            return run.Control;
        }

        run.Control.Dispose();
        return null;
    }

    public TrainingControl? ControlOf(Guid jobId) => _runs.TryGetValue(jobId, out Run? run) ? run.Control : null;

    public void Finished(Guid jobId)
    {
        if (_runs.TryRemove(jobId, out Run? run))
        {
            run.Control.Dispose();
        }
    }

    private sealed record Run(JobClaim Claim, TrainingControl Control);
}
