using Microsoft.Extensions.Diagnostics.HealthChecks;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using TrainingService.Api.Access;
using TrainingService.Api.Infrastructure;
using TrainingService.Api.Outputs;
using TrainingService.Api.Persistence;
using TrainingService.Api.Quotas;
using TrainingService.Api.Streaming;
using TrainingService.Contracts.Jobs;
using TrainingService.Contracts.Specs;
using TrainingService.Contracts.Streaming;
using TrainingService.Contracts.Training;
using TrainingService.Training.Loop;
using TrainingService.Training.Specs;

namespace TrainingService.Api.Jobs;

/// <summary>What the job handlers need, as one parameter.</summary>
public sealed record JobServices(TrainingDb Db, JobDispatch Dispatch, IOptions<JobOptions> Options, IOptions<SpecLimits> Limits, Caller Caller);

public static class JobsApi
{
    public static IServiceCollection AddJobs(this IServiceCollection services, NodeRole role)
    {
        services.AddOptions<JobOptions>().BindConfiguration("Jobs")
            .Validate(o => o.Concurrency >= 1 && o.CheckpointEverySteps >= 0 && o.ThreadsPerJob is null or >= 1 && o.MemoryBudgetBytes > 0 && o.MaxReasonLength > 0 && o.MaxPendingCommands > 0,
                "Jobs: Concurrency ≥ 1, CheckpointEverySteps ≥ 0, ThreadsPerJob ≥ 1, MemoryBudgetBytes > 0, MaxReasonLength > 0, MaxPendingCommands > 0")
            .Validate(o => o.MaxActiveJobsPerOwner > 0, "Jobs:MaxActiveJobsPerOwner must be positive")
            .Validate(o => o.MaxCrashes >= 1 && o.StorageRetryMaxSeconds >= 1, "Jobs: MaxCrashes ≥ 1, StorageRetryMaxSeconds ≥ 1")
            .Validate(o => o.MaxHistoryBytesPerJob > 0, HistoryLimit.Key + " must be positive")
            .ValidateOnStart();
        services.AddOptions<JobOptions>()
            .Validate(o => o.LeaseSeconds >= 3 && o.ClaimPollMilliseconds >= 10 && o.CommandPollMilliseconds >= 10,
                "Jobs: LeaseSeconds ≥ 3, ClaimPollMilliseconds ≥ 10, CommandPollMilliseconds ≥ 10");
        services.AddSingleton<JobDispatch>();
        services.AddSingleton<JobControls>();
        services.AddScoped<JobCommands>();
        services.AddScoped<JobDeletion>();
        services.AddSingleton<LiveEvents>();
        // The pump is registered before the worker so it stops after it and persists the worker's last events.
        services.AddSingleton<EventPump>();
        services.AddHostedService(sp => sp.GetRequiredService<EventPump>());
        if (role != NodeRole.Api)
        {
            services.AddHostedService<JobWorker>();
            services.AddHealthChecks().Add(new HealthCheckRegistration("claiming",
                sp => new ClaimingHealthCheck(sp.GetRequiredService<StorageFaults>(), role), failureStatus: null, tags: null));
        }

        return services;
    }

