using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Protocol;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using TrainingService.Api.Persistence;
using TrainingService.Contracts.Streaming;
using TrainingService.Contracts.Training;

namespace TrainingService.Api.Streaming;

/// <summary>
/// Sends each subscribed connection the events of a job in seq order, continuing exactly after the last one it was
/// sent: from recent events kept in memory when it is close behind, else from the history. Each subscription is its
/// own sender, so a slow connection only delays itself; it buffers nothing but "the last seq sent" (SignalR's own
/// per-connection buffer is bounded: a sender whose viewer reads slowly waits, and then reads on from memory or the
/// history). Every message holds at most Streaming:MaxFrameBytes of events' JSON, so catching up on a long history is
/// many pages, not one frame. The viewers of a job who are close behind get the same frames (the events after a
/// given seq), each serialised once per protocol for all of them (<see cref="Frame"/>).
/// </summary>
/// <remarks>
/// With Redis (ConnectionStrings:Redis), what this node's pump persists is also published to the other nodes
/// (<see cref="RedisBus"/>), and what theirs persist arrives through <see cref="RedisRelay"/>: a viewer follows a job
/// live whichever node trains it.
/// </remarks>
public sealed class LiveEvents(
    IHubContext<TrainingHub, ITrainingClient> hub, HubConnections connections, IServiceScopeFactory scopes, IOptions<StreamingOptions> options,
    ILogger<LiveEvents> logger, RedisBus? bus = null)
{
    private readonly IHubContext<TrainingHub, ITrainingClient> _hub = hub;
    private readonly HubConnections _connections = connections;
    private readonly ILogger<LiveEvents> _logger = logger;
    private readonly StreamingOptions _options = options.Value;

    private const int RecentPerJob = 2048;
    private const int MaxFrame = 1000;

    // What a JSON hub message adds around the events: {"type":1,"target":"Events","arguments":["<job id>",[…]]} and a separator.
    internal const int FrameOverhead = 128;

    private readonly ConcurrentDictionary<Guid, JobFeed> _feeds = new();
    private readonly Lock _feedsGate = new();
    private readonly ConcurrentDictionary<(string Connection, Guid Job), Subscription> _subscriptions = new();
    private TaskCompletionSource _feedsChanged = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>
    /// Streams the job's events after <paramref name="afterSeq"/> to the connection; <paramref name="persistedSeq"/> is
    /// the job's last persisted seq as the caller read it (with its visibility check), <paramref name="attempt"/> the
    /// job's run then. <paramref name="replacedAfter"/>, for a connection that already holds events, reads where a later
    /// run replaced them, if one did (<see cref="StreamRewinds"/>): it is told so first. It is read once the subscription
    /// is in place, so a run that resumes meanwhile is either in what it reads or truncates with the subscription there
    /// to be told (read before, a truncation between the read and the subscription would go unsaid). A connection
    /// subscribes to at most Streaming:MaxSubscriptionsPerConnection jobs at once.
    /// </summary>
    public async Task SubscribeAsync(string connectionId, Guid jobId, long afterSeq, long persistedSeq, int attempt = 0,
        Func<Task<long?>>? replacedAfter = null)
    {
        if (_subscriptions.TryRemove((connectionId, jobId), out Subscription? previous))
        {
            await EndAsync(previous);
        }
        else if (_subscriptions.Keys.Count(k => k.Connection == connectionId) >= _options.MaxSubscriptionsPerConnection)
        {
            throw new HubException($"id: This connection follows {_options.MaxSubscriptionsPerConnection} jobs already, the most it may "
                + "(configuration Streaming:MaxSubscriptionsPerConnection); unsubscribe from one first.");
        }

        JobFeed feed = Acquire(jobId);
        feed.Advance(persistedSeq);
        feed.SawAttempt(attempt);
        var subscription = new Subscription(this, connectionId, jobId, Math.Max(0, afterSeq), feed);
        if (!_subscriptions.TryAdd((connectionId, jobId), subscription))
        {
            Release(jobId, feed); // the same connection subscribed again meanwhile: that one stands
            return;
        }

        try
        {
            if (replacedAfter is not null && await replacedAfter() is { } point)
            {
                subscription.RewindTo(point);
            }
        }
        catch
        {
            if (_subscriptions.TryRemove(KeyValuePair.Create((connectionId, jobId), subscription)))
            {
                await EndAsync(subscription);
            }

            throw;
        }

        subscription.Start();
    }

    public async Task UnsubscribeAsync(string connectionId, Guid jobId)
    {
        if (_subscriptions.TryRemove((connectionId, jobId), out Subscription? subscription))
        {
            await EndAsync(subscription);
        }
    }

    public async Task DisconnectedAsync(string connectionId)
    {
        foreach ((string connection, Guid job) in _subscriptions.Keys.Where(k => k.Connection == connectionId).ToList())
        {
            await UnsubscribeAsync(connection, job);
        }
    }

    /// <summary>Frames made from memory so far (each serialised once per protocol, for all the viewers it goes to).</summary>
    internal long FramesMade => Interlocked.Read(ref _framesMade);

    private long _framesMade;

    /// <summary>Jobs with a feed in memory: those someone follows now.</summary>
    internal int Feeds => _feeds.Count;

    /// <summary>The jobs someone on this node follows now.</summary>
    internal ICollection<Guid> FedJobs => _feeds.Keys;

    /// <summary>Completes the next time a job gains its first follower on this node or loses its last.</summary>
    internal Task FeedsChanged => Volatile.Read(ref _feedsChanged).Task;

    private void SignalFeedsChanged() =>
        Interlocked.Exchange(ref _feedsChanged, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    private async Task EndAsync(Subscription subscription)
    {
        await subscription.DisposeAsync();
        Release(subscription.JobId, subscription.Feed);
    }

    // A job's feed (up to Streaming:RecentBytesPerJob of recent events) lives while someone follows the job, and goes
    // with its last subscriber: a feed kept for every job ever watched would hold megabytes each for good.
    private JobFeed Acquire(Guid jobId)
    {
        JobFeed feed;
        bool first;
        lock (_feedsGate)
        {
            feed = _feeds.GetOrAdd(jobId, _ => new JobFeed(this, jobId, _options.RecentBytesPerJob));
            first = feed.Subscribers++ == 0;
        }

        if (first)
        {
            SignalFeedsChanged();
        }

        return feed;
    }

    private void Release(Guid jobId, JobFeed feed)
    {
        bool removed = false;
        lock (_feedsGate)
        {
            if (--feed.Subscribers == 0)
            {
                removed = _feeds.TryRemove(KeyValuePair.Create(jobId, feed));
            }
        }

        if (removed)
        {
            SignalFeedsChanged();
        }
    }

    /// <summary>Called by the pump once events are in the history, with the length of each one's stored JSON.</summary>
    internal void Persisted(Guid jobId, List<StreamEvent> events, List<int> jsonBytes)
    {
        Received(jobId, events, jsonBytes);
        bus?.PublishEvents(jobId, events, jsonBytes);
    }

    /// <summary>Called by the pump once the job's persisted events after <paramref name="afterSeq"/> are gone.</summary>
    internal void Truncated(Guid jobId, long afterSeq)
    {
        Truncate(jobId, afterSeq);
        bus?.PublishTruncate(jobId, afterSeq);
    }

    /// <summary>Events another node persisted (through Redis), or this node's pump did.</summary>
    internal void Received(Guid jobId, List<StreamEvent> events, List<int> jsonBytes)
    {
        if (_feeds.TryGetValue(jobId, out JobFeed? feed))
        {
            // A later run's first event at a seq already seen: it replaced the events from there (the message that said
            // so was lost; Redis delivers at most once).
            if (events.Find(e => e is { State: RunState.Running, Attempt: { } run } && run > feed.Attempt && e.Seq <= feed.PersistedSeq) is { } replaced)
            {
                Truncate(jobId, replaced.Seq - 1);
            }

            feed.Add(events, jsonBytes);
        }
    }

    /// <summary>
    /// The job's persisted events after <paramref name="afterSeq"/> are gone (a run resumed from an older checkpoint
    /// writes new ones under those seqs): every viewer sent any of them is told to drop them, then sent the new ones.
    /// </summary>
    internal void Truncate(Guid jobId, long afterSeq)
    {
        if (_feeds.TryGetValue(jobId, out JobFeed? feed))
        {
            foreach (Subscription subscription in _subscriptions.Values.Where(s => s.JobId == jobId))
            {
                subscription.RewindTo(afterSeq);
            }

            feed.Truncate(afterSeq); // wakes the senders
        }
    }

    /// <summary>The attempt of each job followed here as last known (a later one may have replaced events: <see cref="StreamRewinds"/>).</summary>
    internal IEnumerable<(Guid Job, int Attempt, long PersistedSeq)> FedAttempts => _feeds.Select(f => (f.Key, f.Value.Attempt, f.Value.PersistedSeq));

    /// <summary>The job's run is now <paramref name="attempt"/>.</summary>
    internal void SawAttempt(Guid jobId, int attempt)
    {
        if (_feeds.TryGetValue(jobId, out JobFeed? feed))
        {
            feed.SawAttempt(attempt);
        }
    }

    /// <summary>The job's history reaches <paramref name="seq"/>: its viewers read what memory lacks from the history.</summary>
    internal void Advance(Guid jobId, long seq)
    {
        if (_feeds.TryGetValue(jobId, out JobFeed? feed))
        {
            feed.Advance(seq);
        }
    }

    /// <summary>The events' JSON one message may carry.</summary>
    private int FrameBudget => _options.MaxFrameBytes - FrameOverhead;

    /// <summary>The next page of history after <paramref name="afterSeq"/>: at most <see cref="FrameBudget"/> bytes of JSON (one event at least).</summary>
    private async Task<List<StreamEvent>> ReadHistoryAsync(Guid jobId, long afterSeq, long upTo, CancellationToken cancellationToken)
    {
        await using AsyncServiceScope scope = scopes.CreateAsyncScope();
        TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
        HistoryChunk chunk = await HistoryChunk.ReadAsync(db, jobId, afterSeq, upTo, MaxFrame, FrameBudget, cancellationToken);
        // A List, not a collection expression's synthesized type: MessagePack serialises hub arguments by runtime type.
        return chunk.Json.ConvertAll(j => JsonSerializer.Deserialize<StreamEvent>(j, StreamJson.Options)!);
    }

    /// <summary>
    /// The events after one seq, as one Events message; serialised on first use, once per protocol (SignalR's
    /// <see cref="SerializedHubMessage"/> keeps each), and then the same bytes go to every viewer at that seq.
    /// </summary>
    private sealed class Frame(Guid jobId, List<StreamEvent> events)
    {
        public List<StreamEvent> Events => events;

        public SerializedHubMessage Message { get; } = new(new InvocationMessage(nameof(ITrainingClient.Events), [jobId, events]));
    }

    /// <summary>A job's recent events and the highest persisted seq; subscribers wait on it for more.</summary>
    private sealed class JobFeed(LiveEvents owner, Guid jobId, int maxRecentBytes)
    {
        // The frames made last, by the seq they follow: a job's viewers at the live edge all ask for the events after
        // the same seq. A few suffice (the senders of one batch ask within moments of each other); each holds at most
        // one frame's events and their serialisations.
        private const int FramesKept = 4;

        private readonly Lock _lock = new();
        private readonly Dictionary<long, Frame> _frames = [];
        private readonly Queue<long> _frameOrder = new();
        private readonly List<StreamEvent> _recent = [];
        private readonly List<int> _recentBytes = [];
        private long _heldBytes;
        private TaskCompletionSource _more = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public long PersistedSeq { get; private set; }

        /// <summary>The job's latest run as this node knows it.</summary>
        public int Attempt { get; private set; }

        public void SawAttempt(int attempt)
        {
            lock (_lock)
            {
                Attempt = Math.Max(Attempt, attempt);
            }
        }

        /// <summary>Subscriptions using this feed; under LiveEvents' feeds lock.</summary>
        public int Subscribers { get; set; }

        public Task More
        {
            get
            {
                lock (_lock)
                {
                    return _more.Task;
                }
            }
        }

        public void Advance(long seq)
        {
            TaskCompletionSource more;
            lock (_lock)
            {
                if (seq <= PersistedSeq)
                {
                    return;
                }

                PersistedSeq = seq;
                more = _more;
                _more = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            more.TrySetResult();
        }

        public void Add(List<StreamEvent> events, List<int> jsonBytes)
        {
            TaskCompletionSource more;
            lock (_lock)
            {
                for (int i = 0; i < events.Count; i++)
                {
                    if (_recent.Count > 0 && events[i].Seq != _recent[^1].Seq + 1)
                    {
                        _recent.Clear();
                        _recentBytes.Clear();
                        _heldBytes = 0;
                        ClearFrames();
                    }

                    if (events[i].Attempt is { } attempt)
                    {
                        Attempt = Math.Max(Attempt, attempt);
                    }

                    _recent.Add(events[i]);
                    _recentBytes.Add(jsonBytes[i]);
                    _heldBytes += jsonBytes[i];
                }

                int drop = 0;
                while (drop < _recent.Count && (_recent.Count - drop > RecentPerJob || _heldBytes > maxRecentBytes))
                {
                    _heldBytes -= _recentBytes[drop++];
                }

                _recent.RemoveRange(0, drop);
                _recentBytes.RemoveRange(0, drop);

                PersistedSeq = Math.Max(PersistedSeq, events[^1].Seq);
                more = _more;
                _more = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            more.TrySetResult();
        }

        public void Truncate(long afterSeq)
        {
            TaskCompletionSource more;
            lock (_lock)
            {
                int keep = _recent.FindIndex(e => e.Seq > afterSeq);
                keep = keep < 0 ? _recent.Count : keep;
                for (int j = keep; j < _recent.Count; j++)
                {
                    _heldBytes -= _recentBytes[j];
                }

                _recent.RemoveRange(keep, _recent.Count - keep);
                _recentBytes.RemoveRange(keep, _recentBytes.Count - keep);
                ClearFrames(); // some may hold replaced events
                PersistedSeq = Math.Min(PersistedSeq, afterSeq);
                more = _more;
                _more = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            more.TrySetResult();
        }

        private void ClearFrames()
        {
            _frames.Clear();
            _frameOrder.Clear();
        }

        /// <summary>
        /// Events after <paramref name="afterSeq"/> from memory, at most <paramref name="budget"/> bytes of JSON (one event at
        /// least), or null when memory does not hold the next one: it no longer reaches back that far, or it has not got
        /// that far (PersistedSeq advanced past it without the events: a lost Redis message, a seq-only one). The frame
        /// made for another viewer at the same seq, if there is one: possibly fewer events than memory now holds.
        /// </summary>
        public Frame? After(long afterSeq, int budget)
        {
            lock (_lock)
            {
                if (_recent.Count == 0 || _recent[0].Seq > afterSeq + 1 || _recent[^1].Seq <= afterSeq)
                {
                    return null;
                }

                if (_frames.TryGetValue(afterSeq, out Frame? made))
                {
                    return made;
                }

                int start = (int)(afterSeq + 1 - _recent[0].Seq);
                int end = start;
                for (long bytes = 2; end < _recent.Count && end - start < MaxFrame; end++)
                {
                    bytes += _recentBytes[end] + 1;
                    if (bytes > budget && end > start)
                    {
                        break;
                    }
                }

                var frame = new Frame(jobId, _recent.GetRange(start, end - start));
                Interlocked.Increment(ref owner._framesMade);
                if (_frameOrder.Count == FramesKept)
                {
                    _frames.Remove(_frameOrder.Dequeue());
                }

                _frames[afterSeq] = frame;
                _frameOrder.Enqueue(afterSeq);
                return frame;
            }
        }
    }

    private sealed class Subscription(LiveEvents owner, string connectionId, Guid jobId, long afterSeq, JobFeed feed) : IAsyncDisposable
    {
        public Guid JobId => jobId;

        public JobFeed Feed => feed;

        private readonly CancellationTokenSource _stop = new();
        private Task _sender = Task.CompletedTask;
        private long _sent = afterSeq;
        private long _rewindTo = -1;

        /// <summary>Events after <paramref name="seq"/> were replaced: if any were sent, the sender says so before sending more.</summary>
        public void RewindTo(long seq)
        {
            long current = Interlocked.Read(ref _rewindTo);
            while ((current < 0 || seq < current) && Interlocked.CompareExchange(ref _rewindTo, seq, current) != current)
            {
                current = Interlocked.Read(ref _rewindTo);
            }
        }

        public void Start() => _sender = Task.Run(SendAsync);

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            try
            {
                await _sender;
            }
            catch (OperationCanceledException)
            {
            }

            _stop.Dispose();
        }

        private async Task RewindAsync()
        {
            long point = Interlocked.Read(ref _rewindTo);
            if (point < 0)
            {
                return;
            }

            if (point < _sent)
            {
                await owner._hub.Clients.Client(connectionId).Rewind(jobId, point);
                _sent = point;
            }

            Interlocked.CompareExchange(ref _rewindTo, -1, point); // a lower point set meanwhile stays for the next look
        }

        // A read or send that fails (a storage fault, a timeout) is tried again from the last seq sent, after 0.25 s,
        // doubling to 5 s: a viewer must not be left on a connection that silently stopped streaming.
        private async Task SendAsync()
        {
            CancellationToken stop = _stop.Token;
            TimeSpan retry = TimeSpan.FromMilliseconds(250);
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    Task more = feed.More;
                    await RewindAsync();
                    while (_sent < feed.PersistedSeq && !stop.IsCancellationRequested)
                    {
                        List<StreamEvent> events;
                        if (feed.After(_sent, owner.FrameBudget) is { } frame)
                        {
                            events = frame.Events;
                            await owner._connections.WriteAsync(connectionId, frame.Message, stop);
                        }
                        else
                        {
                            events = await owner.ReadHistoryAsync(jobId, _sent, feed.PersistedSeq, stop);
                            if (events.Count == 0)
                            {
                                break;
                            }

                            await owner._hub.Clients.Client(connectionId).Events(jobId, events);
                        }

                        _sent = events[^1].Seq;
                        retry = TimeSpan.FromMilliseconds(250);
                        await RewindAsync(); // a truncation while these were on their way: they may be among the replaced
                    }

                    await more.WaitAsync(stop);
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception ex)
                {
                    owner._logger.LogWarning(ex, "Streaming job {JobId} to connection {ConnectionId} failed after seq {Seq}; trying again in {Delay} ms",
                        jobId, connectionId, _sent, retry.TotalMilliseconds);
                    try
                    {
                        await Task.Delay(retry, stop);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }

                    retry = TimeSpan.FromTicks(Math.Min(retry.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
                }
            }
        }
    }
}
