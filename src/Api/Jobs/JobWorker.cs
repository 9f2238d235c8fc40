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
/// re-queues what an earlier process left unfinished; on shutdown running jobs write a checkpoint and go back to Queued.
/// </summary>
public sealed class JobWorker(
    JobQueue queue,
    JobControls controls,
    EventPump pump,
    DatasetStore datasets,
    IServiceScopeFactory scopes,
    IOptions<JobOptions> options,
    IOptions<StorageOptions> storage,
    IOptions<SpecLimits> limits,
    ILogger<JobWorker> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await RequeueUnfinishedAsync(stoppingToken);
        await Task.WhenAll(Enumerable.Range(0, Math.Max(1, options.Value.Concurrency)).Select(_ => RunLoopAsync(stoppingToken)));
    }

    private async Task RequeueUnfinishedAsync(CancellationToken cancellationToken)
    {
        await using AsyncServiceScope scope = scopes.CreateAsyncScope();
        TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
        List<(Guid Id, RunState State)> unfinished = [.. (await db.Jobs.AsNoTracking()
            .Where(j => j.State == RunState.Queued || j.State == RunState.Running || j.State == RunState.Paused)
            .OrderBy(j => j.CreatedAt).Select(j => new { j.Id, j.State }).ToListAsync(cancellationToken))
            .Select(j => (j.Id, j.State))];
        foreach ((Guid id, RunState state) in unfinished)
        {
            if (state == RunState.Paused)
            {
                controls.For(id).Pause(); // still paused after a restart, until a person resumes it
            }

            logger.LogInformation("Re-queued job {JobId}, found {State}", id, state);
            queue.Enqueue(id);
        }
    }

    private async Task RunLoopAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (Guid jobId in queue.ReadAllAsync(stoppingToken))
            {
                using (logger.BeginScope(new Dictionary<string, object> { ["JobId"] = jobId }))
                {
                    await RunJobAsync(jobId, stoppingToken);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task RunJobAsync(Guid jobId, CancellationToken stoppingToken)
    {
        JobRecord? job;
        DatasetRecord? datasetRecord;
        await using (AsyncServiceScope scope = scopes.CreateAsyncScope())
        {
            TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
            job = await db.Jobs.AsNoTracking().FirstOrDefaultAsync(j => j.Id == jobId, stoppingToken);
            datasetRecord = job is null ? null : await db.Datasets.AsNoTracking().FirstOrDefaultAsync(d => d.Id == job.DatasetId, stoppingToken);
        }

        if (job is null || job.State.IsEnded() || !controls.TryStart(jobId))
        {
            controls.Finished(jobId);
            return;
        }

        var events = new JobEventWriter(pump, jobId, job.LastSeq);
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
            Name = $"job {jobId:N}",
        };
        logger.LogInformation("Job {JobId} starting", jobId);
        thread.Start();
        try
        {
            TrainingOutcome outcome = await done.Task;
            logger.LogInformation("Job {JobId} ended: {Outcome}", jobId, outcome);
        }
        catch (Exception ex)
        {
            logger.LogError(ex, "Job {JobId} failed", jobId);
            events.Publish(new StateEvent { State = RunState.Failed, Reason = FailureReason(ex, storage.Value.FullDataFolder) });
        }
        finally
        {
            // Flushed before the job leaves the registry, so no command sees it Running in the database once it has ended.
            try
            {
                await pump.FlushAsync();
            }
            catch (IOException ex)
            {
                logger.LogError(ex, "Job {JobId}: its last events could not be persisted", jobId); // one job's loss, not the host's
            }
            finally
            {
                controls.Finished(jobId);
            }
        }
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
