using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using StackExchange.Redis;
using TrainingService.Api.Persistence;

namespace TrainingService.Api.Streaming;

/// <summary>
/// The receiving side of <see cref="RedisBus"/>: subscribes to a job's channel while someone on this node follows the
/// job, and feeds what other nodes' pumps publish into <see cref="LiveEvents"/>; closes this node's hub connections
/// signed in with a credential revoked on another node. Redis delivers at most once, so it also reads the last
/// persisted seq of every followed job from the database, every Redis:SyncMilliseconds, after subscribing and after a
/// reconnect: a lost message then costs a viewer at most that long, and the events come from the history.
/// </summary>
public sealed class RedisRelay(
    RedisBus bus, LiveEvents live, HubConnections connections, IServiceScopeFactory scopes, TimeProvider clock, ILogger<RedisRelay> logger)
    : BackgroundService
{
    private readonly Dictionary<Guid, ChannelMessageQueue> _jobs = [];
    private ChannelMessageQueue? _revocations;
    private TaskCompletionSource _restored = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _failing;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        bus.Connection.ConnectionRestored += OnRestored;
        TimeSpan every = TimeSpan.FromMilliseconds(bus.Options.SyncMilliseconds);
        DateTimeOffset nextSync = clock.GetUtcNow();
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                Task feedsChanged = live.FeedsChanged;
                Task restored = Volatile.Read(ref _restored).Task;
                try
                {
                    if (restored.IsCompleted)
                    {
                        Volatile.Write(ref _restored, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
                        restored = _restored.Task;
                        // Now, and once more when the re-subscriptions surely stand: what was published in between is lost.
                        nextSync = Min(nextSync, clock.GetUtcNow() + TimeSpan.FromSeconds(1));
                        await SyncAsync(stoppingToken);
                    }

                    if (await SubscribeAsync() || clock.GetUtcNow() >= nextSync)
                    {
                        await SyncAsync(stoppingToken);
                        nextSync = clock.GetUtcNow() + every;
                    }

                    Recovered();
                }
                catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
                {
                    Failed(ex);
                    nextSync = clock.GetUtcNow() + every;
                }

                TimeSpan wait = nextSync - clock.GetUtcNow();
                await Task.WhenAny(feedsChanged, restored, Task.Delay(wait > TimeSpan.Zero ? wait : TimeSpan.Zero, clock, stoppingToken));
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            bus.Connection.ConnectionRestored -= OnRestored;
            foreach (ChannelMessageQueue queue in _jobs.Values.Append(_revocations).OfType<ChannelMessageQueue>())
            {
                await queue.UnsubscribeAsync(CommandFlags.FireAndForget);
            }
        }
    }

    private void OnRestored(object? sender, ConnectionFailedEventArgs e) => Volatile.Read(ref _restored).TrySetResult();

    /// <summary>
    /// Brings the subscriptions in line with the jobs followed on this node (and the revocations channel); true when a
    /// job's channel was added, whose messages between the viewer's first read and now are lost.
    /// </summary>
    private async Task<bool> SubscribeAsync()
    {
        if (!bus.Connection.IsConnected)
        {
            return false; // the subscriptions that stand are renewed by the client on reconnect; new ones wait for it
        }

        ISubscriber subscriber = bus.Connection.GetSubscriber();
        if (_revocations is null)
        {
            _revocations = await subscriber.SubscribeAsync(RedisBus.Revocations);
            _revocations.OnMessage(Revoked);
        }

        var followed = live.FedJobs.ToHashSet();
        foreach (Guid jobId in _jobs.Keys.Where(j => !followed.Contains(j)).ToList())
        {
            await _jobs[jobId].UnsubscribeAsync(CommandFlags.FireAndForget);
            _jobs.Remove(jobId);
        }

        bool added = false;
        foreach (Guid jobId in followed.Where(j => !_jobs.ContainsKey(j)))
        {
            ChannelMessageQueue queue = await subscriber.SubscribeAsync(RedisBus.EventsOf(jobId));
            queue.OnMessage(m => Received(jobId, m)); // one message after another, in the order published
            _jobs[jobId] = queue;
            added = true;
        }

        return added;
    }

    private void Received(Guid jobId, ChannelMessage message)
    {
        if (Read(message) is not { } m || m.Node == bus.NodeId)
        {
            return; // this node's own pump feeds its viewers directly
        }

        if (m.Truncated)
        {
            live.Truncate(jobId, m.Seq);
        }
        else if (m.Events is { Count: > 0 } events && m.Bytes is { } bytes && bytes.Count == events.Count)
        {
            live.Received(jobId, events, bytes);
        }
        else
        {
            live.Advance(jobId, m.Seq); // too large to carry: the viewers read the events from the history
        }
    }

    private void Revoked(ChannelMessage message)
    {
        if (Read(message) is { Claim: { } claim, Value: { } value } m && m.Node != bus.NodeId)
        {
            int closed = connections.AbortSignedInWith(claim, value);
            logger.LogInformation("A credential revoked on {Node} closed {Count} hub connections here", m.Node, closed);
        }
    }

    private LiveMessage? Read(ChannelMessage message)
    {
        bus.CountReceived();
        try
        {
            return JsonSerializer.Deserialize<LiveMessage>((byte[])message.Message!, StreamJson.Options);
        }
        catch (JsonException ex)
        {
            logger.LogWarning(ex, "An unreadable message on Redis channel {Channel} was ignored", message.Channel.ToString());
            return null;
        }
    }

    /// <summary>Every followed job's last persisted seq, in one query: what a lost message would have said.</summary>
    private async Task SyncAsync(CancellationToken cancellationToken)
    {
        List<Guid> jobs = [.. live.FedJobs];
        if (jobs.Count == 0)
        {
            return;
        }

        await using AsyncServiceScope scope = scopes.CreateAsyncScope();
        TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
        var persisted = await db.Jobs.AsNoTracking().Where(j => jobs.Contains(j.Id)).Select(j => new { j.Id, j.LastSeq, j.Attempt })
            .ToListAsync(cancellationToken);
        Dictionary<Guid, (int Attempt, long PersistedSeq)> known = live.FedAttempts.ToDictionary(f => f.Job, f => (f.Attempt, f.PersistedSeq));
        foreach (var job in persisted)
        {
            // A run this node has not heard of (its truncation's message was lost): did it replace events sent here?
            if (known.TryGetValue(job.Id, out var seen) && job.Attempt > seen.Attempt
                && await StreamRewinds.PointAsync(db, job.Id, seen.PersistedSeq, seen.Attempt, cancellationToken) is { } point)
            {
                live.Truncate(job.Id, point);
            }

            live.SawAttempt(job.Id, job.Attempt);
            live.Advance(job.Id, job.LastSeq);
        }
    }

    private void Failed(Exception ex)
    {
        if (!_failing)
        {
            _failing = true;
            logger.LogWarning(ex, "Following jobs through Redis failed; retrying every {Milliseconds} ms", bus.Options.SyncMilliseconds);
        }
    }

    private void Recovered() => _failing = false;

    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;
}
