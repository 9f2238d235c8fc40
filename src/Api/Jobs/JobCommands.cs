using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.SignalR;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using TrainingService.Api.Access;
using TrainingService.Api.Infrastructure;
using TrainingService.Api.Persistence;
using TrainingService.Api.Streaming;
using TrainingService.Contracts.Jobs;
using TrainingService.Contracts.Training;

namespace TrainingService.Api.Jobs;

/// <summary>What a command to a job came to; mapped once to HTTP (<see cref="ToHttp"/>) and once to the hub (<see cref="ThrowIfRefused"/>).</summary>
public abstract record CommandOutcome
{
    private CommandOutcome()
    {
    }

    /// <summary>Accepted: the job as it stands (the trainer obeys between steps).</summary>
    public sealed record Done(JobRecord Job) : CommandOutcome;

    public sealed record NotFound(Guid Id) : CommandOutcome;

    /// <summary>The job's state does not allow it.</summary>
    public sealed record Conflict(string Reason) : CommandOutcome;

    /// <summary>The command's own values are wrong, by field.</summary>
    public sealed record Invalid(string Title, Dictionary<string, string[]> Errors) : CommandOutcome;

    /// <summary>The job already has as many changes of hyperparameters waiting for its run as it may (Jobs:MaxPendingCommands).</summary>
    public sealed record Busy(Guid Id, int Pending) : CommandOutcome
    {
        public string Detail => $"Job {Id} has {Pending} changes of hyperparameters its run has not read yet, the limit (configuration {PendingKey}); "
            + "a running job's run reads them within a second, a paused or queued job's when it runs again. Its record already holds the values they set.";
    }

    public Results<Accepted<JobView>, ProblemHttpResult, ValidationProblem> ToHttp() => this switch
    {
        Done done => TypedResults.Accepted($"/jobs/{done.Job.Id}", JobsApi.View(done.Job)),
        NotFound notFound => Problems.NotFound("id", $"There is no job {notFound.Id}."),
        Conflict conflict => Problems.Conflict(conflict.Reason),
        Invalid invalid => TypedResults.ValidationProblem(invalid.Errors, title: invalid.Title),
        Busy busy => TypedResults.Problem(busy.Detail, statusCode: StatusCodes.Status429TooManyRequests, title: "Too many pending commands",
            extensions: new Dictionary<string, object?> { ["limit"] = PendingKey }),
        _ => throw new InvalidOperationException($"no HTTP form for {GetType().Name}"),
    };

    public const string PendingKey = "Jobs:MaxPendingCommands";

    public void ThrowIfRefused()
    {
        string? refusal = this switch
        {
            Done => null,
            NotFound notFound => $"id: There is no job {notFound.Id}.",
            Conflict conflict => $"state: {conflict.Reason}",
            Invalid invalid => string.Join("; ", invalid.Errors.Select(e => $"{e.Key}: {string.Join(" ", e.Value)}")),
            Busy busy => $"{PendingKey}: {busy.Detail}",
            _ => throw new InvalidOperationException($"no hub form for {GetType().Name}"),
        };
        if (refusal is not null)
        {
            throw new HubException(refusal);
        }
    }
}

/// <summary>
/// A person's commands to a job — pause, resume, cancel, finish, new hyperparameters — for REST and the hub alike, on
/// any node. A job no worker holds is changed here, in its record; a command for a job a worker holds (wherever it
/// runs) goes into the job's command table, which that worker reads within Jobs:CommandPollMilliseconds.
/// </summary>
public sealed class JobCommands(TrainingDb db, JobDispatch dispatch, EventPump pump, IOptions<JobOptions> options)
{
    public Task<CommandOutcome> PauseAsync(Caller caller, Guid id, CancellationToken cancellationToken) =>
        CommandAsync(caller, id, s => s == RunState.Running, "only a running job can be paused", JobCommandKind.Pause, cancellationToken);

