using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using StackExchange.Redis;
using TrainingService.Api.Streaming;
using TrainingService.Api.Tests.Jobs;
using TrainingService.Api.Tests.Service;
using TrainingService.Contracts.Streaming;
using TrainingService.Contracts.Training;
using Xunit.Abstractions;

namespace TrainingService.Api.Tests.Redis;

/// <summary>
/// Two services in one test sharing a data folder (so one SQLite database) and one real Redis, as two nodes would: a job
/// posted to node A trains there (both are started first, so neither re-queues the other's job), and a hub client on
/// node B follows it. The database poll is set to a minute unless the test is about it, so what B's viewer gets while the
/// job runs can only have come through Redis.
/// </summary>
public sealed class CrossNodeTests(ITestOutputHelper output)
{
    private const int NoPolling = 60_000;

    [Fact]
    public async Task AViewerOnAnotherNodeFollowsAJobLiveWithEverySeqOnce()
    {
        await using RedisServer redis = await RedisServer.StartNewAsync();
        using var nodes = new TwoNodes(redis.ConnectionString, NoPolling);
        await using TrainingServiceFactory a = nodes.A, b = nodes.B;
        using HttpClient clientA = a.CreateClient();
        using HttpClient clientB = b.CreateClient();
        // 32,000 steps, finished by the test once node B has followed it for a second: however fast the machine trains,
        // the job runs on while the viewers connect, and most of its steps come before the finish.
        Guid jobId = await PostJobAsync(clientA, epochs: 1000);

        await using HubConnection local = JobHarness.Hub(a);
        await using HubConnection remote = JobHarness.Hub(b);
        var onA = new TimedRecorder(local);
        var onB = new TimedRecorder(remote);
        await Task.WhenAll(local.StartAsync(), remote.StartAsync());
        await Task.WhenAll(local.InvokeAsync("Subscribe", jobId, 0L), remote.InvokeAsync("Subscribe", jobId, 0L));
        await onB.WaitForArrivalAsync(DateTime.UtcNow + TimeSpan.FromSeconds(1));
        await ServiceHarness.PostAsync(clientA, $"/jobs/{jobId}/finish");
        await onB.WaitForEndAsync();
        await onA.WaitForEndAsync();

        List<StreamEvent> history = await JobHarness.HistoryAsync(clientA, jobId);
        JobHarness.AssertConsecutive(onB.Events);
        Assert.Equal(JsonSerializer.Serialize(history, JobHarness.Json), JsonSerializer.Serialize(onB.Events, JobHarness.Json));

        // Live, not only at the end: most steps reached node B before the job's last event was even written.
        DateTime end = onB.Events[^1].Time;
        var steps = onB.Arrivals.Where(x => x.Event.Kind == "step").ToList();
        int beforeEnd = steps.Count(x => x.At < end);
        Assert.True(beforeEnd > steps.Count / 2, $"{beforeEnd} of {steps.Count} steps reached node B before the job ended at {end:O}");

        // What crossing nodes costs over the same node's viewer: the same seq's arrival on B minus on A.
        Dictionary<long, DateTime> atA = onA.Arrivals.ToDictionary(x => x.Event.Seq, x => x.At);
        List<double> delays = [.. onB.Arrivals.Where(x => x.At < end).Select(x => (x.At - atA[x.Event.Seq]).TotalMilliseconds).Order()];
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{history.Count} events, job ran {(end - history[0].Time).TotalSeconds:F1} s; node B after node A: median {delays[delays.Count / 2]:F1} ms, "
            + $"p95 {delays[delays.Count * 95 / 100]:F1} ms, max {delays[^1]:F1} ms"));

        RedisBus busA = a.Services.GetRequiredService<RedisBus>(), busB = b.Services.GetRequiredService<RedisBus>();
        Assert.True(busA.Published > 0 && busB.Received > 0, $"A published {busA.Published}, B received {busB.Received}");
        JsonElement ready = await clientB.GetFromJsonAsync<JsonElement>("/health/ready");
        Assert.Equal("Healthy", ready.GetProperty("checks").GetProperty("redis").GetProperty("status").GetString());
    }

    [Fact]
    public async Task RedisRestartedMidJobCostsTheViewerOnAnotherNodeNoEventAndNoDuplicate()
    {
        await using RedisServer redis = await RedisServer.StartNewAsync();
        using var nodes = new TwoNodes(redis.ConnectionString, NoPolling);
        await using TrainingServiceFactory a = nodes.A, b = nodes.B;
        using HttpClient clientA = a.CreateClient();
        using HttpClient clientB = b.CreateClient();
        Guid jobId = await PostJobAsync(clientA, epochs: 1000); // finished by the test once it has seen what it needs

        await using HubConnection remote = JobHarness.Hub(b);
        var onB = new TimedRecorder(remote);
        await remote.StartAsync();
        await remote.InvokeAsync("Subscribe", jobId, 0L);
        await onB.WaitForAsync(events => events.Any(e => e.Kind == "step" && e.Step >= 20));
        RedisBus busA = a.Services.GetRequiredService<RedisBus>();
        await redis.StopAsync();
        await WaitUntilAsync(() => busA.Failed > 0); // the pump published into the outage: those messages are gone
        await Task.Delay(500);
        await redis.StartAsync();
        DateTime restartedAt = DateTime.UtcNow;

        // Back: first from the re-sync on reconnect (at once and a second later), then from Redis alone.
        await onB.WaitForArrivalAsync(restartedAt);
        DateTime recoveredAt = onB.Arrivals.First(x => x.At > restartedAt).At;
        await onB.WaitForArrivalAsync(recoveredAt + TimeSpan.FromSeconds(2));
        DateTime liveAgainAt = onB.Arrivals.First(x => x.At > recoveredAt + TimeSpan.FromSeconds(2)).At;
        await ServiceHarness.PostAsync(clientA, $"/jobs/{jobId}/finish");
        await onB.WaitForEndAsync();

        List<StreamEvent> history = await JobHarness.HistoryAsync(clientA, jobId);
        JobHarness.AssertConsecutive(onB.Events);
        Assert.Equal(JsonSerializer.Serialize(history, JobHarness.Json), JsonSerializer.Serialize(onB.Events, JobHarness.Json));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{history.Count} events; {busA.Failed} messages lost in the outage; node B's viewer got events again "
            + $"{(recoveredAt - restartedAt).TotalMilliseconds:F0} ms after Redis was back, and through Redis alone "
            + $"{(liveAgainAt - restartedAt).TotalMilliseconds:F0} ms after"));
    }

    [Fact]
    public async Task AKeyRevokedThroughOneNodeClosesHubConnectionsOnAnother()
    {
        await using RedisServer redis = await RedisServer.StartNewAsync();
        using var nodes = new TwoNodes(redis.ConnectionString, NoPolling);
        await using TrainingServiceFactory a = nodes.A, b = nodes.B;
        using HttpClient clientA = a.CreateClient();
        using HttpClient clientB = b.CreateClient();
        JsonElement key = await (await clientA.PostAsJsonAsync("/keys", new { name = "phone" })).Content.ReadFromJsonAsync<JsonElement>();

        await using HubConnection phone = JobHarness.Hub(b, key.GetProperty("secret").GetString());
        await using HubConnection other = JobHarness.Hub(b);
        var phoneClosed = new TaskCompletionSource();
        phone.Closed += _ => { phoneClosed.TrySetResult(); return Task.CompletedTask; };
        await Task.WhenAll(phone.StartAsync(), other.StartAsync());
        // Both nodes listen for revocations (each subscribes as it starts).
        IDatabase server = a.Services.GetRequiredService<IConnectionMultiplexer>().GetDatabase();
        await WaitUntilAsync(() => (long)((RedisResult[])server.Execute("PUBSUB", "NUMSUB", "ts:revocations")!)[1] == 2);

        var revoked = Stopwatch.StartNew();
        Assert.Equal(System.Net.HttpStatusCode.NoContent,
            (await clientA.DeleteAsync(new Uri($"/keys/{key.GetProperty("id").GetGuid()}", UriKind.Relative))).StatusCode);
        await phoneClosed.Task.WaitAsync(TimeSpan.FromSeconds(10));
        output.WriteLine($"closed on node B {revoked.ElapsedMilliseconds} ms after the revocation on node A");
        Assert.Equal(HubConnectionState.Connected, other.State);
    }

    [Fact]
    public async Task WithRedisDownViewersOnAnotherNodeFollowByPollingAndReadinessIsDegraded()
    {
        string nowhere = $"127.0.0.1:{ServiceHarness.FreePort()},connectTimeout=500";
        using var nodes = new TwoNodes(nowhere, syncMilliseconds: 300);
        await using TrainingServiceFactory a = nodes.A, b = nodes.B;
        using HttpClient clientA = a.CreateClient();
        using HttpClient clientB = b.CreateClient();
        Guid jobId = await PostJobAsync(clientA, epochs: 1);

        await using HubConnection remote = JobHarness.Hub(b);
        var onB = new TimedRecorder(remote);
        await remote.StartAsync();
        await remote.InvokeAsync("Subscribe", jobId, 0L);
        await onB.WaitForEndAsync();

        List<StreamEvent> history = await JobHarness.HistoryAsync(clientA, jobId);
        JobHarness.AssertConsecutive(onB.Events);
        Assert.Equal(history.Count, onB.Events.Count);
        Assert.True(a.Services.GetRequiredService<RedisBus>().Failed > 0);
        using HttpResponseMessage response = await clientB.GetAsync(new Uri("/health/ready", UriKind.Relative));
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        JsonElement redisCheck = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("checks").GetProperty("redis");
        Assert.Equal("Degraded", redisCheck.GetProperty("status").GetString());
        Assert.Contains("polling", redisCheck.GetProperty("description").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public void ABatchOverTheSizeBoundCarriesOnlyItsLastSeq()
    {
        List<StreamEvent> events = [.. Enumerable.Range(1, 3).Select(i => new StreamEvent { Seq = i, Kind = "step", Step = i, Loss = 0.5 })];
        List<int> bytes = [.. events.Select(e => JsonSerializer.SerializeToUtf8Bytes(e, StreamJson.Options).Length)];
        int total = bytes.Sum() + bytes.Count;

        LiveMessage fits = LiveMessage.ForBatch("node", events, bytes, maxBytes: total);
        LiveMessage read = JsonSerializer.Deserialize<LiveMessage>(JsonSerializer.SerializeToUtf8Bytes(fits, StreamJson.Options), StreamJson.Options)!;
        Assert.Equal(3, read.Seq);
        Assert.Equal(JsonSerializer.Serialize(events, StreamJson.Options), JsonSerializer.Serialize(read.Events, StreamJson.Options));
        Assert.Equal(bytes, read.Bytes);

        LiveMessage tooLarge = LiveMessage.ForBatch("node", events, bytes, maxBytes: total - 1);
        byte[] body = JsonSerializer.SerializeToUtf8Bytes(tooLarge, StreamJson.Options);
        Assert.Equal("""{"node":"node","seq":3}""", System.Text.Encoding.UTF8.GetString(body));
    }

    private static async Task<Guid> PostJobAsync(HttpClient client, int epochs)
    {
        Guid datasetId = await JobHarness.CreateShapesAsync(client, samples: 512);
        (_, JsonElement job) = await JobHarness.PostJobAsync(client,
            $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": {{epochs}}, "batchSize": 16 }, "monitoring": { "statsEvery": 5 } }""");
        return job.GetProperty("id").GetGuid();
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out");
            await Task.Delay(10);
        }
    }

    /// <summary>
    /// Two nodes on one data folder and one Redis: A trains (role all), B only serves (role api), so every event a
    /// viewer on B gets crossed from A. The folder goes when both have stopped.
    /// </summary>
    private sealed class TwoNodes : IDisposable
    {
        private readonly string _folder = Directory.CreateTempSubdirectory("trainingservice-nodes-").FullName;

        public TwoNodes(string redis, int syncMilliseconds)
        {
            A = Node("a", "all", redis, syncMilliseconds);
            B = Node("b", "api", redis, syncMilliseconds);
        }

        public TrainingServiceFactory A { get; }

        public TrainingServiceFactory B { get; }

        private TrainingServiceFactory Node(string name, string role, string redis, int syncMilliseconds) => new(new()
        {
            ["Role"] = role,
            ["ConnectionStrings:Redis"] = redis,
            ["Redis:SyncMilliseconds"] = syncMilliseconds.ToString(CultureInfo.InvariantCulture),
            ["Telemetry:Node"] = name,
        }, _folder);

        public void Dispose()
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(_folder, recursive: true);
        }
    }

    /// <summary>What a hub client receives, each event with the time it arrived.</summary>
    private sealed class TimedRecorder
    {
        private readonly ConcurrentQueue<(StreamEvent Event, DateTime At)> _arrivals = new();

        public TimedRecorder(HubConnection connection) =>
            connection.On<Guid, List<StreamEvent>>(nameof(ITrainingClient.Events), (_, events) =>
            {
                DateTime now = DateTime.UtcNow;
                foreach (StreamEvent e in events)
                {
                    _arrivals.Enqueue((e, now));
                }
            });

        public List<(StreamEvent Event, DateTime At)> Arrivals => [.. _arrivals];

        public List<StreamEvent> Events => [.. _arrivals.Select(x => x.Event)];

        /// <summary>Waits until something arrives after <paramref name="time"/>.</summary>
        public Task WaitForArrivalAsync(DateTime time) => WaitForAsync(_ => _arrivals.Any(x => x.At > time));

        public Task WaitForEndAsync() => WaitForAsync(events => events.Any(e => e.State is { } state && state.IsEnded()));

        public async Task WaitForAsync(Func<List<StreamEvent>, bool> condition)
        {
            DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(45);
            while (!condition(Events))
            {
                Assert.True(DateTime.UtcNow < deadline, $"timed out; received {Events.Count} events, last seq {Events.LastOrDefault()?.Seq}");
                await Task.Delay(20);
            }
        }
    }
}
