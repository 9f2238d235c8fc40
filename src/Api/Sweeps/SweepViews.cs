using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using TrainingService.Api.Persistence;
using TrainingService.Contracts.Sweeps;
using TrainingService.Contracts.Training;

namespace TrainingService.Api.Sweeps;

/// <summary>What a sweep shows of a trial's job: its state and the figures the sweep ranks by.</summary>
public sealed record TrialRow(Guid SweepId, int Trial, Guid JobId, RunState State, string? StopCode, string? Error, double? Value, int? ValueEpoch, int Epoch, long Step);

/// <summary>A sweep's views, built from its record and its trials' jobs: a trial's status is its job's state and stop code.</summary>
internal static class SweepViews
{
    public static Task<List<TrialRow>> RowsAsync(TrainingDb db, Guid[] sweepIds, CancellationToken cancellationToken) =>
        db.Jobs.AsNoTracking().Where(j => j.SweepId != null && sweepIds.Contains(j.SweepId.Value) && j.SweepTrial != null)
            .Select(j => new TrialRow(j.SweepId!.Value, j.SweepTrial!.Value, j.Id, j.State, j.StopCode, j.Error, j.SweepValue, j.SweepValueEpoch, j.Epoch, j.Step))
            .ToListAsync(cancellationToken);

    public static List<Dictionary<string, JsonNode?>> Params(SweepRecord sweep) =>
        JsonSerializer.Deserialize<List<Dictionary<string, JsonNode?>>>(sweep.TrialParams, JsonSerializerOptions.Web)!;

    public static IReadOnlyList<SweepTrial> Trials(SweepRecord sweep, IReadOnlyList<TrialRow> rows)
    {
        Dictionary<int, TrialRow> byIndex = rows.ToDictionary(r => r.Trial);
        return [.. Params(sweep).Select((settings, index) =>
        {
            TrialRow? row = byIndex.GetValueOrDefault(index);
            bool deleted = row is null && index < sweep.TrialsCreated; // its job was made, then deleted
            TrialStatus status = deleted ? TrialStatus.Cancelled : Status(row, sweep.State);
            return new SweepTrial
            {
                Index = index,
                JobId = row?.JobId,
                Status = status,
                Params = settings,
                Value = row?.Value,
                ValueEpoch = row?.ValueEpoch,
                Epoch = row?.Epoch ?? 0,
                Step = row?.Step ?? 0,
                StopCode = status is TrialStatus.Stopped or TrialStatus.Diverged or TrialStatus.Cancelled ? row?.StopCode ?? (row is null ? "sweep-cancelled" : null) : null,
                StopReason = deleted ? "its job was deleted after the sweep ended"
                    : status is TrialStatus.Stopped or TrialStatus.Diverged or TrialStatus.Failed or TrialStatus.Cancelled or TrialStatus.Waiting ? row?.Error : null,
            };
        })];
    }

    private static TrialStatus Status(TrialRow? row, RunState sweep) => row switch
    {
        null => sweep == RunState.Running ? TrialStatus.Pending : TrialStatus.Cancelled,
        { State: RunState.Paused, StopCode: ActiveJobs.WaitingAtRung } => TrialStatus.Waiting,
        { State: RunState.Queued or RunState.Running or RunState.Paused } => TrialStatus.Active,
        { State: RunState.Succeeded } => TrialStatus.Completed,
        { StopCode: "asha-cut" } => TrialStatus.Stopped,
        { StopCode: "diverged" } => TrialStatus.Diverged,
        { State: RunState.Failed } => TrialStatus.Failed,
        _ => TrialStatus.Cancelled,
    };

    /// <summary>Best first: by value for the goal, ties to the earlier epoch, then the lower index; trials without a value last, by index.</summary>
    public static IEnumerable<SweepTrial> Rank(IEnumerable<SweepTrial> trials, MetricGoal goal) =>
        trials.OrderBy(t => t.Value is null)
            .ThenBy(t => t.Value is double v ? (goal == MetricGoal.Maximize ? -v : v) : 0)
            .ThenBy(t => t.ValueEpoch ?? int.MaxValue)
            .ThenBy(t => t.Index);

    public static SweepSummary Summary(SweepRecord sweep, IReadOnlyList<TrialRow> rows) => Summary(sweep, rows, Trials(sweep, rows));

    private static SweepSummary Summary(SweepRecord sweep, IReadOnlyList<TrialRow> rows, IReadOnlyList<SweepTrial> trials)
    {
        SweepTrial? best = Rank(trials, sweep.Settings.Goal).FirstOrDefault(t => t.Value is not null);
        return new SweepSummary
        {
            Id = sweep.Id,
            Name = sweep.Name,
            State = sweep.State,
            Strategy = sweep.Settings.Strategy,
            Metric = sweep.Settings.Metric,
            Goal = sweep.Settings.Goal,
            Trials = sweep.Trials,
            Parallelism = sweep.Parallelism,
            Counts = Enum.GetValues<TrialStatus>().ToDictionary(s => s, s => trials.Count(t => t.Status == s)),
            Best = best is null ? null : new SweepBest(best.Index, best.JobId, best.Value!.Value, best.Params),
            Steps = rows.Sum(r => r.Step),
            Waiting = sweep.Waiting,
            Error = sweep.Error,
            CreatedAt = sweep.CreatedAt,
            FinishedAt = sweep.FinishedAt,
        };
    }

    public static SweepView View(SweepRecord sweep, IReadOnlyList<TrialRow> rows)
    {
        IReadOnlyList<SweepTrial> trials = Trials(sweep, rows);
        return new SweepView(Summary(sweep, rows, trials))
        {
            Settings = sweep.Settings, TrialList = trials, RangeTestJobId = sweep.RangeTestJobId, SuggestedLearningRate = sweep.SuggestedLearningRate,
        };
    }
}
