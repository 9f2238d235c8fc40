using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using TrainingService.Api.Persistence;
using TrainingService.Contracts.Training;

namespace TrainingService.Api.Jobs;

/// <summary>What went wrong with a steering command: the HTTP status it maps to and the reasons, by field.</summary>
public sealed record SteeringError(int Status, string Title, Dictionary<string, string[]> Errors);

/// <summary>
/// A person steering a job that has not ended, through REST or the hub alike: new learning rate, momentum or weight
/// decay from the next step (recorded by the trainer as a hyperparameters event), or finish now keeping the model.
/// </summary>
public sealed class JobSteering(TrainingDb db, JobControls controls)
{
    public async Task<(JobRecord? Job, SteeringError? Error)> ChangeAsync(Guid id, HyperparameterChange? change, CancellationToken cancellationToken)
    {
        JobRecord? job = await db.Jobs.FirstOrDefaultAsync(j => j.Id == id, cancellationToken);
        if (job is null)
        {
            return (null, NotFound(id));
        }

        Hyperparameters current = job.Hyperparameters;
        var errors = new Dictionary<string, string[]>();
        if (change is null || (change.LearningRate, change.Momentum, change.WeightDecay) is (null, null, null))
        {
            errors["body"] = ["give at least one of learningRate, momentum, weightDecay"];
        }
        else
        {
            if (change.LearningRate is { } lr && !(lr is > 0 and <= 10))
            {
                errors["learningRate"] = [$"learningRate must be above 0 and at most 10, got {lr}"];
            }

            if (change.Momentum is { } momentum)
            {
                if (current.Optimizer != OptimizerKind.Sgd)
                {
                    errors["momentum"] = [$"momentum applies to the sgd optimizer; this job uses {JsonSerializer.Serialize(current.Optimizer).Trim('"')}"];
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

            if (change.Reason is { Length: > 200 })
            {
                errors["reason"] = [$"reason must be at most 200 characters, got {change.Reason.Length}"];
            }
        }

        if (errors.Count > 0)
        {
            return (job, new SteeringError(StatusCodes.Status400BadRequest, "The hyperparameters cannot be changed", errors));
        }

        if (job.State is RunState.Succeeded or RunState.Failed or RunState.Cancelled)
        {
            return (job, Ended(id, job.State, "change its hyperparameters"));
        }

        // The record holds the values from now on (what GET /jobs/{id} shows and a restarted service starts from);
        // the trainer applies the change before its next step and records it in the history.
        job.Hyperparameters = current with
        {
            LearningRate = change!.LearningRate ?? current.LearningRate,
            Momentum = change.Momentum ?? current.Momentum,
            WeightDecay = change.WeightDecay ?? current.WeightDecay,
        };
        await db.SaveChangesAsync(cancellationToken);
        controls.For(id).Change(change);
        return (job, null);
    }

    public async Task<(JobRecord? Job, SteeringError? Error)> FinishAsync(Guid id, CancellationToken cancellationToken)
    {
        JobRecord? job = await db.Jobs.AsNoTracking().FirstOrDefaultAsync(j => j.Id == id, cancellationToken);
        if (job is null)
        {
            return (null, NotFound(id));
        }

        if (job.State is not (RunState.Running or RunState.Paused))
        {
            return (job, Ended(id, job.State, "finish it early (only a running or paused job can)"));
        }

        controls.For(id).Finish();
        return (job, null);
    }

    private static SteeringError NotFound(Guid id) =>
        new(StatusCodes.Status404NotFound, "Not found", new() { ["id"] = [$"There is no job {id}."] });

    private static SteeringError Ended(Guid id, RunState state, string what) =>
        new(StatusCodes.Status409Conflict, "Conflict", new() { ["state"] = [$"Job {id} is {state}; cannot {what}."] });
}
