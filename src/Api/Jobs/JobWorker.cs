using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using TrainingService.Api.Datasets;
using TrainingService.Api.Persistence;
using TrainingService.Api.Streaming;
using TrainingService.Contracts.Training;
using TrainingService.Training.Data;
using TrainingService.Training.Loop;
using TrainingService.Training.Specs;

namespace TrainingService.Api.Jobs;

/// <summary>
/// Trains queued jobs, <see cref="JobOptions.Concurrency"/> at a time, each on a thread of its own. On start it
/// re-queues what an earlier process left unfinished (setting aside a job that crashed it <see cref="JobOptions.MaxCrashes"/>
/// times); on shutdown running jobs write a checkpoint and go back to Queued. A storage fault pauses the job it meets,
/// which runs again from its checkpoint once storage answers; nothing a job's storage throws reaches the host.
/// </summary>
public sealed class JobWorker(
    JobQueue queue,
    JobControls controls,
    EventPump pump,
    DatasetStore datasets,
    StorageFaults faults,
    IServiceScopeFactory scopes,
    IOptions<JobOptions> options,
    IOptions<StorageOptions> storage,
    IOptions<SpecLimits> limits,
    ILogger<JobWorker> logger) : BackgroundService
{
    private const string Unfinished = "unfinished jobs";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var backoff = new Backoff(options.Value.StorageRetryMaxSeconds);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await RequeueUnfinishedAsync(stoppingToken);
                faults.Clear(Unfinished);
                break;
            }
            catch (Exception ex) when (StorageFault.Describe(ex) is { } fault && !stoppingToken.IsCancellationRequested)
            {
                // The API serves meanwhile; the jobs wait for storage like any job paused by a fault.
                faults.Report(Unfinished, $"cannot be re-queued: {fault}; retrying");
                logger.LogWarning(ex, "Re-queueing unfinished jobs met a storage fault: {Fault}", fault);
                try
                {
                    await Task.Delay(backoff.Next(), stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }

        await Task.WhenAll(Enumerable.Range(0, Math.Max(1, options.Value.Concurrency)).Select(_ => RunLoopAsync(stoppingToken)));
    }

    private async Task RequeueUnfinishedAsync(CancellationToken cancellationToken)
    {
        await using AsyncServiceScope scope = scopes.CreateAsyncScope();
        TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
        // Only a job found Running was being trained when its process died; the others were stopped in order.
        await db.Jobs.Where(j => j.State != RunState.Running && j.CrashCount != 0)
            .ExecuteUpdateAsync(s => s.SetProperty(j => j.CrashCount, 0), cancellationToken);
        var unfinished = await db.Jobs.AsNoTracking()
            .Where(j => j.State == RunState.Queued || j.State == RunState.Running || j.State == RunState.Paused)
            .OrderBy(j => j.CreatedAt).Select(j => new { j.Id, j.State, j.CrashCount, j.LastSeq, j.Error }).ToListAsync(cancellationToken);
        foreach (var job in unfinished)
        {
            if (job.State == RunState.Running && job.CrashCount >= options.Value.MaxCrashes)
            {
                await SetAsideAsync(db, job.Id, job.CrashCount, job.LastSeq, cancellationToken);
                continue;
            }

            if (job.State == RunState.Paused && !StorageFault.IsPauseReason(job.Error))
            {
                controls.For(job.Id).Pause(); // still paused after a restart, until a person resumes it
            }

            logger.LogInformation("Re-queued job {JobId}, found {State}", job.Id, job.State);
            queue.Enqueue(job.Id);
        }
    }

    /// <summary>A job whose runs keep killing the process: Failed with the reason, never run again.</summary>
    private async Task SetAsideAsync(TrainingDb db, Guid id, int crashes, long lastSeq, CancellationToken cancellationToken)
    {
        string reason = $"the service process stopped {crashes} times while training this job; set aside so it does not crash the service again";
        // The record first: it is what a restart reads, even if the event's write fails.
        await db.Jobs.Where(j => j.Id == id).ExecuteUpdateAsync(s => s
            .SetProperty(j => j.State, RunState.Failed).SetProperty(j => j.Error, reason).SetProperty(j => j.FinishedAt, DateTime.UtcNow), cancellationToken);
        new JobEventWriter(pump, id, lastSeq).Publish(new StateEvent { State = RunState.Failed, Reason = reason });
        logger.LogWarning("Job {JobId} set aside: the process died {Crashes} times while training it", id, crashes);
    }

    private async Task RunLoopAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (Guid jobId in queue.ReadAllAsync(stoppingToken))
            {
                using (logger.BeginScope(new Dictionary<string, object> { ["JobId"] = jobId }))
                {
                    try
                    {
                        await RunJobAsync(jobId, stoppingToken);
                    }
                    catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
                    {
                        logger.LogError(ex, "Job {JobId}: the worker could not run it", jobId); // one job's trouble, not the host's
                    }
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>Runs the job until it ends; a storage fault pauses it until storage answers, then it runs again from its checkpoint.</summary>
    private async Task RunJobAsync(Guid jobId, CancellationToken stoppingToken)
    {
        if (!controls.TryStart(jobId))
        {
            controls.Finished(jobId);
            return;
        }

        using IDisposable _ = Serilog.Context.LogContext.PushProperty("JobId", jobId); // on every line logged for the job, its thread's too
        string part = StorageFaults.JobPart(jobId);
        var backoff = new Backoff(options.Value.StorageRetryMaxSeconds);
        bool counted = false;
        bool faulted = false;
        try
        {
            while (true)
            {
                long started = System.Diagnostics.Stopwatch.GetTimestamp();
                try
                {
                    (JobRecord? job, DatasetRecord? dataset) = await LoadAsync(jobId, stoppingToken);
                    if (job is null || job.State.IsEnded())
                    {
                        return;
                    }

                    if (!counted)
                    {
                        await CountRunAsync(jobId, 1, stoppingToken); // before the run: a crash during it is then on record
                        counted = true;
                    }

                    faulted = false;
                    faults.Clear(part);
                    await RunOnceAsync(job, dataset, stoppingToken);
                    return;
                }
                catch (Exception ex) when (StorageFault.Describe(ex) is { } fault)
                {
                    faulted = true;
                    string reason = StorageFault.PauseReason(fault);
                    faults.Report(part, reason);
                    if (stoppingToken.IsCancellationRequested)
                    {
                        logger.LogWarning(ex, "Job {JobId} met a storage fault as the service stops ({Fault}); it resumes on the next start", jobId, fault);
                        return;
                    }

                    if (System.Diagnostics.Stopwatch.GetElapsedTime(started) > backoff.Longest)
                    {
                        backoff.Reset(); // a new fault, not the same one again
                    }

                    logger.LogWarning(ex, "Job {JobId} paused: storage fault: {Fault}", jobId, fault);
                    await SettleAsync(jobId);
                    await TryAnnouncePauseAsync(jobId, reason, stoppingToken);
                    if (!await WaitForStorageAsync(jobId, backoff, stoppingToken))
                    {
                        return;
                    }

                    await SettleAsync(jobId);
                    logger.LogInformation("Job {JobId}: storage answers again; the job resumes from its checkpoint", jobId);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            if (!faulted)
            {
                // Flushed before the job leaves the registry, so no command sees it Running in the database once it has ended.
                try
                {
                    await pump.FlushAsync();
                    if (counted)
                    {
                        await CountRunAsync(jobId, 0, CancellationToken.None); // ended in order: not a crash
                    }
                }
                catch (Exception ex)
                {
                    logger.LogError(ex, "Job {JobId}: its last events or its run count could not be persisted", jobId);
                }
            }

            faults.Clear(part);
            controls.Finished(jobId);
        }
    }

    private async Task<(JobRecord? Job, DatasetRecord? Dataset)> LoadAsync(Guid jobId, CancellationToken cancellationToken)
    {
        await using AsyncServiceScope scope = scopes.CreateAsyncScope();
        TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
        JobRecord? job = await db.Jobs.AsNoTracking().FirstOrDefaultAsync(j => j.Id == jobId, cancellationToken);
        DatasetRecord? dataset = job is null ? null : await db.Datasets.AsNoTracking().FirstOrDefaultAsync(d => d.Id == job.DatasetId, cancellationToken);
        return (job, dataset);
    }

    /// <summary>1: a run starts (one more unended run on record); 0: it ended in order.</summary>
    private async Task CountRunAsync(Guid jobId, int delta, CancellationToken cancellationToken)
    {
        await using AsyncServiceScope scope = scopes.CreateAsyncScope();
        TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
        await (delta == 0
            ? db.Jobs.Where(j => j.Id == jobId).ExecuteUpdateAsync(s => s.SetProperty(j => j.CrashCount, 0), cancellationToken)
            : db.Jobs.Where(j => j.Id == jobId).ExecuteUpdateAsync(s => s.SetProperty(j => j.CrashCount, j => j.CrashCount + delta), cancellationToken));
    }

    /// <summary>One run on the job's own thread; a failure that is not a storage fault ends the job Failed.</summary>
    private async Task RunOnceAsync(JobRecord job, DatasetRecord? datasetRecord, CancellationToken stoppingToken)
    {
        var events = new JobEventWriter(pump, job.Id, job.LastSeq);
        var done = new TaskCompletionSource<TrainingOutcome>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                done.SetResult(Train(job, datasetRecord, events, stoppingToken));
            }
            catch (Exception ex)
            {
                done.SetException(ex);
            }
        })
        {
            IsBackground = true,
            Name = $"job {job.Id:N}",
        };
        logger.LogInformation("Job {JobId} starting", job.Id);
        thread.Start();
        try
        {
            TrainingOutcome outcome = await done.Task;
            logger.LogInformation("Job {JobId} ended: {Outcome}", job.Id, outcome);
        }
        catch (Exception ex) when (StorageFault.Describe(ex) is null)
        {
            logger.LogError(ex, "Job {JobId} failed", job.Id);
            events.Publish(new StateEvent { State = RunState.Failed, Reason = FailureReason(ex, storage.Value.FullDataFolder) });
        }
    }

    /// <summary>Lets every event of the ended run reach the pump (those after a loss are dropped), then lets the job's next run write again.</summary>
    private async Task SettleAsync(Guid jobId)
    {
        try
        {
            await pump.FlushAsync();
        }
        catch (IOException)
        {
            // The flush met the fault again: its events were handled all the same (dropped), which is all we wait for.
        }

        pump.Forgive(jobId);
    }

    /// <summary>The pause and its reason in the job's history and summary, when the database takes them (best effort).</summary>
    private async Task TryAnnouncePauseAsync(Guid jobId, string reason, CancellationToken cancellationToken)
    {
        try
        {
            (JobRecord? job, _) = await LoadAsync(jobId, cancellationToken);
            if (job is not null)
            {
                new JobEventWriter(pump, jobId, job.LastSeq).Publish(new StateEvent { State = RunState.Paused, Reason = reason });
            }
        }
        catch (Exception ex) when (StorageFault.Describe(ex) is not null)
        {
            logger.LogDebug(ex, "Job {JobId}: the pause could not be recorded", jobId);
        }
    }

    /// <summary>
    /// Checks storage with growing waits (1 s, 2 s, … up to Jobs:StorageRetryMaxSeconds) until the database takes a
    /// write and the job's checkpoint file can be written again; false when the service stops first.
    /// </summary>
    private async Task<bool> WaitForStorageAsync(Guid jobId, Backoff backoff, CancellationToken stoppingToken)
    {
        string part = StorageFaults.JobPart(jobId);
        while (!stoppingToken.IsCancellationRequested)
        {
            TimeSpan wait = backoff.Next();
            try
            {
                await ProbeDatabaseAsync(wait, stoppingToken); // waits out a lock for up to `wait`, ending as soon as it is released
                faults.Clear(StorageFaults.Database);
                ProbeFolder(jobId);
                return true;
            }
            catch (Exception ex) when (StorageFault.Describe(ex) is { } fault)
            {
                faults.Report(part, StorageFault.PauseReason(fault));
                logger.LogDebug(ex, "Job {JobId}: storage still at fault ({Fault}); next check in {Wait}", jobId, fault, wait);
                try
                {
                    await Task.Delay(wait, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    return false;
                }
            }
        }

        return false;
    }

    private async Task ProbeDatabaseAsync(TimeSpan wait, CancellationToken cancellationToken)
    {
        await using AsyncServiceScope scope = scopes.CreateAsyncScope();
        TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
        await db.Sql.ProbeAsync(db.Database.GetConnectionString()!, wait, cancellationToken);
    }

    private void ProbeFolder(Guid jobId)
    {
        string folder = storage.Value.JobFolder(jobId);
        Directory.CreateDirectory(folder);
        string checkpoint = storage.Value.CheckpointFile(jobId);
        long size = Math.Clamp(File.Exists(checkpoint) ? new FileInfo(checkpoint).Length : 0, 64 << 10, 64 << 20);
        // The checkpoint's own temporary file (no run is writing it now): the path and the space a checkpoint needs.
        using var probe = new FileStream(checkpoint + ".tmp", FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.DeleteOnClose);
        byte[] block = new byte[1 << 16];
        for (long written = 0; written < size; written += block.Length)
        {
            probe.Write(block);
        }

        probe.Flush(flushToDisk: true);
    }

    /// <summary>Waits between checks of storage: 1 s, doubling, up to a cap.</summary>
    private sealed class Backoff(int maxSeconds)
    {
        private TimeSpan _next = TimeSpan.FromSeconds(1);

        public TimeSpan Longest { get; } = TimeSpan.FromSeconds(maxSeconds);

        public TimeSpan Next()
        {
            TimeSpan wait = _next;
            _next = TimeSpan.FromTicks(Math.Min(_next.Ticks * 2, Longest.Ticks));
            return wait < Longest ? wait : Longest;
        }

        public void Reset() => _next = TimeSpan.FromSeconds(1);
    }

    /// <summary>On the job's own thread: build the trainer, resume from the checkpoint if there is one, train.</summary>
    private TrainingOutcome Train(JobRecord job, DatasetRecord? datasetRecord, JobEventWriter events, CancellationToken stoppingToken)
    {
        if (datasetRecord is null)
        {
            throw new JobFailedException($"dataset {job.DatasetId} no longer exists");
        }

        ImageDataset data = datasets.Load(datasetRecord);
        TrainingPlan plan = TrainingPlan.Require(
            SpecAnalyzer.Analyze(job.Spec, limits.Value), DatasetShape.Of(data), job.Hyperparameters, job.Monitoring, job.Sanity, job.Threads);
        var trainerOptions = new TrainerOptions
        {
            CheckpointPath = storage.Value.CheckpointFile(job.Id),
            WeightsPath = storage.Value.ModelFile(job.Id),
            VisualsPath = storage.Value.VisualsFile(job.Id),
            CheckpointEverySteps = options.Value.CheckpointEverySteps,
        };
        logger.LogInformation("Job {JobId} needs about {MemoryBytes} bytes per training step", job.Id, plan.EstimatedMemoryBytes);
        using var trainer = new Trainer(plan, data, events, trainerOptions);
        if (File.Exists(trainerOptions.CheckpointPath))
        {
            trainer.RestoreFrom(trainerOptions.CheckpointPath);
            if (trainer.Position.Seq < events.LastSeq)
            {
                // A crash lost the steps after the last checkpoint: drop their events, the resumed run emits them again.
                events.RestartAfter(trainer.Position.Seq);
            }

            logger.LogInformation("Job {JobId} resumes from its checkpoint at step {Step}", job.Id, trainer.Position.Step);
        }
        else if (events.LastSeq > 0)
        {
            events.RestartAfter(0);
        }

        return trainer.Run(controls.For(job.Id), stoppingToken);
    }

    /// <summary>
    /// Why a job failed, as its users read it (job view, events, the hub): storage and file errors become plain
    /// statements, since their texts name server paths; the log keeps the exception.
    /// </summary>
    internal static string FailureReason(Exception exception, string dataFolder)
    {
        const string SeeLog = "; the server's log has the details";
        string reason = exception switch
        {
            JobFailedException or ArgumentException => exception.Message, // the plan's errors name request fields
            FileNotFoundException or DirectoryNotFoundException => "a file the job needs (its dataset's or a checkpoint) is missing" + SeeLog,
            IOException or UnauthorizedAccessException => "the job's files could not be read or written (a storage error)" + SeeLog,
            InvalidDataException or DatasetFormatException => "a file the job needs (its dataset's or a checkpoint) is damaged" + SeeLog,
            _ => $"an internal error ({exception.GetType().Name})" + SeeLog,
        };
        return reason.Contains(dataFolder, StringComparison.Ordinal) || reason.Length > 1000
            ? $"the job could not run ({exception.GetType().Name})" + SeeLog
            : reason;
    }

    /// <summary>A job that cannot run, for a reason its users may read as it is.</summary>
    private sealed class JobFailedException(string reason) : Exception(reason);
}
