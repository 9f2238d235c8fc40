using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using TrainingService.Api.Access;
using TrainingService.Api.Infrastructure;
using TrainingService.Api.Persistence;
using TrainingService.Api.Streaming;
using TrainingService.Contracts.Streaming;
using TrainingService.Training.Export;

namespace TrainingService.Api.Outputs;

/// <summary>
/// GET /jobs/{id}/history: a job's scalars — each step's loss, learning rate and speed, each epoch's train and validation
/// loss and accuracy, each statistics step's per-layer activation figures and per-parameter norms and update ratios — as
/// CSV or JSON Lines (one row per value: step, epoch, time, tag, value) or as a TensorBoard event file, which also
/// holds each layer's activation histograms. Streamed from the stored history a chunk at a time, so a long run costs
/// the server no more memory than a short one.
/// </summary>
public static class HistoryApi
{
    private static readonly string[] s_formats = ["csv", "jsonl", "tensorboard"];

    /// <summary>A row of the CSV and JSON Lines forms.</summary>
    public sealed record HistoryRow(long Step, int Epoch, DateTime Time, string Tag, double Value);

    public static RouteGroupBuilder MapHistory(this RouteGroupBuilder jobs)
    {
        jobs.MapGet("/{id:guid}/history", History).AllowViewers().WithName("GetJobHistory")
            .WithSummary("A job's scalars for other tools: format=csv (default) or jsonl, one row per value (step, epoch, time, tag, value); "
                + "or tensorboard, an event file (scalars and activation histograms) to open with `tensorboard --logdir`; "
                + "tags=step/loss,epoch/ keeps only those tags (a tag ending in / is a group)")
            .WithDescription("Tags: step/loss, step/learning_rate, step/samples_per_second; epoch/train_loss, epoch/train_accuracy, "
                + "epoch/validation_loss, epoch/validation_accuracy (at the epoch's last step); activations/<layer>/mean, std, zero_fraction, "
                + "inactive_units, saturated; parameters/<name>/norm, grad_norm, update_ratio; and in the event file, activations/<layer> histograms. "
                + "What is stored so far: a running job's history grows, and a long run's oldest steps are thinned (docs/streaming.md).")
            .Produces(StatusCodes.Status200OK, contentType: "text/csv")
            .Produces(StatusCodes.Status200OK, contentType: "application/jsonl")
            .Produces(StatusCodes.Status200OK, contentType: "application/octet-stream");
        return jobs;
    }

    public static async Task<Results<PushStreamHttpResult, ProblemHttpResult>> History(
        Guid id, TrainingDb db, Caller caller, IOptions<StreamingOptions> streaming, string format = "csv", string? tags = null,
        CancellationToken cancellationToken = default)
    {
        if (!s_formats.Contains(format))
        {
            return Problems.Invalid("format", $"format must be csv, jsonl or tensorboard, got \"{format}\"");
        }

        (TagFilter? filter, string? tagError) = TagFilter.Parse(tags);
        if (tagError is not null)
        {
            return Problems.Invalid("tags", tagError);
        }

        var job = await db.Jobs.AsNoTracking().VisibleTo(caller).Where(j => j.Id == id).Select(j => new { j.CreatedAt }).FirstOrDefaultAsync(cancellationToken);
        if (job is null)
        {
            return Problems.NoSuchJob(id);
        }

        int chunkBytes = streaming.Value.MaxFrameBytes;
        Func<Stream, Task> write = format switch
        {
            "tensorboard" => body => WriteEventFileAsync(body, Chunks(db, id, chunkBytes, filter?.Kinds, cancellationToken), filter, job.CreatedAt, cancellationToken),
            _ => body => WriteRowsAsync(body, Chunks(db, id, chunkBytes, filter?.Kinds, cancellationToken), filter, format == "csv", cancellationToken),
        };
        string unix = new DateTimeOffset(DateTime.SpecifyKind(job.CreatedAt, DateTimeKind.Utc)).ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        return format switch
        {
            // TensorBoard reads the files whose names contain "tfevents".
            "tensorboard" => TypedResults.Stream(write, "application/octet-stream", $"events.out.tfevents.{unix}.job-{id:N}"),
            "jsonl" => TypedResults.Stream(write, "application/jsonl", $"job-{id:N}-history.jsonl"),
            _ => TypedResults.Stream(write, "text/csv", $"job-{id:N}-history.csv"),
        };
    }

