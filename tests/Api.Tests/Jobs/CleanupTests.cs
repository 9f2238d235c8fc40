using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using TrainingService.Api.Outputs;
using TrainingService.Api.Persistence;
using Xunit.Abstractions;

namespace TrainingService.Api.Tests.Jobs;

/// <summary>Deleting a job, a succeeded job's files pruned to its model, and what a crash leaves swept at start.</summary>
public sealed class CleanupTests(ITestOutputHelper output)
{
    [Fact]
    public async Task ADeletedJobAnswers404OnEveryRouteAndLeavesNoFilesRowsOrCachedOutputs()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        StorageOptions storage = factory.Services.GetRequiredService<IOptions<StorageOptions>>().Value;
        Guid dataset = await JobHarness.CreateShapesAsync(client);

        // A long job (8,000 steps, still running when the pause comes even on a fast machine): 409 while it has not
        // ended; paused (a checkpoint) then cancelled, it keeps its checkpoint.
        (_, JsonElement longJob) = await JobHarness.PostJobAsync(client,
            $$"""{ "datasetId": "{{dataset}}", "hyperparameters": { "epochs": 2000 } }""");
        Guid stopped = longJob.GetProperty("id").GetGuid();
        using (HttpResponseMessage early = await client.DeleteAsync(new Uri($"/jobs/{stopped}", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.Conflict, early.StatusCode);
            Assert.Contains("cancel it first", await early.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        await JobHarness.WaitForStateAsync(client, stopped, "Running");
        Assert.Equal(HttpStatusCode.Accepted, (await client.PostAsync(new Uri($"/jobs/{stopped}/pause", UriKind.Relative), null)).StatusCode);
        await JobHarness.WaitForStateAsync(client, stopped, "Paused");
        Assert.Equal(HttpStatusCode.Accepted, (await client.PostAsync(new Uri($"/jobs/{stopped}/cancel", UriKind.Relative), null)).StatusCode);
        await JobHarness.WaitForStateAsync(client, stopped, "Cancelled");

        // The default model (LeNet-5 sized to the dataset), as the long job: their files compare.
        (_, JsonElement created) = await JobHarness.PostJobAsync(client, $$"""{ "datasetId": "{{dataset}}", "hyperparameters": { "epochs": 1 } }""");
        Guid id = created.GetProperty("id").GetGuid();
        await JobHarness.WaitForStateAsync(client, id, "Succeeded");

        // Pruned on success: the final model and the pictures stay, the checkpoint goes.
        Assert.False(File.Exists(storage.CheckpointFile(id)));
        Assert.True(File.Exists(storage.ModelFile(id)) && File.Exists(storage.VisualsFile(id)));
        long checkpointBytes = new FileInfo(storage.CheckpointFile(stopped)).Length;
        long modelBytes = new FileInfo(storage.ModelFile(id)).Length, visualsBytes = new FileInfo(storage.VisualsFile(id)).Length;
        output.WriteLine($"LeNet-5 on 1×16×16: checkpoint {checkpointBytes} B, model {modelBytes} B, visuals {visualsBytes} B; "
            + $"kept per succeeded job {checkpointBytes + modelBytes + visualsBytes} B before, {modelBytes + visualsBytes} B after");

        // Its outputs loaded and shared before it goes.
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsJsonAsync($"/jobs/{id}/predict", new { images = new[] { new float[256] } })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(new Uri($"/jobs/{id}/visuals", UriKind.Relative))).StatusCode);
        using HttpResponseMessage shared = await client.PostAsJsonAsync($"/jobs/{id}/shares", new { expiresInHours = 1 });
        string shareToken = (await shared.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("token").GetString()!;
        LoadedModels models = factory.Services.GetRequiredService<LoadedModels>();
        Assert.Equal(1, models.Count);

        using (HttpResponseMessage deleted = await client.DeleteAsync(new Uri($"/jobs/{id}", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        }

        (string Method, string Path, HttpContent? Body)[] routes =
        [
            ("GET", $"/jobs/{id}", null), ("GET", $"/jobs/{id}/events", null), ("GET", $"/jobs/{id}/weights", null),
            ("GET", $"/jobs/{id}/visuals", null), ("GET", $"/jobs/{id}/filters/conv1.png", null), ("GET", $"/jobs/{id}/featuremaps/conv1.png", null),
            ("GET", $"/jobs/{id}/export", null), ("GET", $"/jobs/{id}/shares", null), ("POST", $"/jobs/{id}/cancel", null),
            ("POST", $"/jobs/{id}/pause", null), ("POST", $"/jobs/{id}/resume", null), ("POST", $"/jobs/{id}/finish", null),
            ("POST", $"/jobs/{id}/snapshot", null), ("DELETE", $"/jobs/{id}", null),
            ("PATCH", $"/jobs/{id}/hyperparameters", Json(new { learningRate = 0.01 })),
            ("POST", $"/jobs/{id}/predict", Json(new { images = new[] { new float[256] } })),
            ("POST", $"/jobs/{id}/shares", Json(new { expiresInHours = 1 })),
        ];
        foreach ((string method, string path, HttpContent? body) in routes)
        {
            using var request = new HttpRequestMessage(new HttpMethod(method), new Uri(path, UriKind.Relative)) { Content = body };
            using HttpResponseMessage response = await client.SendAsync(request);
            Assert.True(response.StatusCode == HttpStatusCode.NotFound, $"{method} {path}: {(int)response.StatusCode}");
        }

        using var viewer = factory.CreateClient();
        viewer.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", shareToken);
        Assert.Equal(HttpStatusCode.Unauthorized, (await viewer.GetAsync(new Uri($"/jobs/{id}", UriKind.Relative))).StatusCode);

        Assert.False(Directory.Exists(storage.JobFolder(id)));
        Assert.True(File.Exists(storage.CheckpointFile(stopped)), "another job's files are untouched");
        Assert.Equal(0, models.Count);
        using IServiceScope scope = factory.Services.CreateScope();
        TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
        Assert.Equal(0, await db.JobEvents.CountAsync(e => e.JobId == id));
        Assert.Equal(0, await db.ShareLinks.CountAsync(s => s.JobId == id));
        Assert.True(await db.JobEvents.AnyAsync(e => e.JobId == stopped));

        // An admin deletes anyone's ended job.
        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync(new Uri($"/jobs/{stopped}", UriKind.Relative))).StatusCode);
        Assert.False(Directory.Exists(storage.JobFolder(stopped)));
    }

    [Fact]
    public async Task TwoHundredThousandEventsAreDeletedInShortChunks()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        Guid id = Guid.CreateVersion7();
        using IServiceScope scope = factory.Services.CreateScope();
        TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
        const int Count = 200_000;
        await db.Database.ExecuteSqlAsync($$"""
            WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {{Count}})
            INSERT INTO JobEvents (JobId, Seq, Kind, Json) SELECT {{id.ToString().ToUpperInvariant()}}, n, 'step', '{"kind":"step","loss":0.5}' FROM s
            """);

        var clock = System.Diagnostics.Stopwatch.StartNew();
        long deleted = await Api.Jobs.JobDeletion.DeleteEventsAsync(db, id, CancellationToken.None);
        clock.Stop();

        Assert.Equal(Count, deleted);
        Assert.False(await db.JobEvents.AnyAsync(e => e.JobId == id));
        int chunks = Count / Api.Jobs.JobDeletion.EventChunk;
        output.WriteLine($"{Count:N0} events deleted in {clock.ElapsedMilliseconds} ms: {chunks} statements, {clock.ElapsedMilliseconds / (double)chunks:F1} ms each");
    }

