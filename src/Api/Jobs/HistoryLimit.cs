using System.Globalization;
using Microsoft.AspNetCore.Http.HttpResults;
using TrainingService.Api.Infrastructure;
using TrainingService.Training.Loop;

namespace TrainingService.Api.Jobs;

/// <summary>Jobs:MaxHistoryBytesPerJob at admission: a job whose whole run would store more event history is a 422.</summary>
internal static class HistoryLimit
{
    public const string Key = "Jobs:MaxHistoryBytesPerJob";

    /// <summary>422 naming the field that drives the estimate, the estimate, the limit, its key and what to change; null when it fits.</summary>
    public static ProblemHttpResult? Refuse(TrainingPlan plan, long max)
    {
        HistoryEstimate estimate = HistoryEstimate.Of(plan);
        if (estimate.Bytes <= max)
        {
            return null;
        }

        string statistics = estimate.Measurements == 0 ? "no layer statistics" : $"layer statistics of {estimate.Layers} layers and "
            + $"{estimate.ParameterTensors} parameter tensors every {Steps(plan.Monitoring.StatsEvery)}, {N(estimate.Measurements)} records "
            + $"of ~{N(estimate.MeasurementBytes)} bytes";
        string? lessStatistics = estimate.StatsEveryWithin(max) switch
        {
            null => null,
            0 => "turn layer statistics off (monitoring.statsEvery 0)",
            long every => $"record statistics every {Steps(every)} instead (monitoring.statsEvery)",
        };
        long length = estimate.LengthWithin(max);
        string shorter = length < 1 ? "use a larger batch size (fewer steps)"
            : estimate.LengthField == "hyperparameters.epochs" ? $"train at most {N(length)} epochs (hyperparameters.epochs)"
            : $"run at most {N(length)} steps ({estimate.LengthField})";
        string advice = lessStatistics is null ? shorter
            : estimate.DrivingField == "monitoring.statsEvery" ? $"{lessStatistics}, or {shorter}" : $"{shorter}, or {lessStatistics}";
        string detail = $"This job would store about {N(estimate.Bytes)} bytes of event history: {N(estimate.Steps)} steps of "
            + $"~{N(estimate.StepBytes)} bytes each and {statistics}. That is over the limit of {N(max)} bytes per job "
            + $"(configuration {Key}); {advice}.";
        return Problems.About(StatusCodes.Status422UnprocessableEntity, estimate.DrivingField, detail, "The job would store too much history",
        [
            new("limit", Key),
            new("estimatedBytes", estimate.Bytes),
            new("limitBytes", max),
        ]);
    }

    private static string Steps(long every) => every == 1 ? "step" : $"{N(every)} steps";

    private static string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);
}
