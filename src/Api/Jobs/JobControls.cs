using System.Collections.Concurrent;
using System.Threading.Channels;
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

    /// <summary>Times the service process may die while training a job before the job is set aside as Failed.</summary>
    public int MaxCrashes { get; set; } = 2;

    /// <summary>The longest wait between checks of storage while a storage fault pauses jobs (from 1 s, doubling).</summary>
    public int StorageRetryMaxSeconds { get; set; } = 30;

    /// <summary>Queued, running and paused jobs one owner may have; a new one is refused (429) until one ends.</summary>
    public int MaxActiveJobsPerOwner { get; set; } = 20;
}

/// <summary>The queue of jobs to train, in arrival order.</summary>
public sealed class JobQueue
{
    private readonly Channel<Guid> _channel = Channel.CreateUnbounded<Guid>();

    public void Enqueue(Guid jobId) => _channel.Writer.TryWrite(jobId);

    public IAsyncEnumerable<Guid> ReadAllAsync(CancellationToken cancellationToken) => _channel.Reader.ReadAllAsync(cancellationToken);

    /// <summary>Jobs waiting for a worker.</summary>
    public int Count => _channel.Reader.Count;
}

/// <summary>
/// The per-job control registry: each job's <see cref="TrainingControl"/> (which its trainer obeys between steps) and
/// which jobs a worker has started. Commands arrive only through <see cref="JobCommands"/>, which decides if they are allowed.
/// </summary>
public sealed class JobControls
{
    private readonly ConcurrentDictionary<Guid, Entry> _jobs = new();

    public TrainingControl For(Guid jobId) => _jobs.GetOrAdd(jobId, _ => new Entry()).Control;

    /// <summary>Jobs a worker has started and not finished.</summary>
    public int Running => _jobs.Values.Count(e => e.Started);

    /// <summary>The worker takes the job, unless it was cancelled while queued.</summary>
    public bool TryStart(Guid jobId)
    {
        Entry entry = _jobs.GetOrAdd(jobId, _ => new Entry());
        lock (entry)
        {
            if (entry.Control.CancelRequested)
            {
                return false;
            }

            entry.Started = true;
            return true;
        }
    }

    /// <summary>True when the job had not started: it is cancelled without ever running.</summary>
    public bool TryCancelQueued(Guid jobId)
    {
        Entry entry = _jobs.GetOrAdd(jobId, _ => new Entry());
        lock (entry)
        {
            entry.Control.Cancel();
            return !entry.Started;
        }
    }

    public void Finished(Guid jobId)
    {
        if (_jobs.TryRemove(jobId, out Entry? entry))
        {
            entry.Control.Dispose();
        }
    }

    private sealed class Entry
    {
        public TrainingControl Control { get; } = new();

        public bool Started { get; set; }
    }
}
