using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using StackExchange.Redis;
using TrainingService.Api.Infrastructure;
using TrainingService.Contracts.Streaming;

namespace TrainingService.Api.Streaming;

/// <summary>Settings of the live path across nodes (configuration section "Redis"; the server is ConnectionStrings:Redis).</summary>
public sealed class RedisOptions
{
    /// <summary>
    /// Above this many bytes of events' JSON a batch's message carries only its last seq, and receivers read the
    /// events from the history: Redis delivers each message whole to every subscriber, so keep them small.
    /// </summary>
    public int MaxMessageBytes { get; set; } = 256 << 10;

    /// <summary>
    /// How often a node reads the last persisted seq of the jobs it streams (one query for all): Redis delivers at most
    /// once, and a lost last message would otherwise leave a viewer waiting for the next one.
    /// </summary>
    public int SyncMilliseconds { get; set; } = 1000;
}

/// <summary>
/// The node's one connection to Redis (when ConnectionStrings:Redis is set) and the two kinds of message it carries:
/// a job's persisted events, on <c>ts:events:&lt;jobId&gt;</c>, and revoked credentials, on <c>ts:revocations</c>.
/// Publishing never waits and never throws: Redis down means messages are dropped and counted, and viewers catch up
/// from the history (docs/architecture.md, "Live events across nodes").
/// </summary>
public sealed class RedisBus(IConnectionMultiplexer redis, IOptions<RedisOptions> options, IConfiguration configuration, ILogger<RedisBus> logger)
{
    internal static readonly RedisChannel Revocations = RedisChannel.Literal("ts:revocations");

    internal static RedisChannel EventsOf(Guid jobId) => RedisChannel.Literal($"ts:events:{jobId:D}");

    private readonly RedisOptions _options = options.Value;
    private long _published;
    private long _received;
    private long _failed;
    private int _failing;

    /// <summary>This process's name on the bus: the node's name and a random part, so two services in one process differ.</summary>
    public string NodeId { get; } = $"{Telemetry.NodeName(configuration)}/{Guid.NewGuid().ToString("N")[..8]}";

    public IConnectionMultiplexer Connection => redis;

    public RedisOptions Options => _options;

    public long Published => Interlocked.Read(ref _published);

    public long Received => Interlocked.Read(ref _received);

    public long Failed => Interlocked.Read(ref _failed);

    internal void CountReceived() => Interlocked.Increment(ref _received);

    /// <summary>One batch of a job's persisted events (after the pump's commit), or only its last seq when too large.</summary>
    internal void PublishEvents(Guid jobId, List<StreamEvent> events, List<int> jsonBytes) =>
        Publish(EventsOf(jobId), () => LiveMessage.ForBatch(NodeId, events, jsonBytes, _options.MaxMessageBytes));

    /// <summary>The job's persisted events after <paramref name="afterSeq"/> are gone (a run restarted from an older checkpoint).</summary>
    internal void PublishTruncate(Guid jobId, long afterSeq) =>
        Publish(EventsOf(jobId), () => new LiveMessage { Node = NodeId, Seq = afterSeq, Truncated = true });

    internal void PublishRevocation(string claimType, string value) =>
        Publish(Revocations, () => new LiveMessage { Node = NodeId, Claim = claimType, Value = value });

    private void Publish(RedisChannel channel, Func<LiveMessage> message)
    {
        if (!redis.IsConnected)
        {
            Fail(null); // not queued behind a reconnect: receivers recover from the history instead
            return;
        }

        try
        {
            byte[] body = JsonSerializer.SerializeToUtf8Bytes(message(), StreamJson.Options);
            redis.GetSubscriber().PublishAsync(channel, body).ContinueWith(
                (t, state) => ((RedisBus)state!).Completed(t), this, CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
        catch (Exception ex)
        {
            Fail(ex);
        }
    }

    private void Completed(Task task)
    {
        if (task.IsCompletedSuccessfully)
        {
            Interlocked.Increment(ref _published);
            if (Interlocked.Exchange(ref _failing, 0) == 1)
            {
                logger.LogInformation("Publishing to Redis works again");
            }
        }
        else
        {
            Fail(task.Exception?.GetBaseException());
        }
    }

    // Logged once per outage, not once per message (ten a second per running job).
    private void Fail(Exception? ex)
    {
        Interlocked.Increment(ref _failed);
        if (Interlocked.Exchange(ref _failing, 1) == 0)
        {
            logger.LogWarning(ex, "Publishing to Redis failed; viewers on other nodes catch up from the history until it works again");
        }
    }
}

/// <summary>
/// What crosses the bus, as JSON. Events: <c>{"node","seq","events","bytes"}</c> (seq: the batch's last; events as the
/// hub sends them and each one's UTF-8 length, both left out above Redis:MaxMessageBytes); a truncation:
/// <c>{"node","seq","truncated":true}</c>; a revocation: <c>{"node","claim","value"}</c>.
/// </summary>
internal sealed class LiveMessage
{
    public string Node { get; set; } = "";

    public long Seq { get; set; }

    public List<StreamEvent>? Events { get; set; }

    public List<int>? Bytes { get; set; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool Truncated { get; set; }

    public string? Claim { get; set; }

    public string? Value { get; set; }

    /// <summary>A batch's message: its events while their JSON fits in <paramref name="maxBytes"/>, else only its last seq.</summary>
    public static LiveMessage ForBatch(string node, List<StreamEvent> events, List<int> jsonBytes, int maxBytes)
    {
        long bytes = jsonBytes.Sum(b => (long)b + 1);
        bool fits = bytes <= maxBytes;
        return new LiveMessage { Node = node, Seq = events[^1].Seq, Events = fits ? events : null, Bytes = fits ? jsonBytes : null };
    }
}

/// <summary>/health/ready's "redis": Degraded, not Unhealthy, while Redis cannot be reached (see the description).</summary>
internal sealed class RedisHealthCheck(RedisBus bus) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(bus.Connection.IsConnected
            ? HealthCheckResult.Healthy("Redis connected: live events and revocations reach every node.")
            : HealthCheckResult.Degraded("Redis cannot be reached: viewers of jobs trained on other nodes get their events by "
                + $"polling the database (every {bus.Options.SyncMilliseconds} ms) instead of live; keys, users and share links "
                + "revoked on other nodes meanwhile do not close this node's hub connections."));
}
