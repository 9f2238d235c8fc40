using System.Data.Common;
using System.Runtime.CompilerServices;
using Microsoft.EntityFrameworkCore;
using TrainingService.Api.Persistence;

namespace TrainingService.Api.Streaming;

/// <summary>
/// A bounded run of a job's stored events, read in one short statement: the hub's catch-up and /events both read
/// history this way, so no reader keeps a read transaction open while a client is slow (on SQLite that would stop the WAL
/// from being checkpointed; on PostgreSQL it would hold back vacuum) and no page is larger than its byte budget.
/// </summary>
public sealed class HistoryChunk
{
    /// <summary>Each event's stored JSON, in seq order.</summary>
    public List<string> Json { get; } = [];

    /// <summary>The seq of the last event read; the cursor for the next chunk.</summary>
    public long LastSeq { get; private set; }

    /// <summary>The JSON's length (ASCII: the stream's JSON escapes everything else).</summary>
    public long Bytes { get; private set; }

    /// <summary>
    /// Events with afterSeq &lt; seq ≤ upTo, at most <paramref name="maxRows"/> and, after the first, while their JSON with a
    /// comma each stays within <paramref name="maxBytes"/>. The statement is finished before this returns.
    /// </summary>
    public static async Task<HistoryChunk> ReadAsync(
        TrainingDb db, Guid jobId, long afterSeq, long upTo, int maxRows, long maxBytes, CancellationToken cancellationToken, IReadOnlyList<string>? kinds = null)
    {
        var chunk = new HistoryChunk { LastSeq = afterSeq };
        await db.Database.OpenConnectionAsync(cancellationToken);
        try
        {
            await using DbCommand query = db.Sql.ReadChunk(db.Database.GetDbConnection(), jobId, afterSeq, upTo, maxRows, kinds);
            await using DbDataReader reader = await query.ExecuteReaderAsync(cancellationToken);
            long bytes = 2; // [ ]
            while (await reader.ReadAsync(cancellationToken))
            {
                string json = reader.GetString(1);
                bytes += json.Length + 1;
                if (bytes > maxBytes && chunk.Json.Count > 0)
                {
                    break;
                }

                chunk.Json.Add(json);
                chunk.LastSeq = reader.GetInt64(0);
                chunk.Bytes += json.Length;
            }
        }
        finally
        {
            await db.Database.CloseConnectionAsync(); // back to the pool while the caller sends the chunk
        }

        return chunk;
    }

    /// <summary>
    /// Every stored event after <paramref name="afterSeq"/> (of <paramref name="kinds"/>, when given), at most
    /// <paramref name="limit"/> in all, a chunk of up to 1,000 at a time: /events and /history read history this way.
    /// </summary>
    public static async IAsyncEnumerable<HistoryChunk> ReadAllAsync(
        TrainingDb db, Guid jobId, long afterSeq, int limit, long maxBytes, IReadOnlyList<string>? kinds,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        for (long after = afterSeq, left = limit; left > 0;)
        {
            HistoryChunk chunk = await ReadAsync(db, jobId, after, long.MaxValue, (int)Math.Min(left, 1000), maxBytes, cancellationToken, kinds);
            if (chunk.Json.Count == 0)
            {
                yield break;
            }

            yield return chunk;
            left -= chunk.Json.Count;
            after = chunk.LastSeq;
        }
    }
}
