using System.Globalization;
using System.Text;
using TrainingService.Training.Data;

namespace TrainingService.Api.Datasets;

/// <summary>
/// Passes a tar through and reads each 512-byte header as it goes by: a metadata entry (PAX attributes, a GNU long name)
/// that declares more than <see cref="MaxMetadataBytes"/> is refused before TarReader sees its header, because TarReader
/// allocates a metadata entry's declared size at once (up to 2 GiB for a tar of 1 KB).
/// </summary>
/// <remarks>The inner stream is left open.</remarks>
internal sealed class TarHeaderGuard(Stream inner) : ReadOnlyStream
{
    /// <summary>Far more than any PAX attributes or long name needs.</summary>
    public const int MaxMetadataBytes = 1 << 20;

    private const int Block = 512;
    private readonly byte[] _header = new byte[Block];
    private readonly MemoryStream _attributes = new();
    private long _position, _nextHeader, _dataEnd;
    private bool _inAttributes;
    private long? _nextSize;

    public override int Read(Span<byte> buffer)
    {
        int read = inner.Read(buffer);
        int i = 0;
        while (i < read && _nextHeader != long.MaxValue)
        {
            long at = _position + i;
            if (at >= _nextHeader)
            {
                int offset = (int)(at - _nextHeader), n = Math.Min(read - i, Block - offset);
                buffer.Slice(i, n).CopyTo(_header.AsSpan(offset));
                i += n;
                if (offset + n == Block)
                {
                    Inspect(at + n);
                }
            }
            else
            {
                int n = (int)Math.Min(read - i, _nextHeader - at);
                if (_inAttributes && at < _dataEnd)
                {
                    _attributes.Write(buffer.Slice(i, (int)Math.Min(n, _dataEnd - at)));
                }

                i += n;
                if (_inAttributes && _position + i >= _dataEnd)
                {
                    _inAttributes = false;
                    _nextSize = PaxSize(_attributes.ToArray());
                }
            }
        }

        _position += read;
        return read;
    }

    private void Inspect(long dataStart)
    {
        byte type = _header[156];
        long size = Octal(_header.AsSpan(124, 12));
        bool metadata = type is (byte)'x' or (byte)'g' or (byte)'L' or (byte)'K';
        if (metadata && size > MaxMetadataBytes)
        {
            string declared = size == long.MaxValue ? "a size in base-256" : $"{size.ToString("N0", CultureInfo.InvariantCulture)} bytes";
            throw ArchiveBudget.Refused(
                $"a tar metadata entry (type '{(char)type}') declares {declared}, over the {MaxMetadataBytes.ToString("N0", CultureInfo.InvariantCulture)} any needs");
        }

        // A PAX "size" attribute overrides the size in the header of the entry it describes.
        if (!metadata && _nextSize is long paxSize)
        {
            size = paxSize;
            _nextSize = null;
        }

        _inAttributes = type == (byte)'x';
        _attributes.SetLength(0);
        _dataEnd = dataStart + size;
        // An entry too large to follow (a base-256 size) ends the inspection; TarReader reads on as it can.
        _nextHeader = size > long.MaxValue / 4 ? long.MaxValue : dataStart + ((size + Block - 1) / Block * Block);
    }

    // The header's size field: octal digits, maybe after spaces; base-256 (high bit set) is taken as too large to follow.
    private static long Octal(ReadOnlySpan<byte> field)
    {
        if ((field[0] & 0x80) != 0)
        {
            return long.MaxValue;
        }

        long value = 0;
        foreach (byte b in field.TrimStart((byte)' '))
        {
            if (b is < (byte)'0' or > (byte)'7')
            {
                break;
            }

            value = (value * 8) + (b - '0');
        }

        return value;
    }

    // The value of a "size" record in PAX attributes ("{length} size={bytes}\n"), or null.
    private static long? PaxSize(byte[] attributes)
    {
        foreach (string record in Encoding.UTF8.GetString(attributes).Split('\n'))
        {
            int space = record.IndexOf(' ', StringComparison.Ordinal);
            if (space > 0 && record.AsSpan(space + 1).StartsWith("size=", StringComparison.Ordinal)
                && long.TryParse(record.AsSpan(space + 6), NumberStyles.None, CultureInfo.InvariantCulture, out long size))
            {
                return size;
            }
        }

        return null;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _attributes.Dispose();
        }

        base.Dispose(disposing);
    }
}
