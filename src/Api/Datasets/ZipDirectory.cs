using System.Buffers.Binary;

namespace TrainingService.Api.Datasets;

/// <summary>
/// Counts a zip's entries from its central directory without building them: ZipArchive reads every entry of the
/// directory into memory before anyone can count them, so a 1 GiB upload of empty entries could hold millions.
/// </summary>
internal static class ZipDirectory
{
    private const uint EndOfDirectory = 0x06054b50, Zip64Locator = 0x07064b50, Zip64EndOfDirectory = 0x06064b50, DirectoryEntry = 0x02014b50;
    private const int EndOfDirectorySize = 22, DirectoryEntrySize = 46, MaxCommentSize = 65535;

    /// <summary>
    /// The number of entries, counted by walking the directory (the end record's count may lie) and stopped once it passes
    /// <paramref name="limit"/>; null when the stream has no end-of-directory record (not a zip: ZipArchive says why).
    /// </summary>
    public static long? CountEntries(Stream zip, long limit)
    {
        long length = zip.Length;
        int tail = (int)Math.Min(length, EndOfDirectorySize + MaxCommentSize);
        if (tail < EndOfDirectorySize)
        {
            return null;
        }

        var buffer = new byte[tail];
        zip.Seek(length - tail, SeekOrigin.Begin);
        zip.ReadExactly(buffer);
        int end = -1;
        for (int i = tail - EndOfDirectorySize; i >= 0 && end < 0; i--)
        {
            end = BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(i)) == EndOfDirectory ? i : -1;
        }

        if (end < 0)
        {
            return null;
        }

        long declared = BinaryPrimitives.ReadUInt16LittleEndian(buffer.AsSpan(end + 10));
        long directory = BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(end + 16));
        if ((declared == 0xFFFF || directory == 0xFFFFFFFF) && end >= 20 && BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(end - 20)) == Zip64Locator)
        {
            // ZIP64: the locator points at a record with 64-bit counts and offsets.
            var record = new byte[56];
            long at = (long)BinaryPrimitives.ReadUInt64LittleEndian(buffer.AsSpan(end - 20 + 8));
            if (at < 0 || at > length - record.Length)
            {
                return null;
            }

            zip.Seek(at, SeekOrigin.Begin);
            if (zip.ReadAtLeast(record, record.Length, throwOnEndOfStream: false) < record.Length
                || BinaryPrimitives.ReadUInt32LittleEndian(record) != Zip64EndOfDirectory)
            {
                return null;
            }

            declared = (long)BinaryPrimitives.ReadUInt64LittleEndian(record.AsSpan(32));
            directory = (long)BinaryPrimitives.ReadUInt64LittleEndian(record.AsSpan(48));
        }

        if (declared > limit)
        {
            return declared;
        }

        long count = 0;
        var header = new byte[DirectoryEntrySize];
        zip.Seek(directory is >= 0 ? Math.Min(directory, length) : length, SeekOrigin.Begin);
        while (count <= limit
            && zip.ReadAtLeast(header, header.Length, throwOnEndOfStream: false) == header.Length
            && BinaryPrimitives.ReadUInt32LittleEndian(header) == DirectoryEntry)
        {
            count++;
            int variable = BinaryPrimitives.ReadUInt16LittleEndian(header.AsSpan(28)) + BinaryPrimitives.ReadUInt16LittleEndian(header.AsSpan(30))
                + BinaryPrimitives.ReadUInt16LittleEndian(header.AsSpan(32));
            zip.Seek(variable, SeekOrigin.Current);
        }

        return count;
    }
}
