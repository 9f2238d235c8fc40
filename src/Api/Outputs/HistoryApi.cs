using System.Buffers;
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
/// CSV or JSON Lines (one row per value: step, epoch, time, tag, value), as columns (the rows without their time, a
/// number array per field: what the dashboard draws from) or as a TensorBoard event file, which also holds each layer's
/// activation histograms. Streamed from the stored history a chunk at a time, so a long run costs
/// the server no more memory than a short one. Columns of step scalars alone (the compare page's step metrics)
/// are read by the database out of the stored events (<see cref="StepScalars"/>); everything else from the events.
/// </summary>
public static class HistoryApi
{
    private static readonly string[] s_formats = ["csv", "jsonl", "columns", "tensorboard"];

    /// <summary>A row of the CSV and JSON Lines forms (a struct: a long run has millions of them).</summary>
    public readonly record struct HistoryRow(long Step, int Epoch, DateTime Time, string Tag, double Value);

    public static RouteGroupBuilder MapHistory(this RouteGroupBuilder jobs)
    {
        jobs.MapGet("/{id:guid}/history", History).AllowViewers().WithName("GetJobHistory")
            .WithSummary("A job's scalars for other tools: format=csv (default) or jsonl, one row per value (step, epoch, time, tag, value); "
                + "columns, JSON Lines of { tag, step: [], epoch: [], value: [] } (a line per tag and run of up to 1,000 events; no times); "
                + "or tensorboard, an event file (scalars and activation histograms) to open with `tensorboard --logdir`; "
                + "tags=step/loss,epoch/ keeps only those tags (a tag ending in / is a group); "
                + "fromStep and toStep keep the rows of those steps; points=N (10..50,000) downsamples what a chart needs: the range "
                + "(to the job's step so far when toStep is not given) in ⌈N/2⌉ buckets of equal width, each keeping per tag its lowest "
                + "and highest value and its first NaN or infinity, at their own steps")
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
        long? fromStep = null, long? toStep = null, int? points = null, CancellationToken cancellationToken = default)
    {
        if (!s_formats.Contains(format))
        {
            return Problems.Invalid("format", $"format must be csv, jsonl, columns or tensorboard, got \"{format}\"");
        }

        if (HistoryRange.Check(fromStep, toStep, points) is var (field, reason))
        {
            return Problems.Invalid(field, reason);
        }

        bool ranged = fromStep is not null || toStep is not null || points is not null;
        if (ranged && format == "tensorboard")
        {
            return Problems.Invalid(points is not null ? "points" : fromStep is not null ? "fromStep" : "toStep",
                "fromStep, toStep and points apply to csv, jsonl and columns; a TensorBoard file holds the whole run");
        }

        (TagFilter? filter, string? tagError) = TagFilter.Parse(tags);
        if (tagError is not null)
        {
            return Problems.Invalid("tags", tagError);
        }

        var job = await db.Jobs.AsNoTracking().VisibleTo(caller).Where(j => j.Id == id).Select(j => new { j.CreatedAt, j.Step, j.LastSeq }).FirstOrDefaultAsync(cancellationToken);
        if (job is null)
        {
            return Problems.NoSuchJob(id);
        }

        int chunkBytes = streaming.Value.MaxFrameBytes;
        long after = await StepScalars.StartAsync(db, id, fromStep, job.LastSeq, cancellationToken); // 0 without fromStep
        Func<Stream, Task> write = format switch
        {
            "tensorboard" => body => WriteEventFileAsync(body, Chunks(db, id, 0, chunkBytes, filter?.Kinds, cancellationToken), filter, job.CreatedAt, cancellationToken),
            "columns" when filter?.StepScalars is { } scalars => // the database reads the figures: no event parsed here
                body => WriteColumnsAsync(body, InRange(StepScalars.ReadAsync(db, id, chunkBytes, scalars, after, toStep, cancellationToken)), cancellationToken),
            "columns" => body => WriteColumnsAsync(body, InRange(Rows(Chunks(db, id, after, chunkBytes, filter?.Kinds, cancellationToken), filter)), cancellationToken),
            _ => body => WriteRowsAsync(body, InRange(Rows(Chunks(db, id, after, chunkBytes, filter?.Kinds, cancellationToken), filter)), format == "csv", cancellationToken),
        };
        IAsyncEnumerable<List<HistoryRow>> InRange(IAsyncEnumerable<List<HistoryRow>> rows) =>
            HistoryRange.Apply(rows, fromStep, toStep, points, job.Step, cancellationToken);

        string unix = new DateTimeOffset(DateTime.SpecifyKind(job.CreatedAt, DateTimeKind.Utc)).ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        return format switch
        {
            // TensorBoard reads the files whose names contain "tfevents".
            "tensorboard" => TypedResults.Stream(write, "application/octet-stream", $"events.out.tfevents.{unix}.job-{id:N}"),
            "jsonl" => TypedResults.Stream(write, "application/jsonl", $"job-{id:N}-history.jsonl"),
            "columns" => TypedResults.Stream(write, "application/jsonl", $"job-{id:N}-history-columns.jsonl"), // JSON Lines too: compressed as they are
            _ => TypedResults.Stream(write, "text/csv", $"job-{id:N}-history.csv"),
        };
    }

