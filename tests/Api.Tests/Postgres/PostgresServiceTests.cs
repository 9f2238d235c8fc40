using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Npgsql;
using TrainingService.Api.Persistence;
using TrainingService.Api.Quotas;
using TrainingService.Api.Tests.Jobs;
using TrainingService.Api.Tests.Outputs;
using TrainingService.Contracts.Streaming;
using TrainingService.Contracts.Training;
using TrainingService.Training.Loop;
using Xunit.Abstractions;

namespace TrainingService.Api.Tests.Postgres;

/// <summary>The whole service on a real PostgreSQL (Database:Provider=postgres), each test on a fresh database.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresServiceTests(PostgresServer server, ITestOutputHelper output)
{
    private string _connectionString = "";

    [Fact]
    public async Task AJobTrainsWithAGaplessHistoryThatPagesAndCatchesUpAndItsTimesReadBackAsPosted()
    {
        await using TrainingServiceFactory factory = await StartAsync();
        using HttpClient client = factory.CreateClient();
        using HttpResponseMessage createdDataset = await client.PostAsJsonAsync(
            "/datasets/builtin", new { kind = "shapes", classes = 2, samples = 256, testSamples = 64, imageSize = 16, channels = 1, seed = 1 });
        JsonElement dataset = await createdDataset.Content.ReadFromJsonAsync<JsonElement>();
        Guid datasetId = dataset.GetProperty("id").GetGuid();
        using HttpResponseMessage createdModel = await client.PostAsync(new Uri("/models", UriKind.Relative),
            new StringContent($$"""{ "name": "tiny", "spec": {{JobHarness.TinySpec}} }""", Encoding.UTF8, "application/json"));
        JsonElement model = await createdModel.Content.ReadFromJsonAsync<JsonElement>();

        var posted = new List<JsonElement>();
        foreach (int epochs in new[] { 3, 1, 1 })
        {
            (HttpResponseMessage response, JsonElement job) = await JobHarness.PostJobAsync(client,
                $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": {{epochs}}, "batchSize": 16 }, "monitoring": { "statsEvery": 5 } }""");
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            response.Dispose();
            posted.Add(job);
        }

        Guid jobId = posted[0].GetProperty("id").GetGuid();
        JsonElement done = await JobHarness.WaitForStateAsync(client, jobId, "Succeeded");
        List<StreamEvent> history = await JobHarness.HistoryAsync(client, jobId);
        JobHarness.AssertConsecutive(history);
        Assert.Equal(Enumerable.Range(1, (int)done.GetProperty("totalSteps").GetInt64()).Select(i => (long)i),
            history.Where(e => e.Kind == "step").Select(e => e.Step!.Value));
        Assert.Equal([RunState.Running, RunState.Succeeded], history.Where(e => e.Kind == "state").Select(e => e.State!.Value));
        Assert.Equal(done.GetProperty("lastSeq").GetInt64(), history[^1].Seq);

        // /events in pages of 7 (LIMIT and the seq cursor) reads the same history.
        var paged = new List<StreamEvent>();
        for (long after = 0; ; after = paged[^1].Seq)
        {
            List<StreamEvent> page = (await client.GetFromJsonAsync<List<StreamEvent>>($"/jobs/{jobId}/events?afterSeq={after}&limit=7", JobHarness.Json))!;
            Assert.InRange(page.Count, 0, 7);
            if (page.Count == 0)
            {
                break;
            }

            paged.AddRange(page);
        }

        Assert.Equal(JsonSerializer.Serialize(history, JobHarness.Json), JsonSerializer.Serialize(paged, JobHarness.Json));

        // /history with tags reads only the kinds of events they come from (= ANY(@kinds)): every step's loss, in order.
        string csv = await client.GetStringAsync(new Uri($"/jobs/{jobId}/history?tags=step/loss,epoch/", UriKind.Relative));
        string[] rows = [.. csv.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1)];
        Assert.Equal(history.Where(e => e.Kind == "step").Select(e => e.Step!.Value),
            rows.Where(r => r.Split(',')[3] == "step/loss").Select(r => long.Parse(r.Split(',')[0], CultureInfo.InvariantCulture)));
        Assert.Equal(history.Count(e => e.Kind == "epoch"), rows.Count(r => r.Split(',')[3] == "epoch/train_loss"));

        // A viewer subscribing after the end catches up from the history alone.
        await using HubConnection hub = JobHarness.Hub(factory);
        var received = new StreamRecorder(hub);
        await hub.StartAsync();
        await hub.InvokeAsync("Subscribe", jobId, 0L);
        await received.WaitForAsync(events => events.Any(e => e.State == RunState.Succeeded));
        Assert.Equal(JsonSerializer.Serialize(history, JobHarness.Json), JsonSerializer.Serialize(received.Events, JobHarness.Json));

        // Times: what a POST answered is what a GET reads back (PostgreSQL keeps microseconds), and the job's start is its
        // Running event's time.
        Assert.Equal(dataset.GetProperty("createdAt").GetString(), (await Get($"/datasets/{datasetId}")).GetProperty("createdAt").GetString());
        Assert.Equal(model.GetProperty("createdAt").GetString(),
            (await Get($"/models/{model.GetProperty("id").GetGuid()}")).GetProperty("createdAt").GetString());
        Assert.Equal(posted[0].GetProperty("createdAt").GetString(), done.GetProperty("createdAt").GetString());
        Assert.Equal(history.First(e => e.State == RunState.Running).Time, done.GetProperty("startedAt").GetDateTime());
        Assert.Equal(history.Last(e => e.State == RunState.Succeeded).Time, done.GetProperty("finishedAt").GetDateTime());

        // Keyset paging of /jobs (created at, then id) one job a page: each job once, newest first.
        var listed = new List<Guid>();
        string query = "?limit=1";
        while (true)
        {
            JsonElement page = await Get($"/jobs{query}");
            Guid[] ids = [.. page.GetProperty("items").EnumerateArray().Select(j => j.GetProperty("id").GetGuid())];
            listed.AddRange(ids);
            if (ids.Length == 0 || page.GetProperty("next").ValueKind == JsonValueKind.Null)
            {
                break;
            }

            query = $"?limit=1&after={ids[^1]}";
        }

        Assert.Equal(posted.Select(j => j.GetProperty("id").GetGuid()).Reverse(), listed);
        foreach (JsonElement job in posted)
        {
            Assert.Equal(job.GetProperty("createdAt").GetString(), (await Get($"/jobs/{job.GetProperty("id").GetGuid()}")).GetProperty("createdAt").GetString());
        }

        async Task<JsonElement> Get(string path) => await client.GetFromJsonAsync<JsonElement>(path);
    }

    [Fact]
    public async Task StepColumnsReadByPostgresAreTheCsvRowsInTheSameChunks()
    {
        await using TrainingServiceFactory factory = await StartAsync(new() { ["Streaming:MaxFrameBytes"] = "1024" });
        using HttpClient client = factory.CreateClient();
        Guid id = await HistoryApiTests.FinishedJobAsync(client);
        await HistoryApiTests.AssertStepColumnsAreTheCsvRowsAsync(factory.Services, client, id);
    }

    [Fact]
    public async Task AJobWhoseStatisticsOutgrowTheLimitIsThinnedUnderItKeepingEveryStepAndEverySeq()
    {
        const long Limit = 384L << 10;
        await using TrainingServiceFactory factory = await StartAsync(new() { ["Jobs:MaxHistoryBytesPerJob"] = Limit.ToString(CultureInfo.InvariantCulture) });
        using HttpClient client = factory.CreateClient();
        Guid datasetId = await JobHarness.CreateShapesAsync(client);
        // 16 steps an epoch, statistics every step (~1,900 bytes a layers event): ~540 kB if nothing were thinned.
        (HttpResponseMessage response, JsonElement posted) = await JobHarness.PostJobAsync(client,
            $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 16, "batchSize": 16 }, "monitoring": { "statsEvery": 1 } }""");
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, posted.ToString());
        Guid jobId = posted.GetProperty("id").GetGuid();
        JsonElement job = await JobHarness.WaitForStateAsync(client, jobId, "Succeeded", TimeSpan.FromMinutes(2));

        JsonElement[] events = [.. (await client.GetFromJsonAsync<JsonElement>($"/jobs/{jobId}/events?limit=10000")).EnumerateArray()];
        long stored = await JobHarness.StoredHistoryBytesAsync(client, jobId);
        output.WriteLine($"{events.Length:N0} events, {stored:N0} bytes stored (historyBytes {job.GetProperty("historyBytes").GetInt64():N0})");
        Assert.Equal(stored, job.GetProperty("historyBytes").GetInt64()); // the count the service keeps is the rows' true size
        Assert.InRange(stored, Limit / 3, Limit * 9 / 10);
        Assert.Equal(Enumerable.Range(1, events.Length).Select(i => (long)i), events.Select(e => e.GetProperty("seq").GetInt64()));
        long totalSteps = job.GetProperty("totalSteps").GetInt64();
        Assert.Equal(Enumerable.Range(1, (int)totalSteps).Select(i => (long)i),
            events.Where(e => Kind(e) == "step").Select(e => e.GetProperty("step").GetInt64()));

        JsonElement[] layers = [.. events.Where(e => Kind(e) == "layers")];
        JsonElement[] thinned = [.. layers.Where(IsThinned)];
        output.WriteLine($"{layers.Length:N0} layers events, {thinned.Length:N0} thinned; a stub: {thinned.FirstOrDefault()}");
        Assert.Equal(totalSteps, layers.Length);
        Assert.All(thinned, e =>
        {
            Assert.Equal(["seq", "kind", "time", "step", "thinned"], e.EnumerateObject().Select(p => p.Name));
            Assert.Equal(JsonValueKind.Number, e.GetProperty("step").ValueKind);
            Assert.True(e.GetProperty("step").GetInt64() > 0);
            Assert.True(e.GetProperty("time").GetDateTime() > DateTime.UtcNow.AddHours(-1));
            Assert.InRange(Encoding.UTF8.GetByteCount(e.GetRawText()), 1, 159);
        });
        Assert.InRange(thinned.Length, layers.Length / 3, layers.Length - 20);
        Assert.All(layers[^20..], e => Assert.False(IsThinned(e)));

        JsonElement notice = Assert.Single(events, e => Kind(e) == "alert" && e.GetProperty("code").GetString() == "history-thinned");
        Assert.Contains($"{Limit:N0} bytes", notice.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ThinningsQueryIsAnsweredFromThePartialIndex()
    {
        await using TrainingServiceFactory factory = await StartAsync();
        using HttpClient client = factory.CreateClient();
        _ = await client.GetAsync(new Uri("/health/ready", UriKind.Relative)); // migrated
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync();
        await using NpgsqlTransaction transaction = await connection.BeginTransactionAsync();
        await using (var noScans = new NpgsqlCommand("SET LOCAL enable_seqscan = off", connection, transaction))
        {
            await noScans.ExecuteNonQueryAsync(); // an empty table: without this any plan is as cheap as another
        }

        await using var explain = (NpgsqlCommand)PostgresEventSql.Instance.FullLayers(transaction, Guid.NewGuid(), 0, 10, 256);
        explain.CommandText = "EXPLAIN " + explain.CommandText;
        var plan = new List<string>();
        await using (NpgsqlDataReader reader = await explain.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                plan.Add(reader.GetString(0));
            }
        }

        output.WriteLine(string.Join(Environment.NewLine, plan));
        Assert.Contains(plan, line => line.Contains("Index Only Scan using \"IX_JobEvents_FullLayers\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task PostgresStoppedMidJobPausesItAndOnceBackItResumesFromItsCheckpointWithAGaplessHistory()
    {
        await using TrainingServiceFactory factory = await StartAsync(new() { ["Jobs:CheckpointEverySteps"] = "25" });
        using HttpClient client = factory.CreateClient();
        Guid datasetId = await JobHarness.CreateShapesAsync(client, samples: 512);
        // 2,560 steps: the step read below is up to ~150 ms old, and a machine training 5,000 steps a second still has
        // half a second of them left when the server stops.
        (HttpResponseMessage response, JsonElement posted) = await JobHarness.PostJobAsync(client,
            $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 80, "batchSize": 16 }, "monitoring": { "statsEvery": 5 } }""");
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Guid jobId = posted.GetProperty("id").GetGuid();
        while ((await client.GetFromJsonAsync<JsonElement>($"/jobs/{jobId}")).GetProperty("step").GetInt64() < 50)
        {
            await Task.Delay(20);
        }

        using HttpClient anonymous = factory.CreateClient();
        anonymous.DefaultRequestHeaders.Authorization = null; // /health/ready is anonymous; a key would be looked up in the database
        await server.StopAsync();
        var down = Stopwatch.StartNew();
        string storage;
        try
        {
            // The job pauses: /health/ready names it (counted, not named) with the fault; the database check fails meanwhile.
            while (true)
            {
                using HttpResponseMessage ready = await anonymous.GetAsync(new Uri("/health/ready", UriKind.Relative));
                JsonElement health = await ready.Content.ReadFromJsonAsync<JsonElement>();
                JsonElement check = health.GetProperty("checks").GetProperty("storage");
                storage = check.GetProperty("description").GetString() ?? "";
                if (check.GetProperty("status").GetString() == "Degraded" && storage.Contains("1 job paused: storage fault: the database", StringComparison.Ordinal))
                {
                    Assert.Equal("Unhealthy", health.GetProperty("checks").GetProperty("database").GetProperty("status").GetString());
                    break;
                }

                Assert.True(down.Elapsed < TimeSpan.FromSeconds(30), $"not paused after {down.Elapsed}: {health}");
                await Task.Delay(100);
            }

            output.WriteLine($"paused {down.Elapsed.TotalSeconds:F1} s after the server stopped: {storage}");
            await Task.Delay(TimeSpan.FromSeconds(2));
        }
        finally
        {
            await server.StartAsync();
        }

        var up = Stopwatch.StartNew();
        JsonElement done = await JobHarness.WaitForStateAsync(client, jobId, "Succeeded", TimeSpan.FromMinutes(2));
        output.WriteLine($"succeeded {up.Elapsed.TotalSeconds:F1} s after the server started again");
        List<StreamEvent> history = await JobHarness.HistoryAsync(client, jobId);
        JobHarness.AssertConsecutive(history); // seqs 1, 2, 3, …: no gap, none twice
        Assert.Equal(Enumerable.Range(1, (int)done.GetProperty("totalSteps").GetInt64()).Select(i => (long)i),
            history.Where(e => e.Kind == "step").Select(e => e.Step!.Value));
        List<StreamEvent> states = [.. history.Where(e => e.Kind == "state")];
        output.WriteLine(string.Join(Environment.NewLine, states.Select(e => $"{e.Seq} {e.State} {e.Reason}")));
        Assert.True(states.Count(e => e.State == RunState.Running) >= 2, "the job ran again after the pause");
        Assert.Equal("Healthy", (await client.GetFromJsonAsync<JsonElement>("/health/ready")).GetProperty("status").GetString());
    }

    [Fact]
    public async Task ALockHeldPastTheLockTimeoutPausesTheJobAsLockedAndItResumesOnceReleased()
    {
        await using TrainingServiceFactory factory = await StartAsync(new() { ["Jobs:CheckpointEverySteps"] = "25" });
        using HttpClient client = factory.CreateClient();
        Guid datasetId = await JobHarness.CreateShapesAsync(client, samples: 512);
        // 2,560 steps: the step read below is up to ~150 ms old, and a machine training 5,000 steps a second still has
        // half a second of them left when the lock is taken.
        (HttpResponseMessage response, JsonElement posted) = await JobHarness.PostJobAsync(client,
            $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 80, "batchSize": 16 }, "monitoring": { "statsEvery": 5 } }""");
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Guid jobId = posted.GetProperty("id").GetGuid();
        while ((await client.GetFromJsonAsync<JsonElement>($"/jobs/{jobId}")).GetProperty("step").GetInt64() < 50)
        {
            await Task.Delay(20);
        }

        await using var holder = new NpgsqlConnection(_connectionString);
        await holder.OpenAsync();
        await using NpgsqlTransaction held = await holder.BeginTransactionAsync();
        await using (var take = new NpgsqlCommand("LOCK TABLE \"JobEvents\" IN ACCESS EXCLUSIVE MODE", holder, held))
        {
            await take.ExecuteNonQueryAsync();
        }

        var locked = Stopwatch.StartNew();
        JsonElement paused;
        while ((paused = await client.GetFromJsonAsync<JsonElement>($"/jobs/{jobId}")).GetProperty("state").GetString() != "Paused")
        {
            Assert.True(locked.Elapsed < TimeSpan.FromSeconds(30), $"not paused after {locked.Elapsed}: {paused}");
            await Task.Delay(50);
        }

        TimeSpan detected = locked.Elapsed;
        Assert.Equal("paused: storage fault: the database is locked by another process; retrying", paused.GetProperty("error").GetString());
        await Task.Delay(TimeSpan.FromSeconds(2));
        await held.RollbackAsync();
        var released = Stopwatch.StartNew();
        JsonElement done = await JobHarness.WaitForStateAsync(client, jobId, "Succeeded", TimeSpan.FromMinutes(2));
        output.WriteLine($"paused {detected.TotalSeconds:F1} s after the lock; succeeded {released.Elapsed.TotalSeconds:F1} s after its release");
        Assert.InRange(detected, TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(15)); // the lock timeout (5 s), not a hang
        List<StreamEvent> history = await JobHarness.HistoryAsync(client, jobId);
        JobHarness.AssertConsecutive(history);
        Assert.Equal(Enumerable.Range(1, (int)done.GetProperty("totalSteps").GetInt64()).Select(i => (long)i),
            history.Where(e => e.Kind == "step").Select(e => e.Step!.Value));
    }

    [Fact]
    public async Task ADatasetDeleteWaitsForAJobBeingCreatedForItAndIsThenRefused()
    {
        await using TrainingServiceFactory factory = await StartAsync();
        using HttpClient client = factory.CreateClient();
        Guid datasetId = await JobHarness.CreateShapesAsync(client, samples: 64);
        var options = new DbContextOptionsBuilder<PostgresTrainingDb>().UseNpgsql(_connectionString).Options;
        Task<HttpResponseMessage> create, delete;
        await using (var holder = new PostgresTrainingDb(options))
        {
            // Another request holds the write lock: the job creation, then the delete, queue behind it in that order.
            await using IDbContextTransaction held = await OwnerQuotas.BeginWriteAsync(holder, CancellationToken.None);
            create = client.PostAsync(new Uri("/jobs", UriKind.Relative), new StringContent(
                $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 1, "batchSize": 16 } }""",
                Encoding.UTF8, "application/json"));
            await WaitersAsync(1);
            delete = client.DeleteAsync(new Uri($"/datasets/{datasetId}", UriKind.Relative));
            await WaitersAsync(2); // without the lock the delete would not wait: 204, and the job's dataset gone
            await held.CommitAsync();
        }

        using HttpResponseMessage created = await create;
        using HttpResponseMessage deleted = await delete;
        Assert.Equal(HttpStatusCode.Accepted, created.StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, deleted.StatusCode);
        Guid jobId = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
        await JobHarness.WaitForStateAsync(client, jobId, "Succeeded");

        // Requests wait for the lock at most lock_timeout (5 s): look often.
        async Task WaitersAsync(int count)
        {
            await using var connection = new NpgsqlConnection(_connectionString);
            await connection.OpenAsync();
            await using var waiting = new NpgsqlCommand("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted", connection);
            var waited = Stopwatch.StartNew();
            while (Convert.ToInt32(await waiting.ExecuteScalarAsync(), CultureInfo.InvariantCulture) < count)
            {
                Assert.True(waited.Elapsed < TimeSpan.FromSeconds(3), $"fewer than {count} requests wait for the lock");
                await Task.Delay(10);
            }
        }
    }

    /// <summary>The service on its own fresh database of the test server.</summary>
    [Fact]
    public async Task AnAshaSweepJudgesConcurrentRungReportsOneAtATime()
    {
        await using TrainingServiceFactory factory = await StartAsync(new() { ["Jobs:Concurrency"] = "3" });
        using HttpClient client = factory.CreateClient();
        await Sweeps.SweepTests.RunConcurrentAshaAsync(client);
    }

    /// <summary>asha's promotion form on PostgreSQL: promotions under the sweep's advisory lock, waiting trials holding no place.</summary>
    [Fact]
    public async Task AnAshaSweepPromotesWaitingTrials()
    {
        await using TrainingServiceFactory factory = await StartAsync(new() { ["Jobs:MaxActiveJobsPerOwner"] = "1", ["Sweeps:PollMilliseconds"] = "50" });
        using HttpClient client = factory.CreateClient();
        await Sweeps.SweepTests.RunAshaPromotionAsync(client);
    }

    private async Task<TrainingServiceFactory> StartAsync(Dictionary<string, string?>? settings = null)
    {
        _connectionString = await server.NewDatabaseAsync();
        var all = new Dictionary<string, string?>
        {
            ["Database:Provider"] = "postgres",
            ["ConnectionStrings:Postgres"] = _connectionString,
        };
        foreach ((string key, string? value) in settings ?? [])
        {
            all[key] = value;
        }

        return new TrainingServiceFactory(all);
    }

    private static string Kind(JsonElement e) => e.GetProperty("kind").GetString()!;

    private static bool IsThinned(JsonElement e) => e.TryGetProperty("thinned", out JsonElement t) && t.GetBoolean();
}
