using System.Collections.Concurrent;
using System.Data.Common;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.Options;
using TrainingService.Api.Infrastructure;
using TrainingService.Api.Jobs;
using TrainingService.Api.Persistence;
using TrainingService.Contracts.Streaming;
using TrainingService.Contracts.Training;

namespace TrainingService.Api.Streaming;

/// <summary>
/// Takes every job's events from the training threads without ever blocking them, persists them in batches
/// (about ten a second) together with each job's summary, then hands them to the live stream. What a dashboard
/// receives live is therefore always already in the history.
/// </summary>
public sealed class EventPump(
    IServiceScopeFactory scopes, LiveEvents live, StorageFaults faults, TrainingMetrics metrics, IOptions<JobOptions> jobOptions,
    IOptions<StorageOptions> storage, IConfiguration configuration, ILogger<EventPump> logger) : BackgroundService
{
    private readonly int _writeTimeoutSeconds = storage.Value.EventWriteTimeoutSeconds;

    private readonly HistoryThinning _thinning = new(jobOptions.Value.MaxHistoryBytesPerJob);

    // Jobs whose history thinning just started: the alert saying so, taken by the job's writer, which numbers it.
    private readonly ConcurrentDictionary<Guid, StreamEvent> _notices = new();

    // How often events are persisted and sent: about ten frames a second by default (Streaming:FrameMilliseconds).
    private readonly TimeSpan _frame = TimeSpan.FromMilliseconds(Math.Clamp(configuration.GetValue("Streaming:FrameMilliseconds", 100), 10, 5000));
    private const int MaxBatch = 5000;

    private TaskCompletionSource _flushRequested = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Jobs with an event that could not be persisted (a storage fault, or published after the pump stopped), and why.
    // Their later events are dropped, never stored past the hole, and their flushes fail, so no checkpoint covers
    // the hole; each is forgotten when the job's next run starts (Forgive), so one fault is never remembered for good.
    private readonly ConcurrentDictionary<Guid, Exception> _broken = new();

    // Completed and replaced each time a job is marked as having lost events: a job's flush waits on it beside the
    // pump's flush, so a run stops as soon as a failed write touched it, not after every batch queued behind it failed.
    private TaskCompletionSource _lostChanged = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private readonly Channel<Item> _channel = Channel.CreateUnbounded<Item>(new UnboundedChannelOptions { SingleReader = true });

    /// <summary>
    /// Queue an event of a job, numbered by its <see cref="JobEventWriter"/>; never blocks. With an
    /// <paramref name="attempt"/> (the writer's claim), it is stored only while the job's Attempt is still that one.
    /// </summary>
    public void Publish(Guid jobId, StreamEvent e, int? attempt = null)
    {
        if (!_channel.Writer.TryWrite(new Item(jobId, e, null, Attempt: attempt)))
        {
            MarkLost(jobId, new InvalidOperationException($"event {e.Seq} of job {jobId} was published after the event pump stopped"));
        }
    }

    /// <summary>Queue: forget the job's persisted events after <paramref name="seq"/> (a run restarting from an older checkpoint replays them).</summary>
    public void TruncateAfter(Guid jobId, long seq, int? attempt = null) => _channel.Writer.TryWrite(new Item(jobId, null, seq, Attempt: attempt));

    /// <summary>Why some of the job's events were not persisted (its run must stop), or null while none was lost.</summary>
    public EventsNotPersistedException? Lost(Guid jobId) =>
        _broken.TryGetValue(jobId, out Exception? cause) ? new EventsNotPersistedException(cause) : null;

    /// <summary>The alert that the job's history is being thinned, once, when thinning starts; null otherwise.</summary>
    public StreamEvent? TakeNotice(Guid jobId) => _notices.TryRemove(jobId, out StreamEvent? notice) ? notice : null;

    /// <summary>Completes the next time any job is marked as having lost events; read it before checking <see cref="Lost"/>.</summary>
    public Task LostChanged => Volatile.Read(ref _lostChanged).Task;

    private void MarkLost(Guid jobId, Exception cause)
    {
        if (_broken.TryAdd(jobId, cause))
        {
            Interlocked.Exchange(ref _lostChanged, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        }
    }

    /// <summary>The job's lease went to another worker: nothing more of this node's run is stored, and its flushes fail.</summary>
    public void Fence(Guid jobId, LeaseLostException cause) => MarkLost(jobId, cause);

    /// <summary>
    /// A new run of the job numbers on from the history as persisted: stop dropping its events. Call once the job's
    /// previous run has ended and a flush has passed its events.
    /// </summary>
    public void Forgive(Guid jobId) => _broken.TryRemove(jobId, out _);

    /// <summary>
    /// Completes once everything queued before the call is persisted and handed on; fails if that write failed. Each
    /// flush stands alone: a fault fails the flushes it met, not later ones.
    /// </summary>
    public Task FlushAsync()
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_channel.Writer.TryWrite(new Item(Guid.Empty, null, null, done)))
        {
            return Task.CompletedTask; // stopped: everything queued was handled on the way out
        }

        _flushRequested.TrySetResult();
        return done.Task;
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        _channel.Writer.TryComplete();
        await base.StopAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var batch = new List<Item>(MaxBatch);
        // Runs until the channel completes (StopAsync), so events queued during shutdown are still persisted.
        while (await _channel.Reader.WaitToReadAsync(CancellationToken.None))
        {
            while (batch.Count < MaxBatch && _channel.Reader.TryRead(out Item? item))
            {
                batch.Add(item);
            }

            Exception? failure = null;
            try
            {
                await PersistAsync(batch);
            }
            catch (Exception ex)
            {
                failure = ex;
                string fault = StorageFault.Describe(ex) ?? $"job events could not be persisted ({ex.GetType().Name})";
                logger.LogError(ex, "Persisting {Count} job events failed: {Fault}", batch.Count, fault);
                faults.Report(StorageFaults.Database, fault);
                foreach (Item item in batch.Where(i => i.JobId != Guid.Empty))
                {
                    MarkLost(item.JobId, ex);
                }
            }

            foreach (Item item in batch)
            {
                if (failure is null)
                {
                    item.Flushed?.TrySetResult();
                }
                else
                {
                    item.Flushed?.TrySetException(new EventsNotPersistedException(failure));
                }
            }

            batch.Clear();
            if (!stoppingToken.IsCancellationRequested)
            {
                // About ten frames a second, unless someone waits for a flush (a checkpoint): then at once.
                Task flush = Volatile.Read(ref _flushRequested).Task;
                await Task.WhenAny(Task.Delay(_frame, CancellationToken.None), flush);
                if (flush.IsCompleted)
                {
                    Volatile.Write(ref _flushRequested, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
                }
            }
        }
    }

    private async Task PersistAsync(List<Item> batch)
    {
        if (batch.TrueForAll(i => i.Event is null && i.TruncateAfter is null))
        {
            return;
        }

        await using AsyncServiceScope scope = scopes.CreateAsyncScope();
        TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
        db.Database.SetCommandTimeout(_writeTimeoutSeconds); // a lock held longer fails the batch: its jobs pause
        var jobIds = batch.Where(i => i.JobId != Guid.Empty).Select(i => i.JobId).Distinct().ToList();
        EventSql sql = db.Sql;
        sql.PrepareWrite(db.Database.GetDbConnection(), _writeTimeoutSeconds);
        await using IDbContextTransaction transaction = await db.Database.BeginTransactionAsync();
        DbTransaction dbTransaction = transaction.GetDbTransaction();
        // The fence: the jobs' rows are read inside the transaction, locked first (PostgreSQL; SQLite's write lock is
        // the whole file), so no claim changes a job's Attempt between the check below and the commit.
        await db.Jobs.Where(j => jobIds.Contains(j.Id)).ExecuteUpdateAsync(s => s.SetProperty(j => j.Attempt, j => j.Attempt));
        Dictionary<Guid, JobRecord> jobs = await db.Jobs.Where(j => jobIds.Contains(j.Id)).ToDictionaryAsync(j => j.Id);
        var delivered = new Dictionary<Guid, (List<StreamEvent> Events, List<int> JsonBytes)>();
        var truncated = new List<(Guid JobId, long After)>();
        var rows = new List<EventRow>();
        foreach (Item item in batch)
        {
            if (!jobs.TryGetValue(item.JobId, out JobRecord? job))
            {
                continue;
            }

            if (item.Attempt is int attempt && attempt != job.Attempt)
            {
                // Written by a run whose worker lost the job's lease: another run owns the history now.
                MarkLost(item.JobId, new LeaseLostException(item.JobId, attempt, job.Attempt));
                continue;
            }

            if (item.TruncateAfter is long after)
            {
                if (delivered.TryGetValue(item.JobId, out var pending))
                {
                    int keep = pending.Events.FindIndex(e => e.Seq > after) is var i and >= 0 ? i : pending.Events.Count;
                    pending.Events.RemoveRange(keep, pending.Events.Count - keep);
                    pending.JsonBytes.RemoveRange(keep, pending.JsonBytes.Count - keep);
                }

                job.HistoryBytes -= rows.Where(r => r.JobId == item.JobId && r.Seq > after).Sum(r => HistoryThinning.Cost(r.Kind, r.Bytes)); // never inserted
                rows.RemoveAll(r => r.JobId == item.JobId && r.Seq > after);
                await _thinning.TruncateAsync(sql, dbTransaction, job, after);
                job.LastSeq = Math.Min(job.LastSeq, after);
                truncated.Add((item.JobId, after));
                continue;
            }

            StreamEvent e = item.Event!;
            if (_broken.ContainsKey(item.JobId))
            {
                continue; // after a lost event nothing of the job is stored: the history never has a hole
            }

            if (e.Seq <= job.LastSeq)
            {
                continue; // already persisted (a replay after a crash); never stored twice
            }

            string json = JsonSerializer.Serialize(e, StreamJson.Options);
            int bytes = Encoding.UTF8.GetByteCount(json);
            rows.Add(new EventRow(item.JobId, e.Seq, e.Kind, json, bytes));
            job.HistoryBytes += HistoryThinning.Cost(e.Kind, bytes);
            Summarise(job, e);
            if (!delivered.TryGetValue(item.JobId, out var sent))
            {
                delivered[item.JobId] = sent = ([], []);
            }

            sent.Events.Add(e);
            sent.JsonBytes.Add(bytes);
        }

        await sql.InsertAsync(dbTransaction, rows); // not through EF change tracking: this runs ten times a second beside training
        var thinningStarted = new List<JobRecord>();
        foreach (Guid jobId in delivered.Keys)
        {
            if (await _thinning.ThinAsync(sql, dbTransaction, jobs[jobId]))
            {
                thinningStarted.Add(jobs[jobId]);
            }
        }

        await db.SaveChangesAsync();
        await transaction.CommitAsync();
        faults.Clear(StorageFaults.Database);

        foreach ((Guid jobId, long after) in truncated)
        {
            live.Truncated(jobId, after);
        }

        foreach ((Guid jobId, (List<StreamEvent> events, List<int> jsonBytes)) in delivered)
        {
            live.Persisted(jobId, events, jsonBytes);
            metrics.Persisted(jobId, events);
        }

        foreach (JobRecord job in thinningStarted)
        {
            _notices[job.Id] = _thinning.Notice(job);
        }

        foreach (JobRecord job in jobs.Values.Where(j => j.State.IsEnded()))
        {
            _thinning.Ended(job.Id);
            _notices.TryRemove(job.Id, out _);
        }
    }

    private static void Summarise(JobRecord job, StreamEvent e)
    {
        job.LastSeq = e.Seq;
        switch (e.Kind)
        {
            case "step":
                job.Step = e.Step!.Value;
                job.Epoch = e.Epoch!.Value;
                job.LatestLoss = double.IsFinite(e.Loss!.Value) ? e.Loss : null;
                job.SamplesPerSecond = e.SamplesPerSecond;
                break;
            case "epoch":
                if (e.ValidationAccuracy is double accuracy && (job.BestValidationAccuracy is null || accuracy > job.BestValidationAccuracy))
                {
                    job.BestValidationAccuracy = accuracy;
                }

                break;
            case "state":
                job.State = e.State!.Value;
                if (e.State == RunState.Running)
                {
                    job.StartedAt ??= e.Time;
                    job.Error = null;
                }

                if (e.State.Value.IsEnded())
                {
                    job.FinishedAt = e.Time;
                }

                if (e.State == RunState.Failed || StorageFault.IsPauseReason(e.Reason) || (e.State is RunState.Cancelled or RunState.Paused && e.Code is not null))
                {
                    job.Error = e.Reason; // a sweep's stop or wait keeps its reason too (asha's cut or rung, the divergence)
                }

                if (e.Code is not null)
                {
                    job.StopCode = e.Code;
                }

                break;
        }
    }

    private sealed record Item(Guid JobId, StreamEvent? Event, long? TruncateAfter, TaskCompletionSource? Flushed = null, int? Attempt = null);
}