    /// <summary>Back in the queue: whichever worker takes it continues from the checkpoint written at the pause.</summary>
    public async Task<CommandOutcome> ResumeAsync(Caller caller, Guid id, CancellationToken cancellationToken)
    {
        JobRecord? job = await Controllable(caller).AsNoTracking().FirstOrDefaultAsync(j => j.Id == id, cancellationToken);
        if (job is null)
        {
            return new CommandOutcome.NotFound(id);
        }

        if (job.State != RunState.Paused)
        {
            return new CommandOutcome.Conflict($"Job {id} is {job.State}; only a paused job can be resumed.");
        }

        return WaitingAtRung(job) ?? await RequeuePausedAsync(job, cancellationToken) ?? await DoneAsync(id, cancellationToken);
    }

    /// <summary>Early stop: finish now and keep the model (a paused job is run once more, to finish at once).</summary>
    public async Task<CommandOutcome> FinishAsync(Caller caller, Guid id, CancellationToken cancellationToken)
    {
        JobRecord? job = await Controllable(caller).AsNoTracking().FirstOrDefaultAsync(j => j.Id == id, cancellationToken);
        if (job is null)
        {
            return new CommandOutcome.NotFound(id);
        }

        if (job.State is not (RunState.Running or RunState.Paused))
        {
            return new CommandOutcome.Conflict($"Job {id} is {job.State}; only a running or paused job can finish early.");
        }

        if (job.State == RunState.Paused && (WaitingAtRung(job) ?? await RequeuePausedAsync(job, cancellationToken)) is { } refused)
        {
            return refused;
        }

        await AddCommandAsync(id, JobCommandKind.Finish, null, cancellationToken); // read by the run, or by the next claim's before it trains
        return await DoneAsync(id, cancellationToken);
    }

    /// <summary>A job no worker holds (queued, paused) is cancelled at once; a running one after its current step.</summary>
    /// <remarks>A sweep cancelling its trials gives a <paramref name="note"/>: the trial's StopCode, and the reason its state event carries.</remarks>
    public async Task<CommandOutcome> CancelAsync(Caller caller, Guid id, CancellationToken cancellationToken, StopNote? note = null)
    {
        JobRecord? job = await Controllable(caller).AsNoTracking().FirstOrDefaultAsync(j => j.Id == id, cancellationToken);
        if (job is null)
        {
            return new CommandOutcome.NotFound(id);
        }

        if (job.State.IsEnded())
        {
            return new CommandOutcome.Conflict($"Job {id} has already ended ({job.State}); there is nothing to cancel.");
        }

        // The record first, only while no worker holds the job (the claim is a compare-and-set on Attempt, so the two
        // cannot both win): it is what the quota counts and what a worker would claim, even if the event's write fails.
        DateTime now = DateTime.UtcNow;
        int cancelled = await db.Jobs
            .Where(j => j.Id == id && j.Attempt == job.Attempt && j.LeaseOwner == null && (j.State == RunState.Queued || j.State == RunState.Paused))
            .ExecuteUpdateAsync(s => s.SetProperty(j => j.State, RunState.Cancelled).SetProperty(j => j.FinishedAt, now)
                .SetProperty(j => j.StopCode, j => note == null ? j.StopCode : note.Code), cancellationToken);
        if (cancelled == 1)
        {
            pump.Forgive(id); // an older run of it on this node may have lost its lease; this event is at the job's current attempt
            var events = new JobEventWriter(pump, id, job.LastSeq, job.Attempt);
            string reason = job.State == RunState.Paused ? "cancelled while paused" : "cancelled before it started";
            events.Publish(new StateEvent { State = RunState.Cancelled, Reason = note is null ? reason : $"{note.Reason} ({reason})", Code = note?.Code });
            await events.FlushAsync().WaitAsync(cancellationToken);
            await db.JobCommands.Where(c => c.JobId == id).ExecuteDeleteAsync(cancellationToken);
        }
        else
        {
            if (note is not null)
            {
                await db.Jobs.Where(j => j.Id == id).ExecuteUpdateAsync(s => s.SetProperty(j => j.StopCode, note.Code), cancellationToken);
            }

            await AddCommandAsync(id, JobCommandKind.Cancel, note, cancellationToken);
        }

        return await DoneAsync(id, cancellationToken);
    }