    public static RouteGroupBuilder MapJobs(this IEndpointRouteBuilder app)
    {
        RouteGroupBuilder group = app.MapGroup("/jobs").WithTags("Jobs").WithJsonBodyLimit();
        group.MapPost("/", Create).WithName("CreateJob").WithSummary("Start training a model on a dataset")
            .WithDescription("202 with Location /jobs/{id}. Every field has a default: without datasetId the newest dataset is used, "
                + "without model a LeNet-style CNN sized to the dataset. Watch it live on the hub /hubs/training (docs/streaming.md).");
        group.MapGet("/", List).WithName("ListJobs")
            .WithSummary("Jobs, newest first, optionally of one state or one sweep (sweepId), without specs or settings: { items, next }; pass next as after for the following page");
        group.MapGet("/{id:guid}", Get).AllowViewers().WithName("GetJob").WithSummary("A job's state, progress, ETA, latest loss and best validation accuracy");
        group.MapPost("/{id:guid}/cancel", Cancel).WithName("CancelJob").WithSummary("Stop a job for good");
        group.MapPost("/{id:guid}/pause", Pause).WithName("PauseJob").WithSummary("Pause a running job after its current step (it checkpoints)");
        group.MapPost("/{id:guid}/resume", Resume).WithName("ResumeJob").WithSummary("Resume a paused job");
        group.MapPatch("/{id:guid}/hyperparameters", ChangeHyperparameters).WithName("ChangeJobHyperparameters")
            .WithSummary("Change the learning rate, momentum or weight decay of a job that has not ended, from its next step")
            .WithDescription("The change is recorded in the job's history as a hyperparameters event (with your reason), so the curves show when and why they changed. "
                + "A schedule keeps scaling the new base learning rate. Also on the hub: ChangeHyperparameters(jobId, change).");
        group.MapPost("/{id:guid}/finish", Finish).WithName("FinishJob")
            .WithSummary("Early stop: finish a running or paused job now and keep its model (it ends Succeeded, with weights)");
        group.MapGet("/{id:guid}/events", Events).AllowViewers().WithName("GetJobEvents").WithSummary("A job's event history: the same objects as the live stream, in seq order")
            .Produces<StreamEvent[]>(StatusCodes.Status200OK, "application/json");
        group.MapDelete("/{id:guid}", Delete).WithName("DeleteJob")
            .WithSummary("Delete a job that has ended: its record, event history, share links, checkpoint, weights and pictures")
            .WithDescription("A queued, running or paused job gets 409: cancel it first.");
        group.MapGet("/{id:guid}/weights", Weights).WithName("GetJobWeights").WithSummary("The trained model in TorchSharp's format (Module.load)");
        group.MapVisuals();
        group.MapExport();
        group.MapHistory();
        group.MapCompare();
        group.MapPredict();
        group.MapShares();
        app.MapHub<TrainingHub>("/hubs/training").AllowViewers();
        return group;
    }

    /// <summary>Validates the request and queues the job; 202 with Location /jobs/{id}.</summary>
    public static async Task<Results<AcceptedAtRoute<JobView>, ValidationProblem, ProblemHttpResult>> Create(
        CreateJobRequest request, [AsParameters] JobServices services, CancellationToken cancellationToken)
    {
        (DatasetRecord? dataset, string? specJson, ProblemHttpResult? problem) = await ResolveAsync(request, services.Db, services.Caller, "", cancellationToken);
        if (problem is not null)
        {
            return problem;
        }

        using JsonDocument document = JsonDocument.Parse(specJson!);
        var shape = dataset!.Shape;
        Hyperparameters hyperparameters = request.Hyperparameters ?? new Hyperparameters();
        MonitoringOptions monitoring = request.Monitoring ?? new MonitoringOptions();
        SpecLimits limits = services.Limits.Value;
        (TrainingPlan? plan, IReadOnlyList<SpecIssue> issues) = TrainingPlan.Create(
            SpecReader.ReadAndAnalyze(document.RootElement, limits), shape, hyperparameters, monitoring, request.Sanity, services.Options.Value.JobThreads);
        if (plan is null)
        {
            return TypedResults.ValidationProblem(
                limits.Bounded(issues).GroupBy(i => i.Field).ToDictionary(g => g.Key, g => g.Select(i => i.Message).ToArray()), title: "The job cannot be trained");
        }

        if (RefuseAdmission(plan, services.Options.Value) is { } notAdmitted)
        {
            return notAdmitted;
        }

        var job = new JobRecord
        {
            Id = Guid.CreateVersion7(),
            Owner = services.Caller.Owner,
            State = RunState.Queued,
            Spec = plan.Model.Spec!,
            ModelId = request.ModelId,
            DatasetId = dataset.Id,
            Hyperparameters = hyperparameters,
            Monitoring = monitoring,
            Sanity = request.Sanity,
            Threads = plan.Threads,
            TotalSteps = plan.TotalSteps,
            CreatedAt = DateTime.UtcNow,
        };
        await using (var write = await OwnerQuotas.BeginWriteAsync(services.Db, cancellationToken))
        {
            if (await OwnerQuotas.RefuseJobAsync(services.Db, job.Owner, services.Options.Value.MaxActiveJobsPerOwner, cancellationToken) is { } refused)
            {
                return refused;
            }

            if (!await services.Db.Datasets.AnyAsync(d => d.Id == dataset.Id, cancellationToken))
            {
                return Problems.NotFound("datasetId", $"There is no dataset {dataset.Id}."); // deleted since it was read (delete takes this lock too)
            }

            services.Db.Jobs.Add(job);
            await services.Db.SaveChangesAsync(cancellationToken);
            await write.CommitAsync(cancellationToken);
        }

        services.Dispatch.Wake(); // this node's worker, if it has one, looks now; others at their next poll
        return TypedResults.AcceptedAtRoute(View(job), "GetJob", new { id = job.Id });
    }

