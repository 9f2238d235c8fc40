using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using TrainingService.Api.Datasets;
using TrainingService.Api.Infrastructure;
using TrainingService.Api.Persistence;
using TrainingService.Api.Streaming;
using TrainingService.Contracts.Training;
using TrainingService.Training.Data;
using TrainingService.Training.Loop;
using TrainingService.Training.Native;
using TrainingService.Training.Specs;

namespace TrainingService.Api.Jobs;

/// <summary>
/// Trains jobs, <see cref="JobOptions.Concurrency"/> at a time, each on a thread of its own, claiming them from the job
/// table (<see cref="JobDispatch"/>): on any node of role all or worker, on one machine or many. While a run lasts its
/// lease is renewed and the commands given for it (on any node) are read and obeyed. A pause checkpoints and frees the
/// slot; on shutdown running jobs write a checkpoint and are handed back. A job whose runs keep killing their process
/// is set aside (<see cref="JobOptions.MaxCrashes"/>). A storage fault pauses the job it meets, which runs again from
/// its checkpoint once storage answers; nothing a job's storage throws reaches the host.
/// </summary>
public sealed class JobWorker(
    JobDispatch dispatch,
    JobControls controls,
    EventPump pump,
    DatasetStore datasets,
    StorageFaults faults,
    TrainingMetrics metrics,
    IServiceScopeFactory scopes,
    IOptions<JobOptions> options,
    IOptions<StorageOptions> storage,
    IOptions<SpecLimits> limits,
    Sweeps.SweepRungs rungs,
    ILogger<JobWorker> logger) : BackgroundService
{
    /// <summary>The part of <see cref="StorageFaults"/> a worker reports while it cannot claim (its readiness).</summary>
    public const string Claiming = "claiming jobs";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var backoff = new Backoff(options.Value.StorageRetryMaxSeconds);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await dispatch.ExpireOwnLeasesAsync(stoppingToken);
                faults.Clear(Claiming);
                break;
            }
            catch (Exception ex) when (StorageFault.Describe(ex) is { } fault && !stoppingToken.IsCancellationRequested)
            {
                faults.Report(Claiming, $"cannot reach the job table: {fault}; retrying");
                logger.LogWarning(ex, "Taking back this node's leases met a storage fault: {Fault}", fault);
                if (!await DelayAsync(backoff.Next(), stoppingToken))
                {
                    return;
                }
            }
        }

        using var keeperStop = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        Task keeper = KeepLeasesAsync(keeperStop.Token);
        await Task.WhenAll(Enumerable.Range(1, Math.Max(1, options.Value.Concurrency)).Select(slot => ClaimLoopAsync(slot, stoppingToken)));
        await keeperStop.CancelAsync(); // after the runs: each renews and obeys commands until it has handed its job back
        await keeper;
    }

    private static async Task<bool> DelayAsync(TimeSpan wait, CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(wait, cancellationToken);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>One slot: claim the oldest claimable job, run it on the slot's thread, again; idle, wait for a wake-up or the next poll.</summary>
    private async Task ClaimLoopAsync(int slot, CancellationToken stoppingToken)
    {
        using var thread = new TrainingThread($"training slot {slot}");
        var backoff = new Backoff(options.Value.StorageRetryMaxSeconds);
        TimeSpan poll = TimeSpan.FromMilliseconds(options.Value.ClaimPollMilliseconds);
        while (!stoppingToken.IsCancellationRequested)
        {
            JobClaim? claim;
            try
            {
                claim = await dispatch.TryClaimAsync(stoppingToken);
                faults.Clear(Claiming);
                backoff.Reset();
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                string fault = StorageFault.Describe(ex) ?? ex.GetType().Name;
                faults.Report(Claiming, $"cannot claim jobs: {fault}; retrying");
                logger.LogWarning(ex, "Claiming a job failed: {Fault}", fault);
                if (!await DelayAsync(backoff.Next(), stoppingToken))
                {
                    return;
                }

                continue;
            }

            if (claim is null)
            {
                try
                {
                    await dispatch.WaitForWorkAsync(poll, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                continue;
            }

            using (logger.BeginScope(new Dictionary<string, object> { ["JobId"] = claim.JobId }))
            {
                try
                {
                    await RunJobAsync(claim, thread, stoppingToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
                {
                    logger.LogError(ex, "Job {JobId}: the worker could not run it", claim.JobId); // one job's trouble, not the host's
                }
            }
        }
    }

    /// <summary>
    /// While this node runs jobs: reads their commands every Jobs:CommandPollMilliseconds (at once when one was given on
    /// this node), renews their leases every third of the lease, and stops a run whose lease another worker took.
    /// </summary>
    private async Task KeepLeasesAsync(CancellationToken cancellationToken)
    {
        TimeSpan commandPoll = TimeSpan.FromMilliseconds(options.Value.CommandPollMilliseconds);
        TimeSpan renewEvery = TimeSpan.FromSeconds(options.Value.LeaseSeconds / 3.0);
        long lastRenewal = System.Diagnostics.Stopwatch.GetTimestamp();
        long lastCount = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await dispatch.WaitForCommandsAsync(commandPoll, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            try
            {
                IReadOnlyList<JobClaim> claims = controls.Claims;
                await ObeyCommandsAsync(claims, cancellationToken);
                TimeSpan sinceRenewal = System.Diagnostics.Stopwatch.GetElapsedTime(lastRenewal);
                if (sinceRenewal >= renewEvery)
                {
                    if (sinceRenewal >= 2 * renewEvery && claims.Count > 0)
                    {
                        // Two thirds of the lease gone: one more such delay and other workers may take these jobs over.
                        logger.LogWarning("Lease renewal came {Seconds:F1} s after the last one (due every {Every:F1} s, leases of {Lease} s): "
                            + "this node or its database is slow", sinceRenewal.TotalSeconds, renewEvery.TotalSeconds, options.Value.LeaseSeconds);
                    }

                    lastRenewal = System.Diagnostics.Stopwatch.GetTimestamp();
                    foreach (JobClaim claim in claims)
                    {
                        bool held = await dispatch.RenewAsync(claim, cancellationToken);
                        metrics.LeaseRenewed(held);
                        if (!held)
                        {
                            logger.LogWarning("Job {JobId}: attempt {Attempt} lost its lease to another worker; the run stops and writes nothing more", claim.JobId, claim.Attempt);
                            pump.Fence(claim.JobId, new LeaseLostException(claim.JobId, claim.Attempt));
                            controls.ControlOf(claim.JobId)?.Cancel();
                        }
                    }
                }

                if (System.Diagnostics.Stopwatch.GetElapsedTime(lastCount) >= TimeSpan.FromSeconds(2))
                {
                    lastCount = System.Diagnostics.Stopwatch.GetTimestamp();
                    await dispatch.CountQueuedAsync(cancellationToken);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // A storage fault: the runs meet it too and pause; leases are renewed at the next pass that gets through.
                logger.LogDebug(ex, "Reading commands or renewing leases failed");
            }
        }
    }

    private async Task ObeyCommandsAsync(IReadOnlyList<JobClaim> claims, CancellationToken cancellationToken)
    {
        if (claims.Count == 0)
        {
            return;
        }

        foreach (JobCommandRecord command in await dispatch.TakeCommandsAsync([.. claims.Select(c => c.JobId)], cancellationToken))
        {
            if (controls.ControlOf(command.JobId) is { } control)
            {
                JobDispatch.Apply(command, control);
            }
        }
    }

    /// <summary>A job whose runs keep killing the process: Failed with the reason, never run again.</summary>
    private async Task SetAsideAsync(JobClaim claim, CancellationToken cancellationToken)
    {
        string reason = $"the service process stopped {claim.CrashCount} times while training this job; set aside so it does not crash the service again";
        await using AsyncServiceScope scope = scopes.CreateAsyncScope();
        TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
        long lastSeq = await db.Jobs.Where(j => j.Id == claim.JobId).Select(j => j.LastSeq).FirstAsync(cancellationToken);
        // The record first: it is what the next claim reads, even if the event's write fails.
        await db.Jobs.Where(j => j.Id == claim.JobId && j.Attempt == claim.Attempt).ExecuteUpdateAsync(s => s
            .SetProperty(j => j.State, RunState.Failed).SetProperty(j => j.Error, reason).SetProperty(j => j.FinishedAt, DateTime.UtcNow), cancellationToken);
        var events = new JobEventWriter(pump, claim.JobId, lastSeq, claim.Attempt);
        events.Publish(new StateEvent { State = RunState.Failed, Reason = reason });
        await events.FlushAsync();
        logger.LogWarning("Job {JobId} set aside: the process died {Crashes} times while training it", claim.JobId, claim.CrashCount);
    }

    /// <summary>Runs the claimed job until it ends, pauses or is handed back; a storage fault pauses it until storage answers, then it runs again from its checkpoint.</summary>
    private async Task RunJobAsync(JobClaim claim, TrainingThread thread, CancellationToken stoppingToken)
    {
        Guid jobId = claim.JobId;
        using IDisposable _ = Serilog.Context.LogContext.PushProperty("JobId", jobId); // on every line logged for the job, its thread's too
        if (controls.TryStart(claim) is not { } control)
        {
            // This node's older run of the job has not stopped yet: it will, at its next renewal; the lease lapses and the job is claimed again.
            logger.LogWarning("Job {JobId}: claimed while this node's earlier run of it is still stopping; left for the next claim", jobId);
            return;
        }

        pump.Forgive(jobId); // a new run numbers on from the history as persisted
        string part = StorageFaults.JobPart(jobId);
        var backoff = new Backoff(options.Value.StorageRetryMaxSeconds);
        bool release = false;
        try
        {
            if (claim.CrashCount >= options.Value.MaxCrashes)
            {
                await SetAsideAsync(claim, stoppingToken);
                release = true;
                return;
            }

            await ObeyCommandsAsync([claim], stoppingToken); // what was asked while it waited: cancel, finish, changes
            while (true)
            {
                long started = System.Diagnostics.Stopwatch.GetTimestamp();
                try
                {
                    (JobRecord? job, DatasetRecord? dataset) = await LoadAsync(jobId, stoppingToken);
                    if (job is null || job.State.IsEnded() || job.Attempt != claim.Attempt)
                    {
                        release = job is not null && job.Attempt == claim.Attempt;
                        return;
                    }

                    faults.Clear(part);
                    await RunOnceAsync(job, claim, control, dataset, thread, stoppingToken);
                    release = true;
                    return;
                }
                catch (Exception ex) when (LeaseLostException.In(ex))
                {
                    logger.LogWarning("Job {JobId}: attempt {Attempt} stopped: another worker holds the job now", jobId, claim.Attempt);
                    return;
                }
                catch (Exception ex) when (StorageFault.Describe(ex) is { } fault)
                {
                    string reason = StorageFault.PauseReason(fault);
                    faults.Report(part, reason);
                    if (stoppingToken.IsCancellationRequested)
                    {
                        logger.LogWarning(ex, "Job {JobId} met a storage fault as the service stops ({Fault}); it resumes from its checkpoint", jobId, fault);
                        release = true; // if the database takes it; else the lease lapses
                        return;
                    }

                    if (System.Diagnostics.Stopwatch.GetElapsedTime(started) > backoff.Longest)
                    {
                        backoff.Reset(); // a new fault, not the same one again
                    }

                    logger.LogWarning(ex, "Job {JobId} paused: storage fault: {Fault}", jobId, fault);
                    await SettleAsync(jobId);
                    await TryAnnouncePauseAsync(claim, reason, stoppingToken);
                    if (!await WaitForStorageAsync(jobId, backoff, stoppingToken))
                    {
                        return;
                    }

                    await SettleAsync(jobId);
                    if (!await dispatch.RenewAsync(claim, stoppingToken))
                    {
                        logger.LogWarning("Job {JobId}: storage answers again, but another worker took the job meanwhile", jobId);
                        return;
                    }

                    logger.LogInformation("Job {JobId}: storage answers again; the job resumes from its checkpoint", jobId);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            if (release)
            {
                // Flushed before the lease goes, so no other worker or command sees the job free while its last events are on their way.
                try
                {
                    await pump.FlushAsync();
                }
                catch (Exception ex)
                {
                    logger.LogError(ex, "Job {JobId}: its last events could not be persisted", jobId);
                }

                try
                {
                    await dispatch.ReleaseAsync(claim, CancellationToken.None);
                }
                catch (Exception ex)
                {
                    logger.LogError(ex, "Job {JobId}: its lease could not be released; it lapses", jobId);
                }
            }

            faults.Clear(part);
            controls.Finished(jobId);
            ReleaseMemoryOnceIdle();
        }
    }

    private long _runsEnded;

    /// <summary>
    /// Once this node has trained nothing for Jobs:ReleaseMemoryWhenIdleSeconds after a run ended: a full compacting
    /// collection that decommits what the managed heap no longer needs (GCCollectionMode.Aggressive) and a malloc_trim.
    /// A node between jobs then holds what it keeps (caches, records), not the garbage and free pages of the runs before;
    /// the pause (tens of milliseconds) falls where no step waits for it.
    /// </summary>
    private void ReleaseMemoryOnceIdle()
    {
        int seconds = options.Value.ReleaseMemoryWhenIdleSeconds;
        if (seconds <= 0 || controls.Running > 0)
        {
            return;
        }

        long ended = Interlocked.Increment(ref _runsEnded);
        _ = Task.Delay(TimeSpan.FromSeconds(seconds)).ContinueWith(_ =>
        {
            if (ended != Interlocked.Read(ref _runsEnded) || controls.Running > 0)
            {
                return; // another run started (and ended) since: its end decides
            }

            long before = GC.GetGCMemoryInfo().TotalCommittedBytes;
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers(); // what the collection's finalizers free natively (tensors, connections), before the trim
            NativeTuning.ReleaseFreed();
            logger.LogDebug("Idle: the managed heap's committed memory {Before} -> {After} bytes", before, GC.GetGCMemoryInfo().TotalCommittedBytes);
        }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
    }

    private async Task<(JobRecord? Job, DatasetRecord? Dataset)> LoadAsync(Guid jobId, CancellationToken cancellationToken)
    {
        await using AsyncServiceScope scope = scopes.CreateAsyncScope();
        TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
        JobRecord? job = await db.Jobs.AsNoTracking().FirstOrDefaultAsync(j => j.Id == jobId, cancellationToken);
        DatasetRecord? dataset = job is null ? null : await db.Datasets.AsNoTracking().FirstOrDefaultAsync(d => d.Id == job.DatasetId, cancellationToken);
        return (job, dataset);
    }

    /// <summary>One run on the job's own thread; a failure that is not a storage fault ends the job Failed.</summary>
    private async Task RunOnceAsync(JobRecord job, JobClaim claim, TrainingControl control, DatasetRecord? datasetRecord, TrainingThread thread, CancellationToken stoppingToken)
    {
        // The worker that starts a job from scratch sets its threads (its own Jobs:ThreadsPerJob, or its cores ÷ its
        // concurrency), not the node that created it; a run resumed from a checkpoint keeps them, so it trains on as the
        // first run would have.
        if (job.Threads != options.Value.JobThreads && !File.Exists(storage.Value.CheckpointFile(job.Id)))
        {
            await using AsyncServiceScope scope = scopes.CreateAsyncScope();
            await scope.ServiceProvider.GetRequiredService<TrainingDb>().Jobs.Where(j => j.Id == job.Id && j.Attempt == claim.Attempt)
                .ExecuteUpdateAsync(s => s.SetProperty(j => j.Threads, options.Value.JobThreads), stoppingToken);
            job.Threads = options.Value.JobThreads;
        }

        // Before a checkpoint replaces the last one: still this claim's job? (a blocking read, on the job's own thread)
        var events = new JobEventWriter(pump, job.Id, job.LastSeq, claim.Attempt,
            () => dispatch.HoldsAsync(claim, CancellationToken.None).GetAwaiter().GetResult());
        Sweeps.TrialContext? trial = await TrialOfAsync(job, stoppingToken);
        logger.LogInformation("Job {JobId} starting (attempt {Attempt})", job.Id, claim.Attempt);
        Task<TrainingOutcome> run = thread.RunAsync(() =>
        {
            try
            {
                return Train(job, claim, trial, control, datasetRecord, events, thread.Halves, stoppingToken);
            }
            finally
            {
                NativeTuning.ReleaseFreed(); // what the run freed, back to the system: a finished job holds no memory
            }
        });
        try
        {
            TrainingOutcome outcome = await run;
            logger.LogInformation("Job {JobId} ended: {Outcome}", job.Id, outcome);
        }
        catch (Exception ex) when (StorageFault.Describe(ex) is null && !LeaseLostException.In(ex))
        {
            logger.LogError(ex, "Job {JobId} failed", job.Id);
            events.Publish(new StateEvent { State = RunState.Failed, Reason = FailureReason(ex, storage.Value.FullDataFolder) });
        }
    }

    /// <summary>A sweep's trial: what its run needs of the sweep (the metric, asha's rungs); null for other jobs.</summary>
    private async Task<Sweeps.TrialContext?> TrialOfAsync(JobRecord job, CancellationToken cancellationToken)
    {
        if (job is not { SweepId: Guid sweepId, SweepTrial: int index })
        {
            return null;
        }

        await using AsyncServiceScope scope = scopes.CreateAsyncScope();
        Contracts.Sweeps.SweepSettings? settings = await scope.ServiceProvider.GetRequiredService<TrainingDb>().Sweeps.AsNoTracking()
            .Where(s => s.Id == sweepId).Select(s => s.Settings).FirstOrDefaultAsync(cancellationToken);
        return settings is null ? null : new Sweeps.TrialContext(sweepId, index, settings.Metric, settings.Goal,
            Training.Sweeps.Asha.Of(settings.Asha));
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
    private async Task TryAnnouncePauseAsync(JobClaim claim, string reason, CancellationToken cancellationToken)
    {
        try
        {
            (JobRecord? job, _) = await LoadAsync(claim.JobId, cancellationToken);
            if (job is not null)
            {
                new JobEventWriter(pump, claim.JobId, job.LastSeq, claim.Attempt).Publish(new StateEvent { State = RunState.Paused, Reason = reason });
            }
        }
        catch (Exception ex) when (StorageFault.Describe(ex) is not null)
        {
            logger.LogDebug(ex, "Job {JobId}: the pause could not be recorded", claim.JobId);
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
    private TrainingOutcome Train(
        JobRecord job, JobClaim claim, Sweeps.TrialContext? trial, TrainingControl control, DatasetRecord? datasetRecord, JobEventWriter events, HalfBatches halves,
        CancellationToken stoppingToken)
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
            Halves = halves, // the slot's second thread (TrainingThread), used only if the job trains in halves
        };
        logger.LogInformation("Job {JobId} needs about {MemoryBytes} bytes per training step", job.Id, plan.EstimatedMemoryBytes);
        ITrainingSink sink = trial is null ? events : new Sweeps.TrialSink(events, trial, claim, control, rungs, plan.StepsPerEpoch);
        using var trainer = new Trainer(plan, data, sink, trainerOptions);
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

        return trainer.Run(control, stoppingToken);
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
