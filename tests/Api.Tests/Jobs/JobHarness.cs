using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using TrainingService.Contracts.Streaming;
using TrainingService.Training.Loop;

namespace TrainingService.Api.Tests.Jobs;

/// <summary>Small datasets and models so a job trains in a second or two.</summary>
internal static class JobHarness
{
    public static readonly JsonSerializerOptions Json = CreateJson();

    public const string TinySpec = """
        { "input": { "channels": 1, "height": 16, "width": 16 },
          "layers": [ { "kind": "conv2d", "filters": 4, "kernel": 3 }, { "kind": "relu" }, { "kind": "maxpool2d", "kernel": 2 },
                      { "kind": "flatten" }, { "kind": "linear", "units": 2 } ] }
        """;

    /// <summary>A deep, narrow network: every layers event is tens of kilobytes (~2 × blocks layers and parameter tensors).</summary>
    public static string DeepSpec(int blocks)
    {
        IEnumerable<string> block = Enumerable.Repeat("""{ "kind": "conv2d", "filters": 2, "kernel": 3, "padding": "same" }, { "kind": "relu" }""", blocks);
        return $$"""
            { "input": { "channels": 1, "height": 16, "width": 16 },
              "layers": [ {{string.Join(", ", block)}}, { "kind": "flatten" }, { "kind": "linear", "units": 2 } ] }
            """;
    }

    public static async Task<Guid> CreateShapesAsync(HttpClient client, int classes = 2, int samples = 256, int imageSize = 16)
    {
        using HttpResponseMessage response = await client.PostAsJsonAsync(
            "/datasets/builtin", new { kind = "shapes", classes, samples, testSamples = 64, imageSize, channels = 1, seed = 1 });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
    }

    public static async Task<(HttpResponseMessage Response, JsonElement Body)> PostJobAsync(HttpClient client, string json)
    {
        HttpResponseMessage response = await client.PostAsync(new Uri("/jobs", UriKind.Relative), new StringContent(json, System.Text.Encoding.UTF8, "application/json"));
        JsonElement body = response.Content.Headers.ContentLength == 0 ? default : await response.Content.ReadFromJsonAsync<JsonElement>();
        return (response, body);
    }

    /// <summary>
    /// The worker holding the job, one of <paramref name="workers"/>: read until the job shows one, for at most
    /// <paramref name="timeout"/> (it shows none for a moment when a renewal comes late on a loaded machine; a
    /// multi-process test once chose the worker to kill at such a moment, in CI).
    /// </summary>
    public static async Task<string> HolderAsync(HttpClient client, Guid jobId, string[] workers, TimeSpan timeout)
    {
        for (var waited = System.Diagnostics.Stopwatch.StartNew(); ; await Task.Delay(50))
        {
            if ((await client.GetFromJsonAsync<JsonElement>($"/jobs/{jobId}")).GetProperty("worker").GetString() is { } holder)
            {
                Assert.Contains(holder, workers);
                return holder;
            }

            Assert.True(waited.Elapsed < timeout, $"job {jobId} showed no worker for {timeout.TotalSeconds} s");
        }
    }

    public static async Task<JsonElement> WaitForStateAsync(HttpClient client, Guid jobId, string state, TimeSpan? timeout = null)
    {
        DateTime deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        while (true)
        {
            JsonElement job = await client.GetFromJsonAsync<JsonElement>($"/jobs/{jobId}");
            string current = job.GetProperty("state").GetString()!;
            if (current == state)
            {
                return job;
            }

            Assert.True(DateTime.UtcNow < deadline, $"job {jobId} is {current}, still not {state}: {job}");
            Assert.False(current is "Failed" or "Cancelled" or "Succeeded" && current != state, $"job {jobId} ended {current}: {job}");
            await Task.Delay(50);
        }
    }

    public static async Task<List<StreamEvent>> HistoryAsync(HttpClient client, Guid jobId)
    {
        var all = new List<StreamEvent>();
        while (true)
        {
            List<StreamEvent> page = (await client.GetFromJsonAsync<List<StreamEvent>>($"/jobs/{jobId}/events?afterSeq={(all.Count == 0 ? 0 : all[^1].Seq)}&limit=500", Json))!;
            if (page.Count == 0)
            {
                return all;
            }

            all.AddRange(page);
        }
    }

    /// <summary>The bytes the job's stored history counts for: each event's JSON as stored (UTF-8) and its row.</summary>
    public static async Task<long> StoredHistoryBytesAsync(HttpClient client, Guid jobId)
    {
        long bytes = 0, after = 0;
        while (true)
        {
            JsonElement[] page = [.. (await client.GetFromJsonAsync<JsonElement>($"/jobs/{jobId}/events?afterSeq={after}&limit=1000")).EnumerateArray()];
            if (page.Length == 0)
            {
                return bytes;
            }

            bytes += page.Sum(e => System.Text.Encoding.UTF8.GetByteCount(e.GetRawText()) + (long)HistoryEstimate.RowBytes
                + (e.GetProperty("kind").GetString() == "step" ? HistoryEstimate.StepFiguresBytes : 0));
            after = page[^1].GetProperty("seq").GetInt64();
        }
    }

