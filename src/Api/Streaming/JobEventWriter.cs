using TrainingService.Api.Jobs;
using TrainingService.Api.Persistence;
using TrainingService.Contracts.Streaming;
using TrainingService.Contracts.Training;
using TrainingService.Training.Loop;

namespace TrainingService.Api.Streaming;

/// <summary>
/// One job's events on their way to the pump: the only place a seq is assigned. The worker opens one per run (it is
/// the trainer's sink) with its claim's <paramref name="attempt"/>, so nothing it writes is stored once another worker
/// holds the job; <paramref name="holdsLease"/> is asked before a checkpoint or final model replaces the last one. A
/// request opens one for a job that no worker holds (a queued job cancelled before it started).
/// </summary>
public sealed class JobEventWriter(EventPump pump, Guid jobId, long lastSeq, int? attempt = null, Func<bool>? holdsLease = null) : ITrainingSink
{
    private readonly Lock _gate = new();

    /// <summary>The seq of the last event written.</summary>
    public long LastSeq
    {
        get
        {
            lock (_gate)
            {
                return lastSeq;
            }
        }
    }

    /// <summary>Numbers and queues an event; throws once an earlier event of the job was lost, so its run stops.</summary>
    public void Publish(TrainingEvent trainingEvent)
    {
        lock (_gate)
        {
            if (pump.Lost(jobId) is { } lost)
            {
                throw lost;
            }

            StreamEvent stream = trainingEvent.ToStream() with { Seq = ++lastSeq, Time = StoredTime.UtcNow };
            pump.Publish(jobId, trainingEvent is StateEvent ? stream with { Attempt = attempt } : stream, attempt);
            // Not after a state event: a pause's checkpoint counts exactly one event after it (Trainer.CheckpointThen).
            if (trainingEvent is not StateEvent && pump.TakeNotice(jobId) is { } notice)
            {
                pump.Publish(jobId, notice with { Seq = ++lastSeq, Time = StoredTime.UtcNow }, attempt); // the job's history is being thinned
            }
        }
    }

    /// <summary>Forget the persisted events after <paramref name="seq"/> and number on from it (a run resumed from an older checkpoint).</summary>
    public void RestartAfter(long seq)
    {
        lock (_gate)
        {
            pump.TruncateAfter(jobId, seq, attempt);
            lastSeq = seq;
        }
    }

    /// <summary>
    /// Completes once every event written so far is persisted; fails as soon as any of this job's is lost, without
    /// waiting for the batches queued behind the failed one (each may wait out the database's lock timeout).
    /// </summary>
    public async Task FlushAsync()
    {
        Task flushed = pump.FlushAsync();
        while (true)
        {
            Task lostChanged = pump.LostChanged;
            if (pump.Lost(jobId) is { } lost)
            {
                throw lost;
            }

            if (await Task.WhenAny(flushed, lostChanged) == flushed)
            {
                await flushed;
                if (pump.Lost(jobId) is { } lostMeanwhile)
                {
                    throw lostMeanwhile;
                }

                return;
            }
        }
    }

    // Called by the trainer on the job's own thread, never the thread pool: blocking here is safe, and it lasts one database write.
    long ITrainingSink.Flush()
    {
        long seq = LastSeq;
        FlushAsync().GetAwaiter().GetResult();
        return seq;
    }

    void ITrainingSink.BeforeReplacingFiles()
    {
        if (holdsLease is not null && !holdsLease())
        {
            throw new LeaseLostException(jobId, attempt ?? 0);
        }
    }
}