    /// <summary>422 when a training step of the plan would not fit Jobs:MemoryBudgetBytes, or its history Jobs:MaxHistoryBytesPerJob.</summary>
    internal static ProblemHttpResult? RefuseAdmission(TrainingPlan plan, JobOptions options)
    {
        long budget = options.MemoryBudgetBytes;
        if (plan.EstimatedMemoryBytes > budget)
        {
            return Problems.About(StatusCodes.Status422UnprocessableEntity, "hyperparameters.batchSize",
                $"A training step of this model at batch size {plan.Hyperparameters.BatchSize} needs about {plan.EstimatedMemoryBytes:N0} bytes "
                + $"(layer outputs, gradients, parameters and optimizer state), over the budget of {budget:N0} bytes (configuration Jobs:MemoryBudgetBytes); "
                + "use a smaller batch size or a smaller model.", "The job does not fit in memory");
        }

        return HistoryLimit.Refuse(plan, options.MaxHistoryBytesPerJob);
    }

    /// <summary>
    /// The dataset and the spec's JSON a job request names: without datasetId the caller's own newest dataset, without
    /// model or modelId the LeNet-style default sized to the dataset. A 404 or 400 keyed <paramref name="prefix"/>field otherwise.
    /// </summary>
    internal static async Task<(DatasetRecord? Dataset, string? SpecJson, ProblemHttpResult? Problem)> ResolveAsync(
        CreateJobRequest request, TrainingDb db, Caller caller, string prefix, CancellationToken cancellationToken)
    {
        DatasetRecord? dataset = request.DatasetId is Guid datasetId
            ? await db.Datasets.AsNoTracking().VisibleTo(caller).FirstOrDefaultAsync(d => d.Id == datasetId, cancellationToken)
            : await db.Datasets.AsNoTracking().Where(d => d.Owner == caller.Owner) // the caller's own newest, even for an admin
                .OrderByDescending(d => d.CreatedAt).FirstOrDefaultAsync(cancellationToken);
        if (dataset is null)
        {
            return (null, null, Problems.NotFound(prefix + "datasetId", request.DatasetId is null
                ? "There is no dataset yet: create one with POST /datasets/builtin or upload one with POST /datasets."
                : $"There is no dataset {request.DatasetId}."));
        }

        if (request.Model is not null && request.ModelId is not null)
        {
            return (null, null, Problems.Invalid(prefix + "model", "Give model or modelId, not both."));
        }

        if (request.ModelId is Guid modelId)
        {
            ModelRecord? saved = await db.Models.AsNoTracking().VisibleTo(caller).FirstOrDefaultAsync(m => m.Id == modelId, cancellationToken);
            return saved is null ? (null, null, Problems.NotFound(prefix + "modelId", $"There is no model {modelId}.")) : (dataset, saved.Spec, null);
        }

        // From the raw bytes: GetRawText throws on a model holding invalid UTF-8; decoded, the reader refuses it.
        return (dataset, request.Model is { ValueKind: not JsonValueKind.Null } given
            ? Encoding.UTF8.GetString(JsonMarshal.GetRawUtf8Value(given))
            : JsonSerializer.Serialize(ModelPresets.LeNet5(dataset.Channels, dataset.Height, dataset.Width, dataset.Classes), JsonSerializerOptions.Web), null);
    }

    /// <summary>A page of jobs, newest first (keyset on creation time, then id), optionally of one state.</summary>
    public static async Task<Results<Ok<Page<JobSummary>>, ProblemHttpResult>> List(
        TrainingDb db, Caller caller, RunState? state, Guid? after = null, int limit = Paging.DefaultLimit, Guid? sweepId = null,
        CancellationToken cancellationToken = default)
    {
        if (Paging.Refuse(limit) is { } refused)
        {
            return refused;
        }

        IQueryable<JobRecord> jobs = db.Jobs.AsNoTracking().VisibleTo(caller);
        if (state is not null)
        {
            jobs = jobs.Where(j => j.State == state);
        }

        if (sweepId is Guid sweep)
        {
            if (!await db.Sweeps.VisibleTo(caller).AnyAsync(s => s.Id == sweep, cancellationToken))
            {
                return Problems.NotFound("sweepId", $"There is no sweep {sweep}.");
            }

            jobs = jobs.Where(j => j.SweepId == sweep);
        }

        if (after is Guid last)
        {
            DateTime? at = await db.Jobs.VisibleTo(caller).Where(j => j.Id == last).Select(j => (DateTime?)j.CreatedAt).FirstOrDefaultAsync(cancellationToken);
            if (at is null)
            {
                return Paging.NoSuchCursor(last, "job");
            }

            jobs = jobs.Where(j => j.CreatedAt < at || (j.CreatedAt == at && j.Id.CompareTo(last) < 0));
        }

        List<JobRecord> page = await jobs.OrderByDescending(j => j.CreatedAt).ThenByDescending(j => j.Id).Take(limit + 1).ToListAsync(cancellationToken);
        return TypedResults.Ok(Paging.Of(page.Select(Summary).ToList(), limit, j => j.Id));
    }