    /// <summary>The stored events after <paramref name="after"/> in seq order, a bounded chunk at a time (no transaction is held while the client reads).</summary>
    private static async IAsyncEnumerable<List<StreamEvent>> Chunks(
        TrainingDb db, Guid id, long after, int chunkBytes, IReadOnlyList<string>? kinds, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (HistoryChunk chunk in HistoryChunk.ReadAllAsync(db, id, after, int.MaxValue, chunkBytes, kinds, cancellationToken))
        {
            yield return [.. chunk.Json.Select(json => ReadStep(json) ?? JsonSerializer.Deserialize<StreamEvent>(json, StreamJson.Options)!)];
        }
    }

    /// <summary>Each chunk's rows of the tags asked for.</summary>
    private static async IAsyncEnumerable<List<HistoryRow>> Rows(IAsyncEnumerable<List<StreamEvent>> chunks, TagFilter? filter,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var scalars = new HistoryScalars();
        await foreach (List<StreamEvent> events in chunks.WithCancellation(cancellationToken))
        {
            yield return [.. events.SelectMany(scalars.Rows).Where(row => filter?.Includes(row.Tag) != false)];
        }
    }

    /// <summary>
    /// A step event — most of any history — read field by field, in about 60% of the serializer's time; null for
    /// any other event, or a field or value it does not expect, which the serializer then reads.
    /// </summary>
    private static StreamEvent? ReadStep(string json)
    {
        if (json.Length > 512)
        {
            return null;
        }

        Span<byte> utf8 = stackalloc byte[1536];
        var reader = new Utf8JsonReader(utf8[..Encoding.UTF8.GetBytes(json, utf8)]);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            return null;
        }

        bool isStep = false;
        long seq = 0;
        DateTime time = default;
        long? step = null;
        int? epoch = null;
        double? loss = null, learningRate = null, samplesPerSecond = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            ReadOnlySpan<byte> name = reader.ValueSpan; // a slice of utf8, still valid once the reader moves on
            if (reader.ValueIsEscaped || !reader.Read())
            {
                return null;
            }

            // In the order StepEvent.ToStream writes them; any other field (another kind's) is the serializer's.
            bool number = reader.TokenType == JsonTokenType.Number;
            bool ok;
            if (name.SequenceEqual("seq"u8))
            {
                ok = number && reader.TryGetInt64(out seq);
            }
            else if (name.SequenceEqual("kind"u8))
            {
                ok = isStep = reader.TokenType == JsonTokenType.String && reader.ValueTextEquals("step"u8);
            }
            else if (name.SequenceEqual("time"u8))
            {
                ok = reader.TokenType == JsonTokenType.String && reader.TryGetDateTime(out time);
            }
            else if (name.SequenceEqual("epoch"u8))
            {
                int value = 0;
                ok = number && reader.TryGetInt32(out value);
                epoch = value;
            }
            else if (name.SequenceEqual("step"u8))
            {
                long value = 0;
                ok = number && reader.TryGetInt64(out value);
                step = value;
            }
            else if (name.SequenceEqual("loss"u8))
            {
                ok = Double(ref reader, out loss);
            }
            else if (name.SequenceEqual("learningRate"u8))
            {
                ok = Double(ref reader, out learningRate);
            }
            else if (name.SequenceEqual("samplesPerSecond"u8))
            {
                ok = Double(ref reader, out samplesPerSecond);
            }
            else
            {
                ok = false;
            }

