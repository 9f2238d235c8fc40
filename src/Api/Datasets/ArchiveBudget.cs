using System.Globalization;
using TrainingService.Training.Data;

namespace TrainingService.Api.Datasets;

/// <summary>
/// Holds an uploaded archive to the caps of <see cref="UploadOptions"/>: entries, bytes and compression ratio are counted
/// as the entries are read (by a <see cref="DecodeBudget"/>), never taken from the sizes the archive declares. Every breach
/// is a <see cref="DatasetFormatException"/> for the field archive. One budget per archive; not thread-safe.
/// </summary>
internal sealed class ArchiveBudget(UploadOptions limits)
{
    private const int MaxNameInMessage = 200;

    // Names and depths far beyond any real dataset's: each path's folders are kept and compared, so a 64 KB name of
    // "a/a/a/…" would cost gigabytes.
    private const int MaxEntryNameLength = 1024, MaxFolderDepth = 32;

    private readonly UploadOptions _limits = limits;
    private readonly DecodeBudget _bytes = new(limits);
    private int _entries;

    /// <summary>Counts entries; more than Uploads:MaxArchiveEntries is refused.</summary>
    public void CountEntries(int count)
    {
        _entries += count;
        if (_entries > _limits.MaxArchiveEntries)
        {
            throw DatasetLimits.TooLarge(
                DatasetUpload.Archive,
                nameof(UploadOptions.MaxArchiveEntries),
                $"the archive has more than {N(_limits.MaxArchiveEntries)} entries (files and folders)");
        }
    }

    /// <summary>
    /// A stream over an entry's (or the archive's) <paramref name="decoded"/> bytes, counted against Uploads:MaxCompressionRatio
    /// (per stream), Uploads:MaxUncompressedBytes (over the whole archive) and <paramref name="maxBytes"/>.
    /// </summary>
    public Stream Count(Stream decoded, Func<long> compressedBytes, string what, long maxBytes = long.MaxValue) =>
        _bytes.Count(decoded, compressedBytes, DatasetUpload.Archive, what, maxBytes);

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
}
