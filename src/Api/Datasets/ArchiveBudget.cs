using System.Globalization;
using TrainingService.Training.Data;

namespace TrainingService.Api.Datasets;

/// <summary>
/// Holds an uploaded archive to the caps of <see cref="UploadOptions"/>: entries, bytes and compression ratio are counted
/// as the entries are read, never taken from the sizes the archive declares. Every breach is a <see cref="DatasetFormatException"/>
/// for the field archive. One budget per archive; not thread-safe.
/// </summary>
internal sealed class ArchiveBudget(UploadOptions limits)
{
    /// <summary>Below this many bytes an entry may expand by any ratio: tiny files compress well and cost nothing.</summary>
    public const long RatioGraceBytes = 1 << 20;

    private const int MaxNameInMessage = 200;

    // Names and depths far beyond any real dataset's: each path's folders are kept and compared, so a 64 KB name of
    // "a/a/a/…" would cost gigabytes.
    private const int MaxEntryNameLength = 1024, MaxFolderDepth = 32;

    private readonly UploadOptions _limits = limits;
    private long _total;
    private int _entries;

    /// <summary>Counts entries; more than Uploads:MaxArchiveEntries is refused.</summary>
    public void CountEntries(int count)
    {
        _entries += count;
        if (_entries > _limits.MaxArchiveEntries)
        {
            throw Refused($"the archive has more than {N(_limits.MaxArchiveEntries)} entries (files and folders), the limit (configuration Uploads:MaxArchiveEntries)");
        }
    }

    /// <summary>
    /// A stream over <paramref name="inner"/> that counts what it yields: more than Uploads:MaxCompressionRatio times
    /// <paramref name="compressedBytes"/> (past <see cref="RatioGraceBytes"/>), more than Uploads:MaxUncompressedBytes over the
    /// whole archive, or more than <paramref name="maxBytes"/> for this stream, is refused while reading.
    /// </summary>
    /// <param name="inner">The decompressing stream; disposed with the returned one.</param>
    /// <param name="compressedBytes">What this stream was compressed to: an entry's compressed size, or the archive file's size.</param>
    /// <param name="what">Names the entry (or "the archive") in messages.</param>
    /// <param name="maxBytes">A cap of its own, e.g. what fits in one array.</param>
    public Stream Count(Stream inner, long compressedBytes, string what, long maxBytes = long.MaxValue) =>
        new CountingStream(inner, this, compressedBytes, maxBytes, what);

    /// <summary>
    /// The folders and file name of an entry, normalised: backslashes are separators, "." and empty parts dropped, ".." resolved.
    /// An absolute path, a drive letter, a NUL, or a ".." that climbs above the archive's root is refused.
    /// </summary>
    public static string[] Segments(string entryName)
    {
        if (entryName.Length > MaxEntryNameLength)
        {
            throw Refused($"an entry's name is {entryName.Length:N0} characters long, over the limit of {MaxEntryNameLength:N0}: {Quote(entryName)}");
        }

        string path = entryName.Replace('\\', '/');
        if (path.StartsWith('/') || (path.Length >= 2 && path[1] == ':') || path.Contains('\0', StringComparison.Ordinal))
        {
            throw Escapes(entryName);
        }

        var segments = new List<string>();
        foreach (string part in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part == "..")
            {
                if (segments.Count == 0)
                {
                    throw Escapes(entryName);
                }

                segments.RemoveAt(segments.Count - 1);
            }
            else if (part != ".")
            {
                segments.Add(part);
            }
        }

        if (segments.Count > MaxFolderDepth)
        {
            throw Refused($"{Quote(entryName)} lies {segments.Count - 1} folders deep, over the limit of {MaxFolderDepth - 1}");
        }

        return [.. segments];
    }

    /// <summary>An entry's name for a message: as stored, shortened.</summary>
    public static string Quote(string entryName) =>
        "\"" + (entryName.Length > MaxNameInMessage ? entryName[..MaxNameInMessage] + "…" : entryName) + "\"";

    public static DatasetFormatException Refused(string detail, Exception? inner = null) => new(DatasetUpload.Archive, detail, inner);

    private static DatasetFormatException Escapes(string entryName) =>
        Refused($"the entry {Quote(entryName)} escapes the archive's folder (an absolute path, a drive, a NUL, or a \"..\" above the top); nothing is read from such an archive");

    private static string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    private void Add(int read)
    {
        _total += read;
        if (_total > _limits.MaxUncompressedBytes)
        {
            throw Refused($"the archive expands to more than {N(_limits.MaxUncompressedBytes)} bytes, the limit (configuration Uploads:MaxUncompressedBytes)");
        }
    }

    private sealed class CountingStream(Stream inner, ArchiveBudget budget, long compressedBytes, long maxBytes, string what) : ReadOnlyStream
    {
        private readonly long _ratioCap = Math.Max(RatioGraceBytes, compressedBytes * budget._limits.MaxCompressionRatio);
        private long _read;

        public override int Read(Span<byte> buffer)
        {
            int read = inner.Read(buffer);
            _read += read;
            if (_read > _ratioCap)
            {
                throw Refused(
                    $"{what} expands more than {N(budget._limits.MaxCompressionRatio)}:1 ({N(compressedBytes)} bytes compressed, more than {N(_ratioCap)} uncompressed), "
                    + "the limit (configuration Uploads:MaxCompressionRatio)");
            }

            if (_read > maxBytes)
            {
                throw Refused($"{what} is over {N(maxBytes)} bytes uncompressed, too large to read");
            }

            budget.Add(read);
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