    /// <summary>The stored events in seq order, a bounded chunk at a time (no transaction is held while the client reads).</summary>
    private static async IAsyncEnumerable<List<StreamEvent>> Chunks(
        TrainingDb db, Guid id, int chunkBytes, IReadOnlyList<string>? kinds, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (HistoryChunk chunk in HistoryChunk.ReadAllAsync(db, id, 0, int.MaxValue, chunkBytes, kinds, cancellationToken))
        {
            yield return [.. chunk.Json.Select(json => JsonSerializer.Deserialize<StreamEvent>(json, StreamJson.Options)!)];
        }
    }

    private static async Task WriteRowsAsync(Stream body, IAsyncEnumerable<List<StreamEvent>> chunks, TagFilter? filter, bool csv, CancellationToken cancellationToken)
    {
        await using var writer = new StreamWriter(body, new UTF8Encoding(false), bufferSize: 16 * 1024);
        if (csv)
        {
            await writer.WriteAsync("step,epoch,time,tag,value\n");
        }

        var scalars = new HistoryScalars();
        var line = new StringBuilder();
        await foreach (List<StreamEvent> events in chunks.WithCancellation(cancellationToken))
        {
            foreach (StreamEvent e in events)
            {
                foreach (HistoryRow row in scalars.Rows(e))
                {
                    if (filter?.Includes(row.Tag) == false)
                    {
                        continue;
                    }

                    line.Clear();
                    if (csv)
                    {
                        line.Append(CultureInfo.InvariantCulture, $"{row.Step},{row.Epoch},{row.Time:yyyy-MM-ddTHH:mm:ss.fffffffZ},").Append(CsvField(row.Tag))
                            .Append(',').Append(row.Value.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
                    }
                    else
                    {
                        line.Append(JsonSerializer.Serialize(row, StreamJson.Options)).Append('\n');
                    }

                    await writer.WriteAsync(line, cancellationToken);
                }
            }
        }
    }

    private static async Task WriteEventFileAsync(
        Stream body, IAsyncEnumerable<List<StreamEvent>> chunks, TagFilter? filter, DateTime createdAt, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        TensorBoardEvents.WriteVersion(buffer, WallTime(createdAt));
        var scalars = new HistoryScalars();
        await foreach (List<StreamEvent> events in chunks.WithCancellation(cancellationToken))
        {
            foreach (StreamEvent e in events)
            {
                double wallTime = WallTime(e.Time);
                List<HistoryRow> rows = [.. scalars.Rows(e).Where(r => filter?.Includes(r.Tag) != false)];
                if (rows.Count > 0)
                {
                    TensorBoardEvents.WriteScalars(buffer, wallTime, rows[0].Step, rows.Select(r => (r.Tag, r.Value)));
                }

                foreach (var layer in (e.Layers ?? []).Where(l => filter?.Includes($"activations/{l.Name}") != false))
                {
                    TensorBoardEvents.WriteHistogram(buffer, wallTime, e.Step ?? 0, $"activations/{layer.Name}", layer.Min, layer.Max, layer.Histogram, layer.Mean, layer.Std);
                }
            }

            await body.WriteAsync(buffer.GetBuffer().AsMemory(0, (int)buffer.Length), cancellationToken);
            buffer.SetLength(0);
        }

        await body.WriteAsync(buffer.GetBuffer().AsMemory(0, (int)buffer.Length), cancellationToken);
    }

    private static double WallTime(DateTime utc) => (DateTime.SpecifyKind(utc, DateTimeKind.Utc) - DateTime.UnixEpoch).TotalSeconds;

    /// <summary>RFC 4180: quoted when it holds a comma, a quote or a line break.</summary>
    private static string CsvField(string value) =>
        value.AsSpan().IndexOfAny(",\"\r\n") < 0 ? value : "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    /// <summary>
    /// ?tags=: comma-separated tags, each exact (step/loss) or, ending in a slash, a group (epoch/, activations/conv1/ —
    /// which takes the layer's histogram too).
    /// </summary>
    private sealed class TagFilter(string[] entries)
    {
        private const int MaxEntries = 50;
        private const int MaxLength = 200;

        public static (TagFilter? Filter, string? Error) Parse(string? tags)
        {
            if (tags is null)
            {
                return (null, null);
            }

            string[] entries = tags.Split(',', StringSplitOptions.TrimEntries);
            if (entries.Length > MaxEntries)
            {
                return (null, $"at most {MaxEntries} tags, got {entries.Length}");
            }

            return entries.FirstOrDefault(e => e.Length is 0 or > MaxLength) is { } bad
                ? (null, $"each tag is 1..{MaxLength} characters (an exact tag such as step/loss, or a group ending in / such as epoch/), got \"{(bad.Length > 40 ? bad[..40] + "…" : bad)}\"")
                : (new TagFilter(entries), null);
        }

        /// <summary>
        /// The kinds of events the tags come from, so the others are not read: steps always (an epoch's and a statistics
        /// step's rows take their step and epoch from the steps before them), epochs and layers events when asked for.
        /// </summary>
        public IReadOnlyList<string> Kinds { get; } =
        [
            "step",
            .. entries.Any(e => Overlaps(e, "epoch/")) ? ["epoch"] : Array.Empty<string>(),
            .. entries.Any(e => Overlaps(e, "activations/") || Overlaps(e, "parameters/")) ? ["layers"] : Array.Empty<string>(),
        ];

        private static bool Overlaps(string entry, string group) =>
            entry.StartsWith(group, StringComparison.Ordinal) || group.StartsWith(entry, StringComparison.Ordinal);

        public bool Includes(string tag) =>
            entries.Any(e => e.EndsWith('/') ? (tag + "/").StartsWith(e, StringComparison.Ordinal) : tag == e);
    }

    /// <summary>
    /// Turns events into rows, in seq order: an epoch's figures are placed at the last step seen (the epoch's end), so
    /// they line up with the step curves; a statistics step's rows carry the epoch of the step before them.
    /// </summary>
    private sealed class HistoryScalars
    {
        private long _step;
        private int _epoch;

        public IEnumerable<HistoryRow> Rows(StreamEvent e)
        {
            switch (e.Kind)
            {
                case "step" when e.Step is long step:
                    _step = step;
                    _epoch = e.Epoch ?? _epoch;
                    return Present(e, step, _epoch, ("step/loss", e.Loss), ("step/learning_rate", e.LearningRate), ("step/samples_per_second", e.SamplesPerSecond));
                case "epoch":
                    return Present(e, _step, e.Epoch ?? _epoch, ("epoch/train_loss", e.TrainLoss), ("epoch/train_accuracy", e.TrainAccuracy),
                        ("epoch/validation_loss", e.ValidationLoss), ("epoch/validation_accuracy", e.ValidationAccuracy));
                case "layers" when e.Step is long at:
                    var values = new List<(string, double?)>();
                    foreach (var layer in e.Layers ?? [])
                    {
                        string tag = $"activations/{layer.Name}/";
                        values.AddRange([(tag + "mean", layer.Mean), (tag + "std", layer.Std), (tag + "zero_fraction", layer.ZeroFraction),
                            (tag + "inactive_units", layer.InactiveUnits), (tag + "saturated", layer.Saturated)]);
                    }

                    foreach (var parameter in e.Parameters ?? [])
                    {
                        string tag = $"parameters/{parameter.Name}/";
                        values.AddRange([(tag + "norm", parameter.Norm), (tag + "grad_norm", parameter.GradNorm), (tag + "update_ratio", parameter.UpdateRatio)]);
                    }

                    return Present(e, at, _epoch, [.. values]);
                default:
                    return [];
            }
        }

        private static IEnumerable<HistoryRow> Present(StreamEvent e, long step, int epoch, params (string Tag, double? Value)[] values) =>
            values.Where(v => v.Value is not null).Select(v => new HistoryRow(step, epoch, e.Time, v.Tag, v.Value!.Value));
    }
}
