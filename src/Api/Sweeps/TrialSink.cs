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
    /// resumed after a crash), otherwise judged and recorded. Stopping form: against the reports before it. Promotion
    /// form: it goes on at once only if it is the trial asha would promote now (<see cref="Asha.Next"/>), else it waits.
    /// </summary>
    public SweepRungRecord Report(Guid sweepId, int trial, JobClaim claim, int epoch, double value, Asha asha, MetricGoal goal)
    {
        using IServiceScope scope = scopes.CreateScope();
        TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
        using var transaction = db.Database.BeginTransaction(); // SQLite: BEGIN IMMEDIATE, the one writer
        Lock(db, sweepId);
        if (!db.Jobs.Any(j => j.Id == claim.JobId && j.Attempt == claim.Attempt))
        {
            throw new LeaseLostException(claim.JobId, claim.Attempt);
        }

        SweepRungRecord? recorded = db.SweepRungs.AsNoTracking().FirstOrDefault(r => r.SweepId == sweepId && r.Epoch == epoch && r.Trial == trial);
        if (recorded is not null)
        {
            return recorded;
        }

        List<SweepRungRecord> reports = [.. db.SweepRungs.AsNoTracking().Where(r => r.SweepId == sweepId && (asha.Promotes || r.Epoch == epoch))];
        List<double> earlier = [.. reports.Where(r => r.Epoch == epoch).Select(r => r.Value)];
        var report = new SweepRungRecord { SweepId = sweepId, Epoch = epoch, Trial = trial, Value = value, Earlier = earlier.Count, ReportedAt = DateTime.UtcNow };
        if (asha.Promotes)
        {
            Promotion? next = asha.Next([.. reports.Select(Entry), new RungEntry(trial, epoch, value, Waiting: true, Promoted: false)], goal, ending: false);
            report.Continued = next is { } p && p.Trial == trial && p.Epoch == epoch;
            report.Waiting = !report.Continued;
            report.Cutoff = report.Continued ? next!.Value.Cut : null;
        }
        else
        {
            report.Cutoff = asha.Cut(earlier, goal);
            report.Continued = asha.Continues(value, earlier, goal);
            if (!report.Continued)
            {
                db.Jobs.Where(j => j.Id == claim.JobId && j.Attempt == claim.Attempt).ExecuteUpdate(s => s.SetProperty(j => j.StopCode, TrialSink.AshaCut));
            }
        }

        db.SweepRungs.Add(report);
        db.SaveChanges();
        transaction.Commit();
        return report;
    }

    /// <summary>A stored report as asha's promotion rule reads it.</summary>
    internal static RungEntry Entry(SweepRungRecord r) => new(r.Trial, r.Epoch, r.Value, r.Waiting, r.Continued);

    /// <summary>
    /// On PostgreSQL, the sweep's advisory lock for the transaction: rung reports and promotions of one sweep are decided
    /// one at a time (on SQLite the write transaction already is the one writer).
    /// </summary>
    internal static void Lock(TrainingDb db, Guid sweepId)
    {
        if (db.Database.IsNpgsql())
        {
            db.Database.ExecuteSql($"SELECT pg_advisory_xact_lock({SweepLockClass}, {LockOf(sweepId)})");
        }
    }

    internal static async Task LockAsync(TrainingDb db, Guid sweepId, CancellationToken cancellationToken)
    {
        if (db.Database.IsNpgsql())
        {
            await db.Database.ExecuteSqlAsync($"SELECT pg_advisory_xact_lock({SweepLockClass}, {LockOf(sweepId)})", cancellationToken);
        }
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
/// Wraps a trial's event writer: every event goes on as it would; a full epoch's metric is recorded, a rung asks asha
/// (go on, stop, or — promotion form — pause there to wait), and a divergence alert (loss-explosion, non-finite) stops
/// the run before its next step. The decision is made as the epoch's event is published, so no step runs past the rung.
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
                    if (decision.Waiting)
                    {
                        control.Pause(WaitReason(decision, asha), ActiveJobs.WaitingAtRung); // checkpointed before the next step; the run ends, freeing its worker
                    }
                    else if (!decision.Continued)
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

    private string WaitReason(SweepRungRecord decision, Asha asha) => string.Create(CultureInfo.InvariantCulture,
        $"asha: waiting at the rung of epoch {decision.Epoch} with {SweepsApi.Name(trial.Metric)} {decision.Value:G4}, {decision.Earlier} trials having reported there before it; "
        + $"it trains on once it is among the best 1/{asha.ReductionFactor} of the trials there, and is cut if it is not when the sweep ends");

    private string Reason(SweepRungRecord decision, Asha asha) => string.Create(CultureInfo.InvariantCulture,
        $"asha: at the rung of epoch {decision.Epoch}, {SweepsApi.Name(trial.Metric)} {decision.Value:G4} is {(trial.Goal == MetricGoal.Maximize ? "below" : "above")} the cut {decision.Cutoff:G4}, "
        + $"the {(trial.Goal == MetricGoal.Maximize ? 100 - (100.0 / asha.ReductionFactor) : 100.0 / asha.ReductionFactor):0.#}th percentile of the {decision.Earlier} trials that reported there before it (η {asha.ReductionFactor})");
}
