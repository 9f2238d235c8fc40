using System.Data.Common;
using System.Globalization;
using TrainingService.Contracts.Streaming;
using TrainingService.Training.Loop;

namespace TrainingService.Api.Persistence;

/// <summary>
/// Keeps each job's stored history under Jobs:MaxHistoryBytesPerJob while it runs: every step's loss stays, and layer
/// statistics are thinned with age. Once a job's history passes 90% of the limit, thinning passes run until it is under
/// 75%. A pass moves the thinned boundary half-way from where it was to the newest event; up to the boundary, only the
/// first full layers event of each block of seqs keeps its statistics, the rest become stubs (seq, kind, time, step,
/// "thinned": true). While one pass is not enough the block doubles, so the older part is kept ever more sparsely as the
/// run grows; what a pass thins is never brought back, and what it keeps later passes keep or thin (blocks nest). The
/// newest events stay in full. Rows are rewritten in place, so seqs stay 1…n with no gap. Admission (HistoryLimit)
/// makes sure what cannot be thinned fits. Run by the event pump alone, in its transaction, a bounded amount per batch.
/// </summary>
public sealed class HistoryThinning(long maxBytes)
{
    /// <summary>The filter of the index of full layers events; a stub is far shorter than any full one.</summary>
    public const string FullLayersFilter = "\"Kind\" = 'layers' AND \"Bytes\" > 160";

    // Rewriting reads each row thinned: at most this many bytes of them per batch, so a batch stays short.
    private const long RewriteBytesPerBatch = 16L << 20;
    private const int RowsPerQuery = 256;
    private const int PassesPerBatch = 8;

    // Jobs over the low mark with a pass under way. In memory: after a restart, or once a job is under the low mark, the
    // next pass starts from the first seq again, which rewrites nothing twice (stubs are not in the index).
    private readonly Dictionary<Guid, Pass> _passes = [];

    private long High => maxBytes / 10 * 9;

    private long Low => maxBytes / 4 * 3;

    /// <summary>The bytes a stored event counts for: its JSON and its row.</summary>
    public static long Cost(string kind, int jsonBytes) =>
        jsonBytes + HistoryEstimate.RowBytes + (kind == "step" ? HistoryEstimate.StepFiguresBytes : 0);

    /// <summary>
    /// Thin <paramref name="job"/>'s history if it is over the limit's high mark (or a pass is under way), updating its
    /// HistoryBytes and thinning fields; true when this is the first time the job's history is thinned.
    /// </summary>
    public async Task<bool> ThinAsync(EventSql sql, DbTransaction transaction, JobRecord job)
    {
        if (!_passes.TryGetValue(job.Id, out Pass? pass))
        {
            if (job.HistoryBytes <= High)
            {
                return false;
            }

            pass = new Pass { Cursor = long.MaxValue, Fresh = true }; // over the high mark: start a pass at the block as it is
        }

        bool first = job.HistoryThinnedSeq == 0;
        long budget = RewriteBytesPerBatch;
        for (int passes = 0; job.HistoryBytes > Low && budget > 0 && passes <= PassesPerBatch;)
        {
            if (pass.Cursor >= job.HistoryThinnedSeq)
            {
                long window = job.LastSeq - job.HistoryThinnedSeq;
                if (window < 2 || passes == PassesPerBatch)
                {
                    break; // nothing newer to thin: wait for the next batch
                }

                job.HistoryThinnedSeq = job.LastSeq - (window / 2);
                job.HistoryBlock = job.HistoryBlock == 0 ? FirstBlock(job.Monitoring.StatsEvery)
                    : pass.Fresh ? job.HistoryBlock
                    : Math.Min(job.HistoryBlock * 2, 1L << 40); // one pass was not enough: keep fewer
                pass = new Pass { Cursor = 0, KeptBlock = -1 };
                passes++;
            }

            List<(long Seq, int Bytes)> full = await FullLayersAsync(sql, transaction, job.Id, pass.Cursor, job.HistoryThinnedSeq);
            if (full.Count == 0)
            {
                pass.Cursor = job.HistoryThinnedSeq;
                continue;
            }

            var thin = new List<(long Seq, int Bytes)>();
            foreach ((long seq, int bytes) in full)
            {
                pass.Cursor = seq;
                long block = seq / job.HistoryBlock;
                if (block != pass.KeptBlock)
                {
                    pass.KeptBlock = block; // the first in its block: kept in full
                    continue;
                }

                thin.Add((seq, bytes));
                budget -= bytes;
                if (budget <= 0)
                {
                    break;
                }
            }

            if (full.Count < RowsPerQuery && pass.Cursor == full[^1].Seq && budget > 0)
            {
                pass.Cursor = job.HistoryThinnedSeq; // read to the boundary: this pass is done
            }

            job.HistoryBytes -= await sql.RewriteAsync(transaction, job.Id, thin);
        }

        if (job.HistoryBytes <= Low)
        {
            _passes.Remove(job.Id);
        }
        else
        {
            _passes[job.Id] = pass;
        }

        return first && job.HistoryThinnedSeq > 0;
    }

