using System.Buffers.Binary;
using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using TrainingService.Api.Persistence;
using TrainingService.Training.Data;

namespace TrainingService.Api.Datasets;

/// <summary>
/// The datasets' files: every dataset is kept as raw IDX files in <see cref="StorageOptions.DatasetFolder"/>
/// (train-images.idx, train-labels.idx and, with a test split, test-images.idx, test-labels.idx).
/// Keeps the most recently used datasets in memory, up to Uploads:CacheBytes of pixels; one let go of is left to the
/// garbage collector (a job training on it still holds it). Reads with the upload's limits, so what was accepted loads. Thread-safe.
/// </summary>
public sealed class DatasetStore(IOptions<StorageOptions> storage, IOptions<UploadOptions> uploads, LocalDatasetCache copies, ILogger<DatasetStore> logger)
{
    /// <summary>What a client is told when a dataset's files cannot be read; the path and the cause go to the log.</summary>
    public const string Unreadable = "the dataset's files cannot be read";

    public const string TrainImagesFile = "train-images.idx";
    public const string TrainLabelsFile = "train-labels.idx";
    public const string TestImagesFile = "test-images.idx";
    public const string TestLabelsFile = "test-labels.idx";

    /// <summary>The source of generated datasets (shapes), whose records keep no class names.</summary>
    public const string ShapesSource = ShapesDataset.Name;

    private readonly StorageOptions _storage = storage.Value;
    private readonly UploadOptions _limits = uploads.Value;
    private readonly Lock _gate = new();

    // Most recently used first, with each one's bytes of pixels. Lazy so that concurrent loads of one dataset read its files once.
    private readonly List<(Guid Id, Lazy<ImageDataset> Dataset, long Bytes)> _recent = [];
    private long _cachedBytes;
    private readonly ConcurrentDictionary<Guid, int[]> _classCounts = new();

    private string Root => _storage.DatasetsRoot;

    /// <summary>Datasets kept in memory.</summary>
    public int CachedCount
    {
        get
        {
            lock (_gate)
            {
                return _recent.Count;
            }
        }
    }

    /// <summary>Bytes of pixels of the datasets kept in memory; never over Uploads:CacheBytes.</summary>
    public long CachedBytes
    {
        get
        {
            lock (_gate)
            {
                return _cachedBytes;
            }
        }
    }

    /// <summary>Loads a dataset from its IDX files, or returns it from memory; its name, class count and class names are the record's.</summary>
    /// <exception cref="DatasetFormatException">
    /// Its files are gone, unreadable or damaged: the message is <see cref="Unreadable"/> (no server path), the cause inner.
    /// </exception>
    public ImageDataset Load(DatasetRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        Lazy<ImageDataset> entry;
        lock (_gate)
        {
            int index = _recent.FindIndex(e => e.Id == record.Id);
            if (index >= 0)
            {
                entry = _recent[index].Dataset;
                Forget(index);
            }
            else
            {
                (Guid id, string name, int classes, string[]? classNames) = (record.Id, record.Name, record.Classes, record.ClassNames);
                entry = new Lazy<ImageDataset>(() => Read(copies.FolderOf(id), name, classes, classNames, _limits)); // outside the lock
            }

            Remember(record.Id, entry, BytesOf(record));
        }

        try
        {
            return entry.Value;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or DatasetFormatException)
        {
            lock (_gate)
            {
                int index = _recent.FindIndex(e => e.Dataset == entry);
                if (index >= 0)
                {
                    Forget(index);
                }
            }

            logger.LogError(ex, "Dataset {DatasetId}: the files in {Folder} cannot be read", record.Id, _storage.DatasetFolder(record.Id));
            throw new DatasetFormatException("dataset", Unreadable, ex);
        }
    }

    /// <summary>
    /// Train images per class, by label; reads only the labels file when the dataset is not in memory.
    /// Empty when the dataset's files are gone, so that one damaged dataset does not break a listing.
    /// </summary>
    public int[] ClassCounts(DatasetRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (_classCounts.TryGetValue(record.Id, out int[]? counts))
        {
            return counts;
        }

        try
        {
            return _classCounts.GetOrAdd(record.Id, CountLabels(record));
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return [];
        }
    }

    /// <summary>A new, empty folder for an upload or a generated dataset on its way in, beside the datasets' folders.</summary>
    internal string CreateIncomingFolder() =>
        Directory.CreateDirectory(Path.Combine(Root, $".incoming-{Guid.NewGuid():N}")).FullName;

    /// <summary>Writes <paramref name="dataset"/> as raw IDX files into <paramref name="folder"/>.</summary>
    internal static void Write(ImageDataset dataset, string folder)
    {
        WriteImages(Path.Combine(folder, TrainImagesFile), dataset, dataset.Train);
        WriteLabels(Path.Combine(folder, TrainLabelsFile), dataset.Train);
        if (dataset.Test is { } test)
        {
            WriteImages(Path.Combine(folder, TestImagesFile), dataset, test);
            WriteLabels(Path.Combine(folder, TestLabelsFile), test);
        }
    }

