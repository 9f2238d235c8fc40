using System.Buffers.Binary;
using System.Numerics;
using Google.Protobuf;
using TrainingService.Training.Export.TensorBoard;

namespace TrainingService.Training.Export;

/// <summary>
/// A TensorBoard event file (events.out.tfevents.*), record by record: each an <c>Event</c> protocol buffer framed as
/// TensorFlow's TFRecord — its length (uint64, little-endian), the length's masked CRC-32C, the bytes, their masked
/// CRC-32C. The first record names the format (brain.Event:2); the others carry scalars (simple_value) and histograms
/// (HistogramProto), which TensorBoard shows in its Scalars and Histograms tabs.
/// </summary>
public static class TensorBoardEvents
{
    public const string FileVersion = "brain.Event:2";

    /// <summary>The record that opens every event file.</summary>
    public static void WriteVersion(Stream output, double wallTime) =>
        Write(output, new Event { WallTime = wallTime, FileVersion = FileVersion });

    /// <summary>One record with every scalar of a step (NaN and ±∞ are kept: a diverging run shows as one).</summary>
    public static void WriteScalars(Stream output, double wallTime, long step, IEnumerable<(string Tag, double Value)> scalars)
    {
        var summary = new Summary();
        foreach ((string tag, double value) in scalars)
        {
            summary.Value.Add(new Summary.Types.Value { Tag = tag, SimpleValue = (float)value });
        }

        if (summary.Value.Count > 0)
        {
            Write(output, new Event { WallTime = wallTime, Step = step, Summary = summary });
        }
    }

    /// <summary>
    /// One histogram of <paramref name="counts"/> in equal-width bins from <paramref name="min"/> to <paramref name="max"/>,
    /// with the values' mean and (population) standard deviation; nothing when there is no finite value to show.
    /// </summary>
    public static void WriteHistogram(Stream output, double wallTime, long step, string tag, double min, double max, IReadOnlyList<long> counts, double mean, double std)
    {
        long n = 0;
        foreach (long c in counts)
        {
            n += c;
        }

        if (n == 0 || !double.IsFinite(min) || !double.IsFinite(max) || !double.IsFinite(mean) || !double.IsFinite(std))
        {
            return;
        }

        var histogram = new HistogramProto { Min = min, Max = max, Num = n, Sum = mean * n, SumSquares = ((std * std) + (mean * mean)) * n };
        if (max > min)
        {
            double width = (max - min) / counts.Count;
            for (int i = 0; i < counts.Count; i++)
            {
                histogram.BucketLimit.Add(i == counts.Count - 1 ? max : min + ((i + 1) * width));
                histogram.Bucket.Add(counts[i]);
            }
        }
        else
        {
            histogram.BucketLimit.Add(max); // every value equal (a dead layer's zeros): one bucket
            histogram.Bucket.Add(n);
        }

        var summary = new Summary();
        summary.Value.Add(new Summary.Types.Value { Tag = tag, Histo = histogram });
        Write(output, new Event { WallTime = wallTime, Step = step, Summary = summary });
    }

    private static void Write(Stream output, Event record)
    {
        byte[] data = record.ToByteArray();
        Span<byte> header = stackalloc byte[12];
        BinaryPrimitives.WriteUInt64LittleEndian(header, (ulong)data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], MaskedCrc32C(header[..8]));
        Span<byte> footer = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(footer, MaskedCrc32C(data));
        output.Write(header);
        output.Write(data);
        output.Write(footer);
    }

    /// <summary>TFRecord's checksum: CRC-32C (Castagnoli), rotated right by 15 bits plus 0xa282ead8.</summary>
    public static uint MaskedCrc32C(ReadOnlySpan<byte> data)
    {
        uint crc = Crc32C(data);
        return ((crc >> 15) | (crc << 17)) + 0xa282ead8;
    }

    /// <summary>CRC-32C of <paramref name="data"/> (the CPU's crc32 instruction where there is one).</summary>
    public static uint Crc32C(ReadOnlySpan<byte> data)
    {
        uint crc = uint.MaxValue;
        int i = 0;
        for (; i + 8 <= data.Length; i += 8)
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data[i..]));
        }

        for (; i < data.Length; i++)
        {
            crc = BitOperations.Crc32C(crc, data[i]);
        }

        return ~crc;
    }
}