    /// <summary>The job has ended: no pass of its is kept in memory (the next event it gets, if any, starts afresh).</summary>
    public void Ended(Guid jobId) => _passes.Remove(jobId);

    /// <summary>
    /// Deletes the job's history after <paramref name="seq"/> (a run resuming from an older checkpoint), taking its
    /// bytes off the job's count; thinning from there on is forgotten. Reads only the rows deleted: a few hundred steps'.
    /// </summary>
    public async Task TruncateAsync(EventSql sql, DbTransaction transaction, JobRecord job, long seq)
    {
        await using (DbCommand delete = sql.Truncate(transaction, job.Id, seq))
        await using (DbDataReader deleted = await delete.ExecuteReaderAsync())
        {
            while (await deleted.ReadAsync())
            {
                job.HistoryBytes -= Cost(deleted.GetString(1), deleted.GetInt32(0));
            }
        }

        job.HistoryThinnedSeq = Math.Min(job.HistoryThinnedSeq, seq);
        _passes.Remove(job.Id);
    }

    private sealed class Pass
    {
        /// <summary>The last seq looked at; at or past the boundary once the pass is done.</summary>
        public long Cursor { get; set; }

        /// <summary>The block of the last event kept in full.</summary>
        public long KeptBlock { get; set; } = -1;

        /// <summary>Not yet started, and the first of its round: it thins at the block as it is.</summary>
        public bool Fresh { get; init; }
    }

    /// <summary>The alert a job's history gets when thinning starts (its writer numbers and sends it).</summary>
    public StreamEvent Notice(JobRecord job) => new()
    {
        Kind = "alert",
        Code = "history-thinned",
        Severity = "info",
        Step = job.Step,
        Message = string.Create(CultureInfo.InvariantCulture, $"This job's event history passed 90% of the {maxBytes:N0} bytes a job may keep (Jobs:MaxHistoryBytesPerJob). From now on its older layer statistics are thinned to stay under it: the newest stay in full, older ones are kept ever more sparsely, and every step's loss is kept."),
        Suggestion = "To keep more statistics in full, record them less often (monitoring.statsEvery) or raise Jobs:MaxHistoryBytesPerJob.",
    };

    // A block of at least two layers events' worth of seqs (a step event each statsEvery steps, a layers event), a power of two.
    private static long FirstBlock(int statsEvery) => (long)System.Numerics.BitOperations.RoundUpToPowerOf2((ulong)Math.Max(2, 2 * (statsEvery + 1)));

    private static async Task<List<(long Seq, int Bytes)>> FullLayersAsync(EventSql sql, DbTransaction transaction, Guid jobId, long after, long upTo)
    {
        await using DbCommand query = sql.FullLayers(transaction, jobId, after, upTo, RowsPerQuery);
        var rows = new List<(long, int)>(RowsPerQuery);
        await using DbDataReader reader = await query.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            rows.Add((reader.GetInt64(0), reader.GetInt32(1)));
        }

        return rows;
    }
}
