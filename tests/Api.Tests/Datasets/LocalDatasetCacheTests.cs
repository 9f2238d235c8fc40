using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using TrainingService.Api.Datasets;
using TrainingService.Api.Persistence;
using TrainingService.Api.Tests.Jobs;

namespace TrainingService.Api.Tests.Datasets;

/// <summary>A worker's copies of datasets on its own disk, by content hash (Storage:LocalCacheFolder).</summary>
public sealed class LocalDatasetCacheTests : IDisposable
{
    private readonly string _data = Directory.CreateTempSubdirectory("trainingservice-shared-").FullName;
    private readonly string _local = Directory.CreateTempSubdirectory("trainingservice-local-").FullName;

    [Fact]
    public async Task AWorkerTrainsFromItsOwnCopyOfTheDatasetNamedByItsContentHash()
    {
        string cache = Path.Combine(_local, "datasets");
        await using var api = new TrainingServiceFactory(new() { ["Role"] = "api", ["Telemetry:Node"] = "api-1" }, _data);
        using HttpClient client = api.CreateClient();
        Guid datasetId = await JobHarness.CreateShapesAsync(client);
        string shared = Path.Combine(_data, "datasets", datasetId.ToString("N"));
        string hash = await File.ReadAllTextAsync(Path.Combine(shared, LocalDatasetCache.HashFile));
        Assert.Equal(Sha256Of(shared), hash);

        await using var worker = new TrainingServiceFactory(new()
        {
            ["Role"] = "worker", ["Telemetry:Node"] = "worker-1", ["Storage:LocalCacheFolder"] = cache,
        }, _data);
        _ = worker.Server; // started: its worker claims what the api node queues
        (_, JsonElement job) = await JobHarness.PostJobAsync(client,
            $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 1, "batchSize": 16 } }""");
        await JobHarness.WaitForStateAsync(client, job.GetProperty("id").GetGuid(), "Succeeded", TimeSpan.FromMinutes(1));

        string copy = Path.Combine(cache, hash);
        Assert.True(Directory.Exists(copy), "the worker made no local copy");
        foreach (string file in Directory.GetFiles(shared))
        {
            Assert.Equal(await File.ReadAllBytesAsync(file), await File.ReadAllBytesAsync(Path.Combine(copy, Path.GetFileName(file))));
        }

        Assert.Equal([hash], Directory.GetDirectories(cache).Select(Path.GetFileName)); // no half copy left behind
    }

    [Fact]
    public void CopiesAreSharedByIdenticalContentAndTheLeastRecentlyUsedGoFirst()
    {
        var storage = new StorageOptions { DataFolder = _data, LocalCacheFolder = Path.Combine(_local, "c"), LocalCacheBytes = 2_500 };
        var copies = new LocalDatasetCache(Options.Create(storage), NullLogger<LocalDatasetCache>.Instance);
        Guid a = Dataset(storage, fill: 1), twinOfA = Dataset(storage, fill: 1), b = Dataset(storage, fill: 2), c = Dataset(storage, fill: 3);

        string copyOfA = copies.FolderOf(a);
        Assert.Equal(copyOfA, copies.FolderOf(twinOfA)); // same bytes, one copy
        string copyOfB = copies.FolderOf(b);
        string copyOfC = copies.FolderOf(c); // 3 × 1,000 bytes > 2,500: the least recently used (a) goes

        Assert.False(Directory.Exists(copyOfA));
        Assert.True(Directory.Exists(copyOfB) && Directory.Exists(copyOfC));
        Assert.Equal(copyOfA, copies.FolderOf(a)); // copied again when asked for
        Assert.False(Directory.Exists(copyOfB));
        Assert.NotEqual(storage.DatasetFolder(a), copyOfA);
    }

    [Fact]
    public void WithoutACacheFolderOrAHashTheDatasetIsReadInPlace()
    {
        var storage = new StorageOptions { DataFolder = _data };
        Guid id = Dataset(storage, fill: 4);
        Assert.Equal(storage.DatasetFolder(id), new LocalDatasetCache(Options.Create(storage), NullLogger<LocalDatasetCache>.Instance).FolderOf(id));

        var cached = new StorageOptions { DataFolder = _data, LocalCacheFolder = Path.Combine(_local, "d") };
        File.Delete(Path.Combine(cached.DatasetFolder(id), LocalDatasetCache.HashFile)); // committed before hashes were written
        Assert.Equal(cached.DatasetFolder(id), new LocalDatasetCache(Options.Create(cached), NullLogger<LocalDatasetCache>.Instance).FolderOf(id));
    }

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_data, recursive: true);
        Directory.Delete(_local, recursive: true);
    }

    /// <summary>A dataset folder of two 500-byte files filled with <paramref name="fill"/>, committed (hash written).</summary>
    private static Guid Dataset(StorageOptions storage, byte fill)
    {
        var id = Guid.NewGuid();
        string folder = Directory.CreateDirectory(storage.DatasetFolder(id)).FullName;
        File.WriteAllBytes(Path.Combine(folder, DatasetStore.TrainImagesFile), Enumerable.Repeat(fill, 500).ToArray());
        File.WriteAllBytes(Path.Combine(folder, DatasetStore.TrainLabelsFile), Enumerable.Repeat(fill, 500).ToArray());
        LocalDatasetCache.WriteHash(folder);
        return id;
    }

    /// <summary>The hash as documented: SHA-256 over each file's name, a newline and its bytes, in name order.</summary>
    private static string Sha256Of(string folder)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (string file in Directory.GetFiles(folder).Where(f => Path.GetFileName(f) != LocalDatasetCache.HashFile).Order(StringComparer.Ordinal))
        {
            hash.AppendData(System.Text.Encoding.UTF8.GetBytes(Path.GetFileName(file) + "\n"));
            hash.AppendData(File.ReadAllBytes(file));
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }
}