    /// <remarks>A job paused by a storage fault says so even while the database cannot record it.</remarks>
    public static async Task<Results<Ok<JobView>, ProblemHttpResult>> Get(
        Guid id, TrainingDb db, Caller caller, StorageFaults faults, CancellationToken cancellationToken) =>
        await db.Jobs.AsNoTracking().VisibleTo(caller).FirstOrDefaultAsync(j => j.Id == id, cancellationToken) is { } job
            ? TypedResults.Ok(faults.PauseReason(id) is { } reason && !job.State.IsEnded()
                ? View(job) with { State = RunState.Paused, Error = reason }
                : View(job))
            : Problems.NotFound("id", $"There is no job {id}.");

    /// <summary>A queued job is cancelled at once; a running or paused one after its current step.</summary>
    public static async Task<Results<Accepted<JobView>, ProblemHttpResult, ValidationProblem>> Cancel(
        Guid id, JobCommands commands, Caller caller, CancellationToken cancellationToken) => (await commands.CancelAsync(caller, id, cancellationToken)).ToHttp();

    public static async Task<Results<Accepted<JobView>, ProblemHttpResult, ValidationProblem>> Pause(
        Guid id, JobCommands commands, Caller caller, CancellationToken cancellationToken) => (await commands.PauseAsync(caller, id, cancellationToken)).ToHttp();

    public static async Task<Results<Accepted<JobView>, ProblemHttpResult, ValidationProblem>> Resume(
        Guid id, JobCommands commands, Caller caller, CancellationToken cancellationToken) => (await commands.ResumeAsync(caller, id, cancellationToken)).ToHttp();

    public static async Task<Results<Accepted<JobView>, ProblemHttpResult, ValidationProblem>> ChangeHyperparameters(
        Guid id, HyperparameterChange change, JobCommands commands, Caller caller, CancellationToken cancellationToken) =>
        (await commands.ChangeHyperparametersAsync(caller, id, change, cancellationToken)).ToHttp();

    public static async Task<Results<Accepted<JobView>, ProblemHttpResult, ValidationProblem>> Finish(
        Guid id, JobCommands commands, Caller caller, CancellationToken cancellationToken) => (await commands.FinishAsync(caller, id, cancellationToken)).ToHttp();

    /// <summary>Events with seq after afterSeq, in seq order, at most limit (default 1000, at most 10000).</summary>
    /// <remarks>
    /// The stored JSON of each event is written as stored, no event parsed. It is read in chunks of at most
    /// Streaming:MaxFrameBytes, each in a statement finished before the chunk is written: a slow client never holds a
    /// read transaction open, which would keep SQLite from checkpointing the WAL.
    /// </remarks>
    public static async Task<Results<PushStreamHttpResult, ProblemHttpResult>> Events(
        Guid id, TrainingDb db, Caller caller, IOptions<StreamingOptions> streaming, long afterSeq = 0, int limit = 1000,
        CancellationToken cancellationToken = default)
    {
        if (!await db.Jobs.VisibleTo(caller).AnyAsync(j => j.Id == id, cancellationToken))
        {
            return Problems.NotFound("id", $"There is no job {id}.");
        }

        int chunkBytes = streaming.Value.MaxFrameBytes;
        return TypedResults.Stream(async body =>
        {
            // 16 K chars keeps the writer's char and UTF-8 buffers (32 KB, 48 KB) off the large object heap: with 64 K each
            // request left 320 KB there, resident until a full collection (bench memory polls this once a second).
            await using var writer = new StreamWriter(body, new UTF8Encoding(false), bufferSize: 16 * 1024);
            await writer.WriteAsync('[');
            bool first = true;
            await foreach (HistoryChunk chunk in HistoryChunk.ReadAllAsync(db, id, afterSeq, Math.Clamp(limit, 1, 10_000), chunkBytes, null, cancellationToken))
            {
                foreach (string json in chunk.Json)
                {
                    if (!first)
                    {
                        await writer.WriteAsync(',');
                    }

                    await writer.WriteAsync(json);
                    first = false;
                }
            }

            await writer.WriteAsync(']');
        }, "application/json");
    }

