using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using TrainingService.Contracts.Streaming;
using TrainingService.Contracts.Training;
using Xunit.Abstractions;

namespace TrainingService.Api.Tests.Jobs;

/// <summary>Real faults, no mocks: the database locked by another connection, the disk full (a small tmpfs).</summary>
public sealed class StorageFaultTests(ITestOutputHelper output)
{
    private static readonly TimeSpan s_lock = TimeSpan.FromSeconds(45);

    [Fact]
    public async Task TheDatabaseLockedFor45SecondsPausesTheJobsAndTheyResumeGaplessOnceItIsReleased()
    {
        await using var factory = new TrainingServiceFactory(new() { ["Jobs:Concurrency"] = "2", ["Jobs:CheckpointEverySteps"] = "25" });
        using HttpClient client = factory.CreateClient();
        Guid datasetId = await JobHarness.CreateShapesAsync(client, samples: 512);
        Guid first = await StartAsync(client, datasetId);
        Guid second = await StartAsync(client, datasetId);
        await WaitForStepAsync(client, first, 50);

        await using var holder = new SqliteConnection($"Data Source={Path.Combine(factory.DataFolder, "training.db")};Pooling=False");
        await holder.OpenAsync();
        await using (SqliteCommand begin = holder.CreateCommand())
        {
            begin.CommandText = "BEGIN EXCLUSIVE";
            await begin.ExecuteNonQueryAsync();
        }

        var locked = Stopwatch.StartNew();
        // A write meets the lock: after the database's busy timeout it is a 503 with problem details, not a 500.
        Task<HttpResponseMessage> write = client.PostAsJsonAsync("/datasets/builtin", new { kind = "shapes", classes = 2, samples = 64, imageSize = 16, channels = 1 });

        JsonElement paused = await WaitForAsync(client, first, j => j.GetProperty("state").GetString() == "Paused", s_lock);
        TimeSpan detected = locked.Elapsed;
        Assert.StartsWith("paused: storage fault: the database is locked", paused.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.EndsWith("; retrying", paused.GetProperty("error").GetString(), StringComparison.Ordinal);
        JsonElement health = await client.GetFromJsonAsync<JsonElement>("/health/ready"); // 200: degraded, not down
        JsonElement storage = health.GetProperty("checks").GetProperty("storage");
        Assert.Equal("Degraded", storage.GetProperty("status").GetString());
        Assert.Contains("the database is locked", storage.GetProperty("description").GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain(first.ToString(), storage.GetProperty("description").GetString(), StringComparison.OrdinalIgnoreCase);

        using (HttpResponseMessage refused = await write)
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
            Assert.True(refused.Headers.RetryAfter is not null);
        }

        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(new Uri($"/jobs/{second}", UriKind.Relative))).StatusCode); // reads answer
        await Task.Delay(s_lock - locked.Elapsed);
        Assert.False(factory.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.IsCancellationRequested);
        await using (SqliteCommand rollback = holder.CreateCommand())
        {
            rollback.CommandText = "ROLLBACK";
            await rollback.ExecuteNonQueryAsync();
        }

        var released = Stopwatch.StartNew();
        await WaitForAsync(client, first, j => j.GetProperty("state").GetString() == "Running" && j.GetProperty("error").ValueKind == JsonValueKind.Null, TimeSpan.FromSeconds(60));
        TimeSpan recovered = released.Elapsed;
        output.WriteLine($"locked for {s_lock.TotalSeconds} s; paused after {detected.TotalSeconds:F1} s; running again {recovered.TotalSeconds:F1} s after the release");

        foreach (Guid job in new[] { first, second })
        {
            await AssertCompleteHistoryAsync(client, job);
        }