    /// <summary>New values from the job's next step; the record keeps them (what GET shows and a restart starts from).</summary>
    public async Task<CommandOutcome> ChangeHyperparametersAsync(Caller caller, Guid id, HyperparameterChange? change, CancellationToken cancellationToken)
    {
        JobRecord? job = await Controllable(caller).FirstOrDefaultAsync(j => j.Id == id, cancellationToken);
        if (job is null)
        {
            return new CommandOutcome.NotFound(id);
        }

        Hyperparameters current = job.Hyperparameters;
        Dictionary<string, string[]> errors = Validate(change, current, options.Value.MaxReasonLength);
        if (errors.Count > 0)
        {
            return new CommandOutcome.Invalid("The hyperparameters cannot be changed", errors);
        }

        if (job.State.IsEnded())
        {
            return new CommandOutcome.Conflict($"Job {id} is {job.State}; cannot change its hyperparameters.");
        }

        if ((await WaitingAsync(id, JobCommandKind.Change, cancellationToken)).Busy is { } busy)
        {
            return busy;
        }

        job.Hyperparameters = current with
        {
            LearningRate = change!.LearningRate ?? current.LearningRate,
            Momentum = change.Momentum ?? current.Momentum,
            WeightDecay = change.WeightDecay ?? current.WeightDecay,
        };
        JobDispatch.AddCommand(db, id, JobCommandKind.Change, change);
        await db.SaveChangesAsync(cancellationToken); // the values and the command together
        dispatch.CommandsWritten();
        return new CommandOutcome.Done(job);
    }

    /// <summary>Pictures of what the network sees, taken by the job's run before its next step.</summary>
    public Task<CommandOutcome> SnapshotAsync(Caller caller, Guid id, CancellationToken cancellationToken) =>
        CommandAsync(caller, id, s => s is RunState.Running or RunState.Paused,
            "pictures are taken of a running or paused job (a finished one keeps its last)", JobCommandKind.Snapshot, cancellationToken);

    /// <summary>The jobs a caller may command: their own (an admin's: all); a share link's viewer none.</summary>
    private IQueryable<JobRecord> Controllable(Caller caller) => caller.IsViewer ? db.Jobs.Where(_ => false) : db.Jobs.VisibleTo(caller);

    private async Task<CommandOutcome> CommandAsync(
        Caller caller, Guid id, Func<RunState, bool> allowed, string rule, JobCommandKind kind, CancellationToken cancellationToken)
    {
        JobRecord? job = await Controllable(caller).AsNoTracking().FirstOrDefaultAsync(j => j.Id == id, cancellationToken);
        if (job is null)
        {
            return new CommandOutcome.NotFound(id);
        }

        if (!allowed(job.State))
        {
            return new CommandOutcome.Conflict($"Job {id} is {job.State}; {rule}.");
        }

        await AddCommandAsync(id, kind, null, cancellationToken);
        return new CommandOutcome.Done(job);
    }

    /// <summary>
    /// Commands wait while a job is paused or queued or its worker is gone, so each request must not add a row for good:
    /// a pause, finish, cancel or snapshot already waiting makes an equal one redundant (it is not added), and changes of
    /// hyperparameters, which each keep their own values and reason, are capped at Jobs:MaxPendingCommands per job.
    /// The count and the insert are two statements: changes sent at the same moment can pass the cap by their number.
    /// </summary>
    private async Task<(bool AlreadyWaiting, CommandOutcome.Busy? Busy)> WaitingAsync(Guid id, JobCommandKind kind, CancellationToken cancellationToken)
    {
        if (kind != JobCommandKind.Change)
        {
            return (await db.JobCommands.AnyAsync(c => c.JobId == id && c.Kind == kind, cancellationToken), null);
        }

        int changes = await db.JobCommands.CountAsync(c => c.JobId == id && c.Kind == JobCommandKind.Change, cancellationToken);
        return (false, changes >= options.Value.MaxPendingCommands ? new CommandOutcome.Busy(id, changes) : null);
    }