    [Fact]
    public async Task WhatACrashLeftIsSweptAtStartAndWhatHasARecordIsKept()
    {
        string folder = Directory.CreateTempSubdirectory("trainingservice-sweep-").FullName;
        try
        {
            Guid dataset, job;
            await using (var first = new TrainingServiceFactory(dataFolder: folder))
            {
                using HttpClient client = first.CreateClient();
                dataset = await JobHarness.CreateShapesAsync(client);
                (_, JsonElement created) = await JobHarness.PostJobAsync(client,
                    $$"""{ "datasetId": "{{dataset}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 1 } }""");
                job = created.GetProperty("id").GetGuid();
                await JobHarness.WaitForStateAsync(client, job, "Succeeded");
            }

            var storage = new StorageOptions { DataFolder = folder };
            string incoming = Path.Combine(storage.DatasetsRoot, $".incoming-{Guid.NewGuid():N}");
            Plant(Path.Combine(incoming, "received", "images-0"), 1 << 20);
            Guid orphanDataset = Guid.NewGuid(), orphanJob = Guid.NewGuid();
            Plant(Path.Combine(storage.DatasetFolder(orphanDataset), "train-images.idx"), 4096);
            Plant(storage.CheckpointFile(orphanJob), 2048);
            Plant(storage.CheckpointFile(job), 1024); // a succeeded job's checkpoint a crash kept
            Plant(storage.ModelFile(job) + ".tmp", 512);
            await using (var db = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(folder, "training.db")};Pooling=False"))
            {
                await db.OpenAsync();
                await using var insert = db.CreateCommand();
                insert.CommandText = "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 12000) "
                    + "INSERT INTO JobEvents (JobId, Seq, Kind, Json) SELECT $job, n, 'step', '{}' FROM s";
                insert.Parameters.AddWithValue("$job", orphanJob.ToString().ToUpperInvariant());
                await insert.ExecuteNonQueryAsync();
            }

            await using var second = new TrainingServiceFactory(dataFolder: folder);
            using HttpClient restarted = second.CreateClient();

            Assert.False(Directory.Exists(incoming));
            Assert.False(Directory.Exists(storage.DatasetFolder(orphanDataset)));
            Assert.False(Directory.Exists(storage.JobFolder(orphanJob)));
            Assert.False(File.Exists(storage.CheckpointFile(job)));
            Assert.False(File.Exists(storage.ModelFile(job) + ".tmp"));
            Assert.True(File.Exists(storage.ModelFile(job)) && Directory.Exists(storage.DatasetFolder(dataset)));
            using IServiceScope scope = second.Services.CreateScope();
            TrainingDb records = scope.ServiceProvider.GetRequiredService<TrainingDb>();
            Assert.False(await records.JobEvents.AnyAsync(e => e.JobId == orphanJob));
            Assert.True(await records.JobEvents.AnyAsync(e => e.JobId == job));
            Assert.Equal(HttpStatusCode.OK, (await restarted.GetAsync(new Uri($"/jobs/{job}/export", UriKind.Relative))).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await restarted.GetAsync(new Uri($"/datasets/{dataset}/samples/0.png", UriKind.Relative))).StatusCode);
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(folder, recursive: true);
        }
    }

    private static void Plant(string path, int bytes)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, new byte[bytes]);
    }

    private static StringContent Json(object body) => new(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");
}