        JsonElement healthAfter = await client.GetFromJsonAsync<JsonElement>("/health/ready");
        Assert.Equal("Healthy", healthAfter.GetProperty("status").GetString());
        Assert.True(recovered < TimeSpan.FromSeconds(20), $"recovered {recovered} after the release");
    }

    [Fact]
    public async Task AFullDiskPausesTheJobAndItResumesGaplessOnceSpaceIsFreed()
    {
        string folder = Directory.CreateTempSubdirectory("trainingservice-tmpfs-").FullName;
        bool mounted = Run("mount", $"-t tmpfs -o size=24m tmpfs {folder}");
        output.WriteLine(mounted ? "a 24 MiB tmpfs is the data folder" : "tmpfs cannot be mounted here: the fault is a directory where the checkpoint's file must go");
        try
        {
            await using (var factory = new TrainingServiceFactory(new() { ["Jobs:CheckpointEverySteps"] = "25" }, folder))
            {
                using HttpClient client = factory.CreateClient();
                Guid datasetId = await JobHarness.CreateShapesAsync(client, samples: 512);
                Guid job = await StartAsync(client, datasetId);
                await WaitForStepAsync(client, job, 50);

                string filler = Path.Combine(folder, mounted ? "filler" : Path.Combine("jobs", job.ToString("N"), "checkpoint.bin.tmp"));
                var full = Stopwatch.StartNew();
                if (mounted)
                {
                    Fill(filler);
                }
                else
                {
                    Directory.CreateDirectory(filler);
                }

                JsonElement paused = await WaitForAsync(client, job, j => j.GetProperty("state").GetString() == "Paused", TimeSpan.FromSeconds(60));
                TimeSpan detected = full.Elapsed;
                string reason = paused.GetProperty("error").GetString()!;
                Assert.StartsWith("paused: storage fault: ", reason, StringComparison.Ordinal);
                Assert.DoesNotContain(folder, reason, StringComparison.Ordinal);
                await Task.Delay(TimeSpan.FromSeconds(3)); // it stays paused while the disk is full
                Assert.Equal("Paused", (await client.GetFromJsonAsync<JsonElement>($"/jobs/{job}")).GetProperty("state").GetString());

                if (mounted)
                {
                    File.Delete(filler);
                }
                else
                {
                    Directory.Delete(filler);
                }

                var freed = Stopwatch.StartNew();
                await WaitForAsync(client, job, j => j.GetProperty("state").GetString() == "Running" && j.GetProperty("error").ValueKind == JsonValueKind.Null, TimeSpan.FromSeconds(60));
                output.WriteLine($"paused {detected.TotalSeconds:F1} s after the disk filled ({reason}); running again {freed.Elapsed.TotalSeconds:F1} s after space was freed");
                await AssertCompleteHistoryAsync(client, job);
            }

            SqliteConnection.ClearAllPools();
        }
        finally
        {
            // The database's pooled connections hold files on the tmpfs (a failure above skips the clear): closed first,
            // so the unmount works; a folder that still cannot go is only reported, never hiding the test's own failure.
            SqliteConnection.ClearAllPools();
            if (mounted && !Run("umount", folder))
            {
                output.WriteLine($"could not unmount {folder}");
            }

            try
            {
                Directory.Delete(folder, recursive: true);
            }
            catch (IOException e)
            {
                output.WriteLine($"could not delete {folder}: {e.Message}");
            }
        }
    }

    [Fact]
    public async Task ACheckpointThatCannotBeWrittenPausesOnlyItsJob()
    {
        await using var factory = new TrainingServiceFactory(new() { ["Jobs:Concurrency"] = "2", ["Jobs:CheckpointEverySteps"] = "25" });
        using HttpClient client = factory.CreateClient();
        Guid datasetId = await JobHarness.CreateShapesAsync(client, samples: 512);
        Guid blocked = await StartAsync(client, datasetId);
        Guid other = await StartAsync(client, datasetId);
        await WaitForStepAsync(client, blocked, 30);

        // A directory where the checkpoint's temporary file must go: every checkpoint write of this job fails.
        string obstacle = Path.Combine(factory.DataFolder, "jobs", blocked.ToString("N"), "checkpoint.bin.tmp");
        while (!TryCreateDirectory(obstacle))
        {
            await Task.Delay(10); // the trainer was writing that file just then
        }

        JsonElement paused = await WaitForAsync(client, blocked, j => j.GetProperty("state").GetString() == "Paused", TimeSpan.FromSeconds(60));
        Assert.StartsWith("paused: storage fault: a job file cannot be written", paused.GetProperty("error").GetString(), StringComparison.Ordinal);
        await Task.Delay(TimeSpan.FromSeconds(2));
        Directory.Delete(obstacle);

        await AssertCompleteHistoryAsync(client, blocked);
        await AssertCompleteHistoryAsync(client, other);
        List<StreamEvent> untouched = await JobHarness.HistoryAsync(client, other);
        Assert.Equal([RunState.Running, RunState.Succeeded], untouched.Where(e => e.Kind == "state").Select(e => e.State!.Value));
    }

    /// <summary>
    /// 2,560 steps (80 epochs of 32): a fault made once the job is seen at step 30 or 50 (a step up to ~150 ms old) meets
    /// it still training even on a machine that trains 5,000 steps a second.
    /// </summary>
    private static async Task<Guid> StartAsync(HttpClient client, Guid datasetId)
    {
        (HttpResponseMessage response, JsonElement job) = await JobHarness.PostJobAsync(client,
            $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 80, "batchSize": 16 }, "monitoring": { "statsEvery": 5 } }""");
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        return job.GetProperty("id").GetGuid();
    }

    private static Task<JsonElement> WaitForStepAsync(HttpClient client, Guid jobId, long step) =>
        WaitForAsync(client, jobId, j => j.GetProperty("step").GetInt64() >= step, TimeSpan.FromSeconds(60));

    private static async Task<JsonElement> WaitForAsync(HttpClient client, Guid jobId, Func<JsonElement, bool> condition, TimeSpan timeout)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            JsonElement job = await client.GetFromJsonAsync<JsonElement>($"/jobs/{jobId}");
            if (condition(job))
            {
                return job;
            }

            Assert.True(DateTime.UtcNow < deadline, $"timed out: {job}");
            Assert.False(job.GetProperty("state").GetString() is "Failed" or "Cancelled" or "Succeeded", $"ended: {job}");
            await Task.Delay(50);
        }
    }

    /// <summary>Succeeded; seqs 1, 2, 3, … and every step once, in order.</summary>
    private static async Task AssertCompleteHistoryAsync(HttpClient client, Guid jobId)
    {
        JsonElement done = await JobHarness.WaitForStateAsync(client, jobId, "Succeeded", TimeSpan.FromMinutes(2));
        List<StreamEvent> history = await JobHarness.HistoryAsync(client, jobId);
        JobHarness.AssertConsecutive(history);
        long total = done.GetProperty("totalSteps").GetInt64();
        Assert.Equal(Enumerable.Range(1, (int)total).Select(i => (long)i), history.Where(e => e.Kind == "step").Select(e => e.Step!.Value));
    }

    private static bool TryCreateDirectory(string path)
    {
        try
        {
            Directory.CreateDirectory(path);
            return true;
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Writes until the disk takes no more, down to the last byte.</summary>
    private static void Fill(string path)
    {
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0);
        foreach (int size in new[] { 1 << 16, 4096, 1 })
        {
            byte[] block = new byte[size];
            try
            {
                while (true)
                {
                    stream.Write(block);
                }
            }
            catch (IOException)
            {
                // no space left for a block this size
            }
        }
    }

    private static bool Run(string command, string arguments)
    {
        try
        {
            using Process process = Process.Start(new ProcessStartInfo(command, arguments) { RedirectStandardError = true, RedirectStandardOutput = true })!;
            process.WaitForExit();
            return process.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }
}
