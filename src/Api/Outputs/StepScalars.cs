using System.Data.Common;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using TrainingService.Api.Persistence;

namespace TrainingService.Api.Outputs;

/// <summary>
/// A job's step scalars (step/loss, step/learning_rate, step/samples_per_second) as history rows, read by the database
/// out of the stored step events (<see cref="EventSql.ReadStepFields"/>), so no event is parsed in .NET: /history's
/// columns of step tags alone (the compare page's step metrics) read them this way. The rows, their order and their chunks
/// are those of reading the events (HistoryChunk's bounds: up to 1,000 events within the byte budget), without times.
/// </summary>
internal static class StepScalars
{
    /// <summary>Each step scalar's tag and the step event's field it comes from, in the order the rows come.</summary>
    public static readonly IReadOnlyList<(string Tag, string Field)> All =
        [("step/loss", "loss"), ("step/learning_rate", "learningRate"), ("step/samples_per_second", "samplesPerSecond")];

    /// <summary>
    /// The rows of <paramref name="scalars"/>, a chunk of step events at a time, each read in one short statement; none
    /// past <paramref name="toStep"/> (a stored history's steps rise with its seqs: a run resumed from a checkpoint
    /// deletes the events after it first), so a zoom into a long run stops reading there.
    /// </summary>
    public static async IAsyncEnumerable<List<HistoryApi.HistoryRow>> ReadAsync(
        TrainingDb db, Guid jobId, long maxBytes, IReadOnlyList<(string Tag, string Field)> scalars, long afterSeq, long? toStep,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        string[] fields = [.. scalars.Select(s => s.Field)];
        int epoch = 0; // a step event without one keeps the last (as HistoryApi's reading of events does)
        for (long after = afterSeq; ;)
        {
            var rows = new List<HistoryApi.HistoryRow>();
            int events = 0;
            bool past = false;
            await db.Database.OpenConnectionAsync(cancellationToken);
            try
            {
                await using DbCommand query = db.Sql.ReadStepFields(db.Database.GetDbConnection(), jobId, after, 1000, fields);
                await using DbDataReader reader = await query.ExecuteReaderAsync(cancellationToken);
                long bytes = 2; // as HistoryChunk counts a chunk: [ ], and a comma each
                while (await reader.ReadAsync(cancellationToken))
                {
                    bytes += reader.GetInt64(1) + 1;
                    if (bytes > maxBytes && events > 0)
                    {
                        break;
                    }

                    events++;
                    after = reader.GetInt64(0);
                    if (reader.IsDBNull(2))
                    {
                        continue;
                    }

                    long step = reader.GetInt64(2);
                    if (step > toStep)
                    {
                        past = true;
                        break;
                    }

                    epoch = reader.IsDBNull(3) ? epoch : reader.GetInt32(3);
                    for (int i = 0; i < scalars.Count; i++)
                    {
                        if (Figure(reader, 4 + i) is double value)
                        {
                            rows.Add(new HistoryApi.HistoryRow(step, epoch, default, scalars[i].Tag, value));
                        }
                    }
                }
            }
            finally
            {
                await db.Database.CloseConnectionAsync(); // back to the pool while the caller sends the chunk
            }

            if (events == 0)
            {
                yield break;
            }

            yield return rows;
            if (past)
            {
                yield break;
            }
        }
    }

    /// <summary>
    /// The seq to read a stored history after for the steps from <paramref name="fromStep"/> on: just before the last
    /// step event under it (whose row the range then drops, but which gives the rows after it their epoch), or 0. A
    /// stored history's steps rise with its seqs, so this is a bisection over seqs, each probe one step event read
    /// through the step events' index: about log₂(seqs) one-row reads, so a zoom near the end of a long run does not
    /// read the run from its first step.
    /// </summary>
    public static async Task<long> StartAsync(TrainingDb db, Guid jobId, long? fromStep, long lastSeq, CancellationToken cancellationToken)
    {
        if (fromStep is not long from || from <= 0)
        {
            return 0;
        }

        await db.Database.OpenConnectionAsync(cancellationToken);
        try
        {
            // The step of the first step event after a seq; none: past every step.
            async Task<long> FirstStepAfter(long seq)
            {
                await using DbCommand query = db.Sql.ReadStepFields(db.Database.GetDbConnection(), jobId, seq, 1, []);
                await using DbDataReader reader = await query.ExecuteReaderAsync(cancellationToken);
                return !await reader.ReadAsync(cancellationToken) ? long.MaxValue : reader.IsDBNull(2) ? long.MinValue : reader.GetInt64(2);
            }

            if (await FirstStepAfter(0) >= from)
            {
                return 0;
            }

            // FirstStepAfter(lo) < from ≤ FirstStepAfter(hi), until hi = lo + 1: then the event at hi is the last step under from.
            long lo = 0, hi = Math.Max(lastSeq, 1);
            if (await FirstStepAfter(hi) < from)
            {
                return hi - 1; // steps stored after the job's row was read: every one so far is under from
            }

            while (hi - lo > 1)
            {
                long mid = lo + ((hi - lo) / 2);
                if (await FirstStepAfter(mid) >= from)
                {
                    hi = mid;
                }
                else
                {
                    lo = mid;
                }
            }

            return hi - 1;
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }

    /// <summary>
    /// A field's JSON text: a number, or NaN and ±Infinity as the stream writes them (strings), read as the serializer
    /// reads them (the same correctly rounded parse); null when absent or null. Anything else fails, as it does there.
    /// </summary>
    private static double? Figure(DbDataReader reader, int ordinal)
    {
        if (reader.IsDBNull(ordinal))
        {
            return null;
        }

        string json = reader.GetString(ordinal);
        return json switch
        {
            "null" => null,
            "\"NaN\"" => double.NaN,
            "\"Infinity\"" => double.PositiveInfinity,
            "\"-Infinity\"" => double.NegativeInfinity,
            _ when double.TryParse(json, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent,
                CultureInfo.InvariantCulture, out double value) && double.IsFinite(value) => value,
            _ => throw new JsonException($"A step event's figure is neither a number nor NaN or ±Infinity: {json}"),
        };
    }
}
