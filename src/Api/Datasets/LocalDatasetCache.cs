using System.Security.Cryptography;
using Microsoft.Extensions.Options;
using TrainingService.Api.Persistence;

namespace TrainingService.Api.Datasets;

/// <summary>
/// Copies of datasets on this node's own disk, by content hash (Storage:LocalCacheFolder): with the data folder on a
/// network file system shared by every node, a worker reads each dataset over the network once, and identical
/// uploads share one copy. Datasets never change once committed, so a copy named by its hash is never stale. Bounded
/// by Storage:LocalCacheBytes, least recently used first out. Off (null folder): datasets are read where they are.
/// </summary>
public sealed class LocalDatasetCache(IOptions<StorageOptions> storage, ILogger<LocalDatasetCache> logger)
{
    /// <summary>The dataset's content hash, written beside its files when it is committed.</summary>
    public const string HashFile = "content.sha256";

    private readonly StorageOptions _storage = storage.Value;
    private readonly Lock _gate = new();

    /// <summary>
    /// SHA-256 over the dataset's files (their names and bytes, in name order), written to <see cref="HashFile"/> in
    /// <paramref name="folder"/>; returns it.
    /// </summary>
    public static string WriteHash(string folder)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[] buffer = new byte[1 << 16];
        foreach (string file in Directory.GetFiles(folder).Where(f => Path.GetFileName(f) != HashFile).Order(StringComparer.Ordinal))
        {
            hash.AppendData(System.Text.Encoding.UTF8.GetBytes(Path.GetFileName(file) + "\n"));
            using FileStream stream = File.OpenRead(file);
            for (int read; (read = stream.Read(buffer)) > 0;)
            {
                hash.AppendData(buffer, 0, read);
            }
        }

        string hex = Convert.ToHexStringLower(hash.GetHashAndReset());
        File.WriteAllText(Path.Combine(folder, HashFile), hex);
        return hex;
    }

    /// <summary>
    /// The folder to read the dataset from: its local copy (made now if missing) when the cache is on and the dataset
    /// has a content hash, else its folder in the data folder. A copy that cannot be made is not an error: the dataset
    /// is read from the data folder.
    /// </summary>
    public string FolderOf(Guid datasetId)
    {
        string shared = _storage.DatasetFolder(datasetId);
        if (_storage.LocalCacheFolder is not { Length: > 0 } root || !File.Exists(Path.Combine(shared, HashFile)))
        {
            return shared;
        }

        string hash = File.ReadAllText(Path.Combine(shared, HashFile)).Trim();
        if (hash.Length != 64 || !hash.All(char.IsAsciiHexDigitLower))
        {
            return shared;
        }

        string local = Path.Combine(Path.GetFullPath(root), hash);
        try
        {
            lock (_gate) // one copy at a time on this node; reads of copies already made do not wait here
            {
                if (!Directory.Exists(local))
                {
                    Copy(shared, local, root);
                }
            }

            Directory.SetLastWriteTimeUtc(local, DateTime.UtcNow); // its place in the least-recently-used order
            return local;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            logger.LogWarning(ex, "Dataset {DatasetId}: no local copy ({Folder}); read from the data folder", datasetId, local);
            return shared;
        }
    }

    private void Copy(string shared, string local, string root)
    {
        long bytes = Directory.GetFiles(shared).Sum(f => new FileInfo(f).Length);
        MakeRoom(root, bytes);
        string temp = Path.Combine(root, $".copy-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        try
        {
            foreach (string file in Directory.GetFiles(shared))
            {
                File.Copy(file, Path.Combine(temp, Path.GetFileName(file)));
            }

            Directory.Move(temp, local); // whole or not at all: a half copy is never read
        }
        finally
        {
            if (Directory.Exists(temp))
            {
                Directory.Delete(temp, recursive: true);
            }
        }

        logger.LogInformation("Dataset copy {Hash} made on this node's disk ({Bytes} bytes)", Path.GetFileName(local), bytes);
    }

    /// <summary>Deletes the least recently used copies (and leftovers of interrupted copies) until <paramref name="incoming"/> more bytes fit.</summary>
    private void MakeRoom(string root, long incoming)
    {
        Directory.CreateDirectory(root);
        var copies = new DirectoryInfo(root).GetDirectories()
            .Select(d => (Folder: d, Bytes: d.GetFiles().Sum(f => f.Length)))
            .OrderBy(c => c.Folder.Name.StartsWith('.') ? DateTime.MinValue : c.Folder.LastWriteTimeUtc)
            .ToList();
        long held = copies.Sum(c => c.Bytes);
        foreach ((DirectoryInfo folder, long bytes) in copies)
        {
            if (held + incoming <= _storage.LocalCacheBytes && !folder.Name.StartsWith('.'))
            {
                break;
            }

            folder.Delete(recursive: true); // a dataset loaded from it is in memory already; the next load copies again
            held -= bytes;
        }
    }
}