            if (!ok)
            {
                return null;
            }
        }

        // A step event always has its step and epoch (StepEvent.ToStream); without them, the serializer decides.
        return isStep && step is not null && epoch is not null && reader.TokenType == JsonTokenType.EndObject
            ? new StreamEvent { Seq = seq, Kind = "step", Time = time, Epoch = epoch, Step = step, Loss = loss, LearningRate = learningRate, SamplesPerSecond = samplesPerSecond }
            : null;
    }

    /// <summary>A number, or NaN and ±Infinity as the stream writes them (strings), as the serializer reads them.</summary>
    private static bool Double(ref Utf8JsonReader reader, out double? value)
    {
        value = null;
        if (reader.TokenType == JsonTokenType.Number && reader.TryGetDouble(out double number))
        {
            value = number;
        }
        else if (reader.TokenType == JsonTokenType.String)
        {
            value = reader.ValueTextEquals("NaN"u8) ? double.NaN
                : reader.ValueTextEquals("Infinity"u8) ? double.PositiveInfinity
                : reader.ValueTextEquals("-Infinity"u8) ? double.NegativeInfinity
                : null;
        }

        return value is not null;
    }

    private static async Task WriteRowsAsync(Stream body, IAsyncEnumerable<List<HistoryRow>> chunks, bool csv, CancellationToken cancellationToken)
    {
        await using var writer = new StreamWriter(body, new UTF8Encoding(false), bufferSize: 16 * 1024);
        if (csv)
        {
            await writer.WriteAsync("step,epoch,time,tag,value\n");
        }

        var line = new StringBuilder();
        await foreach (List<HistoryRow> rows in chunks.WithCancellation(cancellationToken))
        {
            foreach (HistoryRow row in rows)
            {
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

    /// <summary>
    /// columns: a JSON line per tag and chunk of events, { "tag", "step": [], "epoch": [], "value": [] } — CSV's rows without
    /// their time, one number array per field, so a reader parses a few arrays where CSV has a line per value. NaN and
    /// ±Infinity are strings, as in the stream. A chunk at a time, so memory stays bounded as for CSV.
    /// </summary>
    private static async Task WriteColumnsAsync(Stream body, IAsyncEnumerable<List<HistoryRow>> chunks, CancellationToken cancellationToken)
    {
        var columns = new Dictionary<string, List<HistoryRow>>(StringComparer.Ordinal);
        var buffer = new ArrayBufferWriter<byte>(64 * 1024);
        await using var json = new Utf8JsonWriter(buffer);
        await foreach (List<HistoryRow> chunk in chunks.WithCancellation(cancellationToken))
        {
            foreach (HistoryRow row in chunk)
            {
                if (!columns.TryGetValue(row.Tag, out List<HistoryRow>? rows))
                {
                    columns[row.Tag] = rows = [];
                }

                rows.Add(row);
            }

            foreach ((string tag, List<HistoryRow> rows) in columns)
            {
                if (rows.Count == 0)
                {
                    continue;
                }

                json.WriteStartObject();
                json.WriteString("tag", tag);
                json.WriteStartArray("step");
                rows.ForEach(r => json.WriteNumberValue(r.Step));
                json.WriteEndArray();
                json.WriteStartArray("epoch");
                rows.ForEach(r => json.WriteNumberValue(r.Epoch));
                json.WriteEndArray();
                json.WriteStartArray("value");
                foreach (HistoryRow r in rows)
                {
                    if (double.IsFinite(r.Value))
                    {
                        json.WriteNumberValue(r.Value);
                    }
                    else
                    {
                        json.WriteStringValue(r.Value.ToString(CultureInfo.InvariantCulture)); // NaN, Infinity, -Infinity
                    }
                }

                json.WriteEndArray();
                json.WriteEndObject();
                json.Flush();
                json.Reset();
                buffer.Write("\n"u8);
                rows.Clear();
            }

            await body.WriteAsync(buffer.WrittenMemory, cancellationToken);
            buffer.ResetWrittenCount();
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

        private readonly Dictionary<string, bool> _included = new(StringComparer.Ordinal);

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

        /// <summary>
        /// The step scalars asked for, when the tags can name nothing else (only step events are read): the database can
        /// then read their figures (<see cref="Outputs.StepScalars"/>); otherwise null.
        /// </summary>
        public IReadOnlyList<(string Tag, string Field)>? StepScalars =>
            Kinds is ["step"] ? [.. Outputs.StepScalars.All.Where(s => Includes(s.Tag))] : null;

        private static bool Overlaps(string entry, string group) =>
            entry.StartsWith(group, StringComparison.Ordinal) || group.StartsWith(entry, StringComparison.Ordinal);

        /// <summary>Whether the tag is asked for; answered once per tag (a long run asks about the same few tags millions of times).</summary>
        public bool Includes(string tag)
        {
            if (!_included.TryGetValue(tag, out bool included))
            {
                _included[tag] = included = entries.Any(e => e.EndsWith('/') ? (tag + "/").StartsWith(e, StringComparison.Ordinal) : tag == e);
            }

            return included;
        }
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

        private static IEnumerable<HistoryRow> Present(StreamEvent e, long step, int epoch, params (string Tag, double? Value)[] values)
        {
            foreach ((string tag, double? value) in values)
            {
                if (value is double v)
                {
                    yield return new HistoryRow(step, epoch, e.Time, tag, v);
                }
            }
        }
    }
}
