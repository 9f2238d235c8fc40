using System.Globalization;
using Microsoft.AspNetCore.Http.HttpResults;
using TrainingService.Api.Infrastructure;
using TrainingService.Training.Loop;

namespace TrainingService.Api.Jobs;

/// <summary>
/// Jobs:MaxHistoryBytesPerJob at admission. While a job runs, thinning its old layer statistics keeps its history under
/// the limit (HistoryThinning); what cannot be thinned (every step's loss, epochs, states, and each layers event's
/// seq, time and step) must fit in half of it, leaving the other half for statistics in full. A job whose run would
/// keep more is a 422.
/// </summary>
internal static class HistoryLimit
{
    public const string Key = "Jobs:MaxHistoryBytesPerJob";

    /// <summary>What a job may keep of the limit that thinning cannot take back.</summary>
    public static long KeptBudget(long max) => max / 2;

    /// <summary>422 naming the field that drives the estimate, the estimate, the limit, its key and what to change; null when it fits.</summary>
    public static ProblemHttpResult? Refuse(TrainingPlan plan, long max)
    {
        HistoryEstimate kept = HistoryEstimate.Of(plan).Kept;
        long budget = KeptBudget(max);
        if (kept.Bytes <= budget)
        {
            return null;
        }

        string statistics = kept.Measurements == 0 ? "no layer statistics" : $"{N(kept.Measurements)} layers events "
            + $"(statistics every {Steps(plan.Monitoring.StatsEvery)}) of ~{N(kept.MeasurementBytes)} bytes each once thinned";
        string? lessStatistics = kept.StatsEveryWithin(budget) switch
        {
            null => null,
            0 => "turn layer statistics off (monitoring.statsEvery 0)",
            long every => $"record statistics every {Steps(every)} instead (monitoring.statsEvery)",
        };
        long length = kept.LengthWithin(budget);
        string shorter = length < 1 ? "use a larger batch size (fewer steps)"
            : kept.LengthField == "hyperparameters.epochs" ? $"train at most {N(length)} epochs (hyperparameters.epochs)"
            : $"run at most {N(length)} steps ({kept.LengthField})";
        string advice = lessStatistics is null ? shorter
            : kept.DrivingField == "monitoring.statsEvery" ? $"{lessStatistics}, or {shorter}" : $"{shorter}, or {lessStatistics}";
        string detail = $"This job would keep about {N(kept.Bytes)} bytes of event history even with its layer statistics "
            + $"thinned: {N(kept.Steps)} steps of ~{N(kept.StepBytes)} bytes each (every step's loss is kept) and {statistics}. "
            + $"That is over {N(budget)} bytes, half the limit of {N(max)} bytes per job (configuration {Key}): a job keeps the "
            + $"other half for recent statistics in full. To fit, {advice}.";
        return Problems.About(StatusCodes.Status422UnprocessableEntity, kept.DrivingField, detail, "The job would store too much history",
        [
            new("limit", Key),
            new("estimatedBytes", kept.Bytes),
            new("limitBytes", max),
        ]);
    }

    private static string Steps(long every) => every == 1 ? "step" : $"{N(every)} steps";

    private static string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);
}