    /// <summary>A pause, finish, cancel or snapshot, unless an equal one already waits for the job's run.</summary>
    private async Task AddCommandAsync(Guid id, JobCommandKind kind, object? payload, CancellationToken cancellationToken)
    {
        if ((await WaitingAsync(id, kind, cancellationToken)).AlreadyWaiting)
        {
            return;
        }

        JobDispatch.AddCommand(db, id, kind, payload);
        await db.SaveChangesAsync(cancellationToken);
        dispatch.CommandsWritten();
    }

    /// <summary>A sweep's trial waiting at asha's rung is resumed by its sweep, if it is promoted, not by a person.</summary>
    private static CommandOutcome.Conflict? WaitingAtRung(JobRecord job) => job.StopCode == ActiveJobs.WaitingAtRung
        ? new CommandOutcome.Conflict($"Job {job.Id} is trial {job.SweepTrial} of sweep {job.SweepId}, waiting at asha's rung: its sweep trains it on if it is promoted "
            + "(it is cut if it is not when the sweep ends); cancel it or the sweep to stop it now.")
        : null;

    /// <summary>A paused job back to Queued, if no worker still holds it; else why not.</summary>
    private async Task<CommandOutcome?> RequeuePausedAsync(JobRecord job, CancellationToken cancellationToken)
    {
        int requeued = await db.Jobs.Where(j => j.Id == job.Id && j.State == RunState.Paused && j.LeaseOwner == null)
            .ExecuteUpdateAsync(s => s.SetProperty(j => j.State, RunState.Queued), cancellationToken);
        if (requeued == 0)
        {
            return new CommandOutcome.Conflict(StorageFault.IsPauseReason(job.Error)
                ? $"Job {job.Id} was paused by a storage fault; it resumes by itself once storage answers."
                : $"Job {job.Id} is still writing its pause checkpoint; resume it in a moment.");
        }

        dispatch.Wake();
        return null;
    }

    private async Task<CommandOutcome> DoneAsync(Guid id, CancellationToken cancellationToken) =>
        new CommandOutcome.Done(await db.Jobs.AsNoTracking().FirstAsync(j => j.Id == id, cancellationToken));

    private static Dictionary<string, string[]> Validate(HyperparameterChange? change, Hyperparameters current, int maxReason)
    {
        var errors = new Dictionary<string, string[]>();
        if (change is null || (change.LearningRate, change.Momentum, change.WeightDecay) is (null, null, null))
        {
            errors["body"] = ["give at least one of learningRate, momentum, weightDecay"];
            return errors;
        }

        if (change.LearningRate is { } lr && !(lr is > 0 and <= 10))
        {
            errors["learningRate"] = [$"learningRate must be above 0 and at most 10, got {lr}"];
        }

        if (change.Momentum is { } momentum)
        {
            if (current.Optimizer != OptimizerKind.Sgd)
            {
                errors["momentum"] = [$"momentum applies to the sgd optimizer; this job uses {System.Text.Json.JsonSerializer.Serialize(current.Optimizer).Trim('"')}"];
            }
            else if (!(momentum is >= 0 and < 1) || (current.Nesterov && momentum == 0))
            {
                errors["momentum"] = [current.Nesterov && momentum == 0 ? "momentum must stay above 0 for Nesterov momentum" : $"momentum must be in [0, 1), got {momentum}"];
            }
        }

        if (change.WeightDecay is { } wd && !(wd is >= 0 and <= 1))
        {
            errors["weightDecay"] = [$"weightDecay must be in [0, 1], got {wd}"];
        }

        if (change.Reason?.Length > maxReason)
        {
            errors["reason"] = [$"reason must be at most {maxReason} characters (configuration Jobs:MaxReasonLength), got {change.Reason.Length:N0}"];
        }

        return errors;
    }
}
