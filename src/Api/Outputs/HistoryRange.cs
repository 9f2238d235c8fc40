using System.Runtime.CompilerServices;

namespace TrainingService.Api.Outputs;

/// <summary>
/// /history's fromStep, toStep and points: the rows of a range of steps, and at most about <c>points</c> of them per
/// tag, so a chart of a long run (or of 20 long runs) asks for what it can draw rather than every step, and asks again
/// for a zoomed range. The steps from..to are split into ⌈points ÷ 2⌉ buckets of equal width; each bucket keeps, per
/// tag, its row with the lowest value and its row with the highest (the spike survives: what TensorBoard's and W&amp;B's
/// reservoir samples can lose), and its first NaN or infinity, if any (a divergence is never sampled away); the last
/// bucket also keeps the tag's last row, so a curve reaches its end even where its values are equal. The rows
/// kept are real rows, at their own steps, in step order per tag. A row past <c>to</c> (a running job's newer steps)
/// falls in buckets of the same width. Memory: the open bucket of each tag, whatever the history's length.
/// </summary>
public sealed class HistoryRange
{
    public const int MinPoints = 10;
    public const int MaxPoints = 50_000;

    private readonly long _from;
    private readonly long _last;
    private readonly long _width;
    private readonly Dictionary<string, Bucket> _open = new(StringComparer.Ordinal);

    private HistoryRange(long from, long last, long width) => (_from, _last, _width) = (from, last, width);

    /// <summary>Checks the query: each figure in its bounds, or the field and why not.</summary>
    public static (string Field, string Reason)? Check(long? fromStep, long? toStep, int? points)
    {
        if (fromStep < 0)
        {
            return ("fromStep", $"fromStep must be 0 or more, got {fromStep}");
        }

        if (toStep < (fromStep ?? 0))
        {
            return ("toStep", $"toStep must be at least fromStep ({fromStep ?? 0}), got {toStep}");
        }

        return points is < MinPoints or > MaxPoints ? ("points", $"points must be {MinPoints}..{MaxPoints:N0}, got {points}") : null;
    }

    /// <summary>
    /// The rows of <paramref name="chunks"/> from <paramref name="fromStep"/> to <paramref name="toStep"/>, downsampled
    /// when <paramref name="points"/> is given (over the steps up to <paramref name="lastStep"/> when no toStep is);
    /// the chunks as they are when nothing is asked for.
    /// </summary>
    public static IAsyncEnumerable<List<HistoryApi.HistoryRow>> Apply(
        IAsyncEnumerable<List<HistoryApi.HistoryRow>> chunks, long? fromStep, long? toStep, int? points, long lastStep,
        CancellationToken cancellationToken)
    {
        if (fromStep is null && toStep is null && points is null)
        {
            return chunks;
        }

        long from = fromStep ?? 0;
        long width = points is int p ? BucketWidth(from, toStep ?? Math.Max(lastStep, from), p) : 0;
        return new HistoryRange(from, toStep ?? long.MaxValue, width).ApplyAsync(chunks, cancellationToken);
    }

    /// <summary>The width in steps of each of the ⌈points ÷ 2⌉ buckets that cover from..to.</summary>
    internal static long BucketWidth(long from, long to, int points) =>
        Math.Max(1, (long)Math.Ceiling(((double)to - from + 1) / ((points + 1) / 2)));

    private async IAsyncEnumerable<List<HistoryApi.HistoryRow>> ApplyAsync(
        IAsyncEnumerable<List<HistoryApi.HistoryRow>> chunks, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (List<HistoryApi.HistoryRow> chunk in chunks.WithCancellation(cancellationToken))
        {
            var kept = new List<HistoryApi.HistoryRow>(_width == 0 ? chunk.Count : 16);
            foreach (HistoryApi.HistoryRow row in chunk)
            {
                if (row.Step < _from || row.Step > _last)
                {
                    continue;
                }

                if (_width == 0)
                {
                    kept.Add(row);
                    continue;
                }

                long index = (row.Step - _from) / _width;
                if (!_open.TryGetValue(row.Tag, out Bucket? bucket))
                {
                    _open[row.Tag] = bucket = new Bucket(index);
                }
                else if (bucket.Index != index)
                {
                    bucket.Close(kept);
                    bucket.Open(index);
                }

                bucket.Add(row);
            }

            if (kept.Count > 0)
            {
                yield return kept;
            }
        }

        var rest = new List<HistoryApi.HistoryRow>();
        foreach (Bucket bucket in _open.Values)
        {
            bucket.Close(rest, last: true);
        }

        if (rest.Count > 0)
        {
            yield return rest;
        }
    }

    /// <summary>One tag's open bucket: its lowest and highest finite rows, its first non-finite row and its latest.</summary>
    private sealed class Bucket(long index)
    {
        private HistoryApi.HistoryRow? _low, _high, _odd, _latest;

        public long Index { get; private set; } = index;

        public void Add(HistoryApi.HistoryRow row)
        {
            _latest = row;
            if (!double.IsFinite(row.Value))
            {
                _odd ??= row;
            }
            else
            {
                if (_low is null || row.Value < _low.Value.Value)
                {
                    _low = row;
                }

                if (_high is null || row.Value > _high.Value.Value)
                {
                    _high = row;
                }
            }
        }

        /// <summary>
        /// Adds the bucket's rows to <paramref name="rows"/> in step order (each once) and empties it; the
        /// <paramref name="last"/> bucket of a tag adds its latest row too.
        /// </summary>
        public void Close(List<HistoryApi.HistoryRow> rows, bool last = false)
        {
            int start = rows.Count;
            foreach (HistoryApi.HistoryRow? row in (ReadOnlySpan<HistoryApi.HistoryRow?>)[_low, _high, _odd, last ? _latest : null])
            {
                if (row is { } r && !rows.Skip(start).Contains(r))
                {
                    rows.Add(r);
                }
            }

            rows.Sort(start, rows.Count - start, StepOrder.Instance);
            _low = _high = _odd = _latest = null;
        }

        public void Open(long index) => Index = index;
    }

    private sealed class StepOrder : IComparer<HistoryApi.HistoryRow>
    {
        public static readonly StepOrder Instance = new();

        public int Compare(HistoryApi.HistoryRow x, HistoryApi.HistoryRow y) => x.Step.CompareTo(y.Step);
    }
}
