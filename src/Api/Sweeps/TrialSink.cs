using System.Globalization;
using Microsoft.EntityFrameworkCore;
using TrainingService.Api.Jobs;
using TrainingService.Api.Persistence;
using TrainingService.Contracts.Sweeps;
using TrainingService.Contracts.Training;
using TrainingService.Training.Loop;
using TrainingService.Training.Sweeps;

namespace TrainingService.Api.Sweeps;

/// <summary>
/// The worker's side of a sweep, on the trial's training thread: records each full epoch's metric on the trial's job,
/// asks for asha's decision at a rung (under the sweep's lock, so reports are judged one at a time, in the order they
/// arrive), and stops the trial before its next step when it falls below the cut or diverges. Every write is fenced by
/// the run's attempt: a run that lost its job records nothing.
/// </summary>
public sealed class SweepRungs(IServiceScopeFactory scopes)
{
    /// <summary>The epoch's value on the trial's job, when better than its best so far.</summary>
    public void RecordEpoch(JobClaim claim, int epoch, double value, MetricGoal goal)
    {
        using IServiceScope scope = scopes.CreateScope();
        TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
        IQueryable<JobRecord> job = db.Jobs.Where(j => j.Id == claim.JobId && j.Attempt == claim.Attempt);
        job = goal == MetricGoal.Maximize
            ? job.Where(j => j.SweepValue == null || j.SweepValue < value)
            : job.Where(j => j.SweepValue == null || j.SweepValue > value);
        job.ExecuteUpdate(s => s.SetProperty(j => j.SweepValue, value).SetProperty(j => j.SweepValueEpoch, epoch));
    }

    /// <summary>
    /// asha's decision for the trial's report at a rung: the one already recorded, if this run replays a report (a run
    /// resumed after a crash), otherwise judged against the reports before it and recorded.
    /// </summary>
    public SweepRungRecord Report(Guid sweepId, int trial, JobClaim claim, int epoch, double value, Asha asha, MetricGoal goal)
    {
        using IServiceScope scope = scopes.CreateScope();
        TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
        using var transaction = db.Database.BeginTransaction(); // SQLite: BEGIN IMMEDIATE, the one writer
        if (db.Database.IsNpgsql())
        {
            db.Database.ExecuteSql($"SELECT pg_advisory_xact_lock({SweepLockClass}, {LockOf(sweepId)})");
        }

        if (!db.Jobs.Any(j => j.Id == claim.JobId && j.Attempt == claim.Attempt))
        {
            throw new LeaseLostException(claim.JobId, claim.Attempt);
        }

        SweepRungRecord? recorded = db.SweepRungs.AsNoTracking().FirstOrDefault(r => r.SweepId == sweepId && r.Epoch == epoch && r.Trial == trial);
        if (recorded is not null)
        {
            return recorded;
        }

        List<double> earlier = [.. db.SweepRungs.AsNoTracking().Where(r => r.SweepId == sweepId && r.Epoch == epoch).Select(r => r.Value)];
        var report = new SweepRungRecord
        {
            SweepId = sweepId,
            Epoch = epoch,
            Trial = trial,
            Value = value,
            Earlier = earlier.Count,
            Cutoff = asha.Cut(earlier, goal),
            Continued = asha.Continues(value, earlier, goal),
            ReportedAt = DateTime.UtcNow,
        };
        db.SweepRungs.Add(report);
        if (!report.Continued)
        {
            db.Jobs.Where(j => j.Id == claim.JobId && j.Attempt == claim.Attempt).ExecuteUpdate(s => s.SetProperty(j => j.StopCode, TrialSink.AshaCut));
        }

        db.SaveChanges();
        transaction.Commit();
        return report;
    }

    /// <summary>The trial's job is marked diverged (its run is stopped by the sink, or fails by itself on NaN).</summary>
    public void MarkDiverged(JobClaim claim)
    {
        using IServiceScope scope = scopes.CreateScope();
        scope.ServiceProvider.GetRequiredService<TrainingDb>().Jobs.Where(j => j.Id == claim.JobId && j.Attempt == claim.Attempt)
            .ExecuteUpdate(s => s.SetProperty(j => j.StopCode, TrialSink.Diverged));
    }

    /// <summary>The class key of sweeps' advisory locks on PostgreSQL ("SW").</summary>
    private const int SweepLockClass = 0x5357;

    private static int LockOf(Guid sweepId) => BitConverter.ToInt32(sweepId.ToByteArray(), 12) ^ BitConverter.ToInt32(sweepId.ToByteArray(), 0);
}

/// <summary>What a trial's run needs of its sweep: which trial, the metric, and asha's rungs (null: no rungs).</summary>
public sealed record TrialContext(Guid SweepId, int Trial, SweepMetricName Metric, MetricGoal Goal, Asha? Asha);

/// <summary>
/// Wraps a trial's event writer: every event goes on as it would; a full epoch's metric is recorded, a rung asks asha,
/// and a divergence alert (loss-explosion, non-finite) stops the run before its next step. The decision is made as the
/// epoch's event is published, so no step runs past the rung.
/// </summary>
public sealed class TrialSink(ITrainingSink inner, TrialContext trial, JobClaim claim, TrainingControl control, SweepRungs rungs, long stepsPerEpoch) : ITrainingSink
{
    public const string AshaCut = "asha-cut";
    public const string Diverged = "diverged";

    private long _lastStep;

    public void Publish(TrainingEvent trainingEvent)
    {
        inner.Publish(trainingEvent);
        switch (trainingEvent)
        {
            case StepEvent step:
                _lastStep = step.Step;
                break;
            case EpochEvent epoch when _lastStep == epoch.Epoch * stepsPerEpoch && !control.CancelRequested && Value(epoch) is double value:
                rungs.RecordEpoch(claim, epoch.Epoch, value, trial.Goal);
                if (trial.Asha is { } asha && asha.Rungs.Contains(epoch.Epoch))
                {
                    SweepRungRecord decision = rungs.Report(trial.SweepId, trial.Trial, claim, epoch.Epoch, value, asha, trial.Goal);
                    if (!decision.Continued)
                    {
                        control.Cancel(Reason(decision, asha), AshaCut);
                    }
                }

                break;
            case AlertEvent { Code: "loss-explosion" or "non-finite" } alert when !control.CancelRequested:
                rungs.MarkDiverged(claim);
                control.Cancel($"diverged: {alert.Code} at step {_lastStep}: {alert.Message}", Diverged);
                break;
        }
    }

    public long Flush() => inner.Flush();

    public void BeforeReplacingFiles() => inner.BeforeReplacingFiles();

    private double? Value(EpochEvent epoch) => trial.Metric switch
    {
        SweepMetricName.ValidationAccuracy => epoch.ValidationAccuracy,
        SweepMetricName.ValidationLoss => epoch.ValidationLoss,
        SweepMetricName.TrainAccuracy => epoch.TrainAccuracy,
        _ => epoch.TrainLoss,
    };

    private string Reason(SweepRungRecord decision, Asha asha) => string.Create(CultureInfo.InvariantCulture,
        $"asha: at the rung of epoch {decision.Epoch}, {SweepsApi.Name(trial.Metric)} {decision.Value:G4} is {(trial.Goal == MetricGoal.Maximize ? "below" : "above")} the cut {decision.Cutoff:G4}, "
        + $"the {(trial.Goal == MetricGoal.Maximize ? 100 - (100.0 / asha.ReductionFactor) : 100.0 / asha.ReductionFactor):0.#}th percentile of the {decision.Earlier} trials that reported there before it (η {asha.ReductionFactor})");
}