    /// <summary>Makes the IDX files in <paramref name="incomingFolder"/> the dataset <paramref name="id"/>, kept in memory as well.</summary>
    internal void Commit(string incomingFolder, Guid id, ImageDataset dataset)
    {
        string folder = _storage.DatasetFolder(id);
        LocalDatasetCache.WriteHash(incomingFolder);
        Directory.Move(incomingFolder, folder);
        lock (_gate)
        {
            Remember(id, new Lazy<ImageDataset>(dataset), (long)(dataset.Train.Count + (dataset.Test?.Count ?? 0)) * dataset.Channels * dataset.Height * dataset.Width);
        }
    }

    /// <summary>Forgets a dataset and deletes its files; nothing happens when it has none.</summary>
    public void Delete(Guid id)
    {
        lock (_gate)
        {
            int index = _recent.FindIndex(e => e.Id == id);
            if (index >= 0)
            {
                Forget(index);
            }
        }

        _classCounts.TryRemove(id, out _);
        string folder = _storage.DatasetFolder(id);
        if (Directory.Exists(folder))
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    // Under _gate. The newest always fits: CacheBytes is at least MaxDatasetBytes, which no dataset exceeds.
    private void Remember(Guid id, Lazy<ImageDataset> entry, long bytes)
    {
        _recent.Insert(0, (id, entry, bytes));
        _cachedBytes += bytes;
        while (_cachedBytes > _limits.CacheBytes && _recent.Count > 0)
        {
            Forget(_recent.Count - 1);
        }
    }

    private void Forget(int index)
    {
        _cachedBytes -= _recent[index].Bytes;
        _recent.RemoveAt(index);
    }

    private static long BytesOf(DatasetRecord record) =>
        (long)(record.TrainCount + record.TestCount) * record.Channels * record.Height * record.Width;

    private static ImageDataset Read(string folder, string name, int classes, string[]? classNames, DatasetLimits limits)
    {
        string testImages = Path.Combine(folder, TestImagesFile);
        bool hasTest = File.Exists(testImages);
        ImageDataset read = IdxReader.Read(
            name,
            Path.Combine(folder, TrainImagesFile),
            Path.Combine(folder, TrainLabelsFile),
            hasTest ? testImages : null,
            hasTest ? Path.Combine(folder, TestLabelsFile) : null,
            limits);
        // IDX files know only the largest label; a CIFAR upload may not use all of its classes.
        return read with { Classes = Math.Max(classes, read.Classes), ClassNames = classNames };
    }

    private int[] CountLabels(DatasetRecord record)
    {
        lock (_gate)
        {
            (Guid _, Lazy<ImageDataset> cached, long _) = _recent.Find(e => e.Id == record.Id);
            if (cached is { IsValueCreated: true })
            {
                return cached.Value.ClassCounts(cached.Value.Train);
            }
        }

        // The store wrote this file: an 8-byte header (magic, count), then one byte per label.
        byte[] file = File.ReadAllBytes(Path.Combine(_storage.DatasetFolder(record.Id), TrainLabelsFile));
        var counts = new int[record.Classes];
        foreach (byte label in file.AsSpan(8))
        {
            if (label < counts.Length)
            {
                counts[label]++;
            }
        }

        return counts;
    }

    private static void WriteImages(string path, ImageDataset dataset, ImageSplit split)
    {
        // 3-D (N×H×W) for grey images, as MNIST does; 4-D (N×C×H×W) otherwise.
        int[] dims = dataset.Channels == 1
            ? [split.Count, dataset.Height, dataset.Width]
            : [split.Count, dataset.Channels, dataset.Height, dataset.Width];
        WriteIdx(path, dims, split.Images);
    }

    private static void WriteLabels(string path, ImageSplit split) => WriteIdx(path, [split.Count], split.Labels);

    private static void WriteIdx(string path, int[] dims, byte[] data)
    {
        var header = new byte[4 + (4 * dims.Length)];
        header[2] = 0x08;
        header[3] = (byte)dims.Length;
        for (int i = 0; i < dims.Length; i++)
        {
            BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4 + (4 * i)), dims[i]);
        }

        using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
        file.Write(header);
        file.Write(data);
    }

    /// <summary>The record's class names; the shapes' names for generated datasets, which keep none.</summary>
    public static IReadOnlyList<string>? ClassNames(DatasetRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        return record.ClassNames ?? (record.Source == ShapesSource ? [.. ShapesDataset.ClassNames.Take(record.Classes)] : null);
    }
}