    /// <summary>Deletes an ended job and everything it left; 409 while it is queued, running or paused.</summary>
    public static async Task<Results<NoContent, ProblemHttpResult>> Delete(
        Guid id, TrainingDb db, Caller caller, JobDeletion deletion, CancellationToken cancellationToken)
    {
        JobRecord? job = await db.Jobs.AsNoTracking().VisibleTo(caller).FirstOrDefaultAsync(j => j.Id == id, cancellationToken);
        if (job is null)
        {
            return Problems.NoSuchJob(id);
        }

        if (job.SweepId is Guid sweep && await db.Sweeps.AnyAsync(s => s.Id == sweep && s.State == RunState.Running, cancellationToken))
        {
            return Problems.Conflict($"Job {id} belongs to sweep {sweep}, which is still running: delete it once the sweep has ended (or cancel the sweep).", "The job's sweep is running");
        }

        // The state is read again as the record is deleted: a job that has ended stays ended.
        return job.State.IsEnded() && await deletion.DeleteAsync(id, cancellationToken)
            ? TypedResults.NoContent()
            : Problems.Conflict($"Job {id} is {job.State}: cancel it first (POST /jobs/{id}/cancel), then delete it.", "The job has not ended");
    }

    public static async Task<Results<PhysicalFileHttpResult, ProblemHttpResult>> Weights(
        Guid id, TrainingDb db, Caller caller, IOptions<StorageOptions> storage, CancellationToken cancellationToken)
    {
        JobRecord? job = await db.Jobs.AsNoTracking().VisibleTo(caller).FirstOrDefaultAsync(j => j.Id == id, cancellationToken);
        if (job is null)
        {
            return Problems.NotFound("id", $"There is no job {id}.");
        }

        string path = storage.Value.ModelFile(id);
        return job.State == RunState.Succeeded && File.Exists(path)
            ? TypedResults.PhysicalFile(path, "application/octet-stream", $"job-{id:N}.dat")
            : Problems.Conflict(job.State == RunState.Succeeded
                ? $"Job {id} was a learning-rate range test: it keeps no model."
                : $"Job {id} is {job.State}; weights are there once it has succeeded.");
    }

    internal static JobView View(JobRecord job) => new(Summary(job))
    {
        Model = job.Spec,
        Hyperparameters = job.Hyperparameters,
        Monitoring = job.Monitoring,
        Sanity = job.Sanity,
        Worker = job.LeaseExpiresAt > DateTime.UtcNow ? job.LeaseOwner : null, // a lapsed lease: its worker is gone, the job waits for another
        Attempt = job.Attempt,
    };

    private static JobSummary Summary(JobRecord job)
    {
        return new()
        {
            Id = job.Id,
            State = job.State,
            DatasetId = job.DatasetId,
            ModelId = job.ModelId,
            // Rows stored before names were capped must not make every poll of the list megabytes long.
            ModelName = job.Spec.Name is { Length: > 100 } name ? name[..100] + "…" : job.Spec.Name,
            Progress = job.TotalSteps > 0 ? Math.Min(1, (double)job.Step / job.TotalSteps) : 0,
            Step = job.Step,
            TotalSteps = job.TotalSteps,
            Epoch = job.Epoch,
            EtaSeconds = job.State == RunState.Running && job.SamplesPerSecond > 0
                ? (job.TotalSteps - job.Step) * (job.Hyperparameters.BatchSize / job.SamplesPerSecond.Value)
                : null,
            LatestLoss = job.LatestLoss,
            BestValidationAccuracy = job.BestValidationAccuracy,
            SamplesPerSecond = job.SamplesPerSecond,
            LastSeq = job.LastSeq,
            HistoryBytes = job.HistoryBytes,
            Error = job.Error,
            SweepId = job.SweepId,
            SweepTrial = job.SweepTrial,
            StopCode = job.StopCode,
            CreatedAt = job.CreatedAt,
            StartedAt = job.StartedAt,
            FinishedAt = job.FinishedAt,
        };
    }
}
