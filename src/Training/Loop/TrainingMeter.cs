using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace TrainingService.Training.Loop;

/// <summary>
/// What the trainer measures of itself for whoever listens (the service exports it with OpenTelemetry): how long
/// checkpoints take, the flush of the events before them included.
/// </summary>
public static class TrainingMeter
{
    public const string Name = "TrainingService.Training";

    private static readonly Meter s_meter = new(Name);

    private static readonly Histogram<double> s_checkpointSeconds = s_meter.CreateHistogram<double>(
        "trainingservice.checkpoint.duration", unit: "s", description: "Time to write a checkpoint, the flush of the events before it included");

    /// <summary>Times a checkpoint written by <paramref name="save"/>.</summary>
    public static void Checkpoint(Action save)
    {
        long start = Stopwatch.GetTimestamp();
        save();
        s_checkpointSeconds.Record(Stopwatch.GetElapsedTime(start).TotalSeconds);
    }
}
