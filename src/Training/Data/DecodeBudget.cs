using System.Globalization;

namespace TrainingService.Training.Data;

/// <summary>
/// Holds decompression to <see cref="DatasetLimits.MaxCompressionRatio"/> per stream and
/// <see cref="DatasetLimits.MaxUncompressedBytes"/> over all the streams of one upload, counting the bytes as they come
/// out, never the sizes a file declares. Every breach is a <see cref="DatasetFormatException"/>. Not thread-safe.
/// </summary>
public sealed class DecodeBudget(DatasetLimits limits)
{
    /// <summary>Below this many bytes a stream may expand by any ratio: tiny files compress well and cost nothing.</summary>
    public const long RatioGraceBytes = 1 << 20;

    private readonly DatasetLimits _limits = limits;
    private long _total;

    /// <summary>How many decompressed bytes have been counted so far.</summary>
    public long Decoded => _total;

    /// <summary>
    /// A stream over <paramref name="decoded"/> that counts what it yields against the caps: more than the ratio times
    /// <paramref name="compressedBytes"/> (asked again at each read: it may still be growing), more than the upload's total,
    /// or more than <paramref name="maxBytes"/> for this stream, is refused while reading.
    /// </summary>
    /// <param name="decoded">The decompressing stream; disposed with the returned one.</param>
    /// <param name="compressedBytes">The compressed bytes behind it: an entry's compressed size, or what has been read so far.</param>
    /// <param name="field">The input at fault, named in refusals.</param>
    /// <param name="what">Names the stream in messages ("the archive", "\"cat/1.png\"").</param>
    /// <param name="maxBytes">A cap of its own, e.g. what fits in one array.</param>
    public Stream Count(Stream decoded, Func<long> compressedBytes, string field, string what, long maxBytes = long.MaxValue) =>
        new CountingStream(decoded, this, compressedBytes, field, what, maxBytes);

    private static string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    private sealed class CountingStream(
        Stream inner, DecodeBudget budget, Func<long> compressedBytes, string field, string what, long maxBytes) : ReadOnlyStream
    {
        private long _read;

        public override int Read(Span<byte> buffer)
        {
            int read = inner.Read(buffer);
            _read += read;
            budget._total += read;
            DatasetLimits limits = budget._limits;
            long compressed = compressedBytes();
            long ratioCap = Math.Max(RatioGraceBytes, compressed * limits.MaxCompressionRatio);
            if (_read > ratioCap)
            {
                throw DatasetLimits.TooLarge(
                    field,
                    nameof(DatasetLimits.MaxCompressionRatio),
                    $"{what} expands more than {N(limits.MaxCompressionRatio)}:1 ({N(compressed)} bytes compressed, more than {N(ratioCap)} uncompressed)");
            }

            if (_read > maxBytes)
            {
                throw new DatasetFormatException(field, $"{what} is over {N(maxBytes)} bytes uncompressed, too large to read");
            }

            if (budget._total > limits.MaxUncompressedBytes)
            {
                throw DatasetLimits.TooLarge(
                    field,
                    nameof(DatasetLimits.MaxUncompressedBytes),
                    $"the upload's compressed files expand to more than {N(limits.MaxUncompressedBytes)} bytes");
            }

            return read;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}

/// <summary>Counts the bytes read through it, for the ratio of a stream decompressed from it.</summary>
public sealed class ByteCounter(Stream inner) : ReadOnlyStream
{
    /// <summary>Bytes read so far.</summary>
    public long BytesRead { get; private set; }

    public override int Read(Span<byte> buffer)
    {
        int read = inner.Read(buffer);
        BytesRead += read;
        return read;
    }
}