    public static HubConnection Hub(TrainingServiceFactory factory, bool messagePack = false) =>
        Hub(factory, TrainingServiceFactory.AdminKey, messagePack);

    /// <summary>A client that signs in with <paramref name="accessToken"/> (an API key or a share token; null: none).</summary>
    public static HubConnection Hub(TrainingServiceFactory factory, string? accessToken, bool messagePack = false)
    {
        IHubConnectionBuilder builder = new HubConnectionBuilder()
            .WithUrl(new Uri(factory.Server.BaseAddress, "/hubs/training"), o =>
            {
                o.Transports = HttpTransportType.LongPolling;
                o.HttpMessageHandlerFactory = _ => factory.Server.CreateHandler();
                o.AccessTokenProvider = () => Task.FromResult(accessToken);
            });
        builder = messagePack ? builder.AddMessagePackProtocol() : builder.AddJsonProtocol(o => o.PayloadSerializerOptions = Json);
        return builder.Build();
    }

    public static void AssertConsecutive(IReadOnlyList<StreamEvent> events)
    {
        for (int i = 0; i < events.Count; i++)
        {
            Assert.True(events[i].Seq == i + 1, $"event {i} has seq {events[i].Seq}; seqs: {string.Join(",", events.Select(e => e.Seq))}");
        }
    }

    private static JsonSerializerOptions CreateJson()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web);
        options.Converters.Add(new System.Text.Json.Serialization.JsonStringEnumConverter());
        options.NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals;
        return options;
    }
}

/// <summary>
/// What a viewer holds of one job, as a dashboard keeps it: the events it is sent, less those it is told a later run
/// replaced (Rewind). Several connections may feed one (a viewer reconnecting to a restarted node); with
/// <c>onlyNew</c>, events at or below the last held are ignored (the SignalR client may still run a stopped
/// connection's handlers, aspnetcore#20104).
/// </summary>
internal sealed class HeldEvents(bool onlyNew = false)
{
    private readonly List<StreamEvent> _events = [];
    private readonly List<(long AfterSeq, long Held)> _rewinds = [];

    /// <summary>A client over WebSockets without negotiation (what the dashboard does behind a load balancer) feeding these.</summary>
    public HubConnection Connect(Uri node)
    {
        HubConnection hub = new HubConnectionBuilder()
            .WithUrl(new Uri(node, "/hubs/training"), o =>
            {
                o.Transports = HttpTransportType.WebSockets;
                o.SkipNegotiation = true;
                o.AccessTokenProvider = () => Task.FromResult<string?>(TrainingServiceFactory.AdminKey);
            })
            .AddJsonProtocol(o => o.PayloadSerializerOptions = JobHarness.Json)
            .Build();
        hub.On<Guid, List<StreamEvent>>(nameof(ITrainingClient.Events), (_, events) =>
        {
            lock (_events)
            {
                long last = _events.Count == 0 ? 0 : _events[^1].Seq;
                _events.AddRange(onlyNew ? events.Where(e => e.Seq > last) : events);
            }
        });
        hub.On<Guid, long>(nameof(ITrainingClient.Rewind), (_, afterSeq) =>
        {
            lock (_events)
            {
                _rewinds.Add((afterSeq, _events.Count == 0 ? 0 : _events[^1].Seq));
                _events.RemoveAll(e => e.Seq > afterSeq);
            }
        });
        return hub;
    }

    public List<StreamEvent> Events
    {
        get
        {
            lock (_events)
            {
                return [.. _events];
            }
        }
    }

    /// <summary>Each Rewind's seq, and the last seq held when it came.</summary>
    public List<(long AfterSeq, long Held)> Rewinds
    {
        get
        {
            lock (_events)
            {
                return [.. _rewinds];
            }
        }
    }

    public long LastSeq => Events.LastOrDefault()?.Seq ?? 0;

    /// <summary>Waits until the last event held has <paramref name="seq"/> or more.</summary>
    public async Task WaitForSeqAsync(long seq, TimeSpan timeout)
    {
        for (var waited = System.Diagnostics.Stopwatch.StartNew(); LastSeq < seq; await Task.Delay(20))
        {
            Assert.True(waited.Elapsed < timeout, $"the viewer stopped at seq {LastSeq} of {seq}");
        }
    }
}

/// <summary>Collects what a SignalR client receives, per job, in arrival order.</summary>
internal sealed class StreamRecorder
{
    private readonly ConcurrentQueue<StreamEvent> _events = new();
    private int _messages;

    public StreamRecorder(HubConnection connection) =>
        connection.On<Guid, List<StreamEvent>>(nameof(ITrainingClient.Events), (_, events) =>
        {
            Interlocked.Increment(ref _messages);
            foreach (StreamEvent e in events)
            {
                _events.Enqueue(e);
            }
        });

    public List<StreamEvent> Events => [.. _events];

    /// <summary>Events messages received.</summary>
    public int Messages => Volatile.Read(ref _messages);

    public async Task WaitForAsync(Func<List<StreamEvent>, bool> condition, TimeSpan? timeout = null)
    {
        DateTime deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        while (!condition(Events))
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out; received {Events.Count} events, last seq {Events.LastOrDefault()?.Seq}");
            await Task.Delay(20);
        }
    }
}
