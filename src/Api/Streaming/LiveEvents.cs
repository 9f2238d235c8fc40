using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR;
using Microsoft.EntityFrameworkCore;
using TrainingService.Api.Persistence;
using TrainingService.Contracts.Streaming;
using TrainingService.Contracts.Training;

namespace TrainingService.Api.Streaming;

/// <summary>
/// Sends each subscribed connection the events of a job in seq order, continuing exactly after the last one it was
/// sent: from recent events kept in memory when it is close behind, else from the history. Each subscription is its
/// own sender, so a slow connection only delays itself; it buffers nothing but "the last seq sent".
/// </summary>
public sealed class LiveEvents(IHubContext<TrainingHub, ITrainingClient> hub, IServiceScopeFactory scopes, ILogger<LiveEvents> logger)
{
    private readonly IHubContext<TrainingHub, ITrainingClient> _hub = hub;
    private readonly ILogger<LiveEvents> _logger = logger;

    private const int RecentPerJob = 2048;
    private const int MaxFrame = 1000;

    private readonly ConcurrentDictionary<Guid, JobFeed> _feeds = new();
    private readonly ConcurrentDictionary<(string Connection, Guid Job), Subscription> _subscriptions = new();

    public async Task SubscribeAsync(string connectionId, Guid jobId, long afterSeq)
    {
        long persisted;
        await using (AsyncServiceScope scope = scopes.CreateAsyncScope())
        {
            TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
            JobRecord job = await db.Jobs.AsNoTracking().FirstOrDefaultAsync(j => j.Id == jobId)
                ?? throw new HubException($"There is no job {jobId}.");
            persisted = job.LastSeq;
        }

        JobFeed feed = _feeds.GetOrAdd(jobId, _ => new JobFeed());
        feed.Advance(persisted);
        var subscription = new Subscription(this, connectionId, jobId, Math.Max(0, afterSeq), feed);
        if (_subscriptions.TryRemove((connectionId, jobId), out Subscription? previous))
        {
            await previous.DisposeAsync();
        }

        _subscriptions[(connectionId, jobId)] = subscription;
        subscription.Start();
    }

    public async Task UnsubscribeAsync(string connectionId, Guid jobId)
    {
        if (_subscriptions.TryRemove((connectionId, jobId), out Subscription? subscription))
        {
            await subscription.DisposeAsync();
        }
    }

    public async Task DisconnectedAsync(string connectionId)
    {
        foreach ((string connection, Guid job) in _subscriptions.Keys.Where(k => k.Connection == connectionId).ToList())
        {
            await UnsubscribeAsync(connection, job);
        }
    }

    /// <summary>Called by the pump once events are in the history.</summary>
    internal void Persisted(Guid jobId, List<StreamEvent> events)
    {
        if (_feeds.TryGetValue(jobId, out JobFeed? feed))
        {
            feed.Add(events);
        }
    }

    internal void Truncate(Guid jobId, long afterSeq)
    {
        if (_feeds.TryGetValue(jobId, out JobFeed? feed))
        {
            feed.Truncate(afterSeq);
        }
    }

    private async Task<List<StreamEvent>> ReadHistoryAsync(Guid jobId, long afterSeq, long upTo)
    {
        await using AsyncServiceScope scope = scopes.CreateAsyncScope();
        TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
        List<string> json = await db.JobEvents.AsNoTracking()
            .Where(e => e.JobId == jobId && e.Seq > afterSeq && e.Seq <= upTo)
            .OrderBy(e => e.Seq).Take(MaxFrame).Select(e => e.Json).ToListAsync();
        // A List, not a collection expression's synthesized type: MessagePack serialises hub arguments by runtime type.
        return json.ConvertAll(j => JsonSerializer.Deserialize<StreamEvent>(j, StreamJson.Options)!);
    }

    /// <summary>A job's recent events and the highest persisted seq; subscribers wait on it for more.</summary>
    private sealed class JobFeed
    {
        private readonly Lock _lock = new();
        private readonly List<StreamEvent> _recent = [];
        private TaskCompletionSource _more = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public long PersistedSeq { get; private set; }

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
            lock (_lock)
            {
                PersistedSeq = Math.Max(PersistedSeq, seq);
            }
        }

        public void Add(List<StreamEvent> events)
        {
            TaskCompletionSource more;
            lock (_lock)
            {
                foreach (StreamEvent e in events)
                {
                    if (_recent.Count == 0 || e.Seq == _recent[^1].Seq + 1)
                    {
                        _recent.Add(e);
                    }
                    else
                    {
                        _recent.Clear();
                        _recent.Add(e);
                    }
                }

                if (_recent.Count > RecentPerJob)
                {
                    _recent.RemoveRange(0, _recent.Count - RecentPerJob);
                }

                PersistedSeq = Math.Max(PersistedSeq, events[^1].Seq);
                more = _more;
                _more = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            more.TrySetResult();
        }

        public void Truncate(long afterSeq)
        {
            lock (_lock)
            {
                _recent.RemoveAll(e => e.Seq > afterSeq);
                PersistedSeq = Math.Min(PersistedSeq, afterSeq);
            }
        }

        /// <summary>Events after <paramref name="afterSeq"/> from memory, or null when memory no longer reaches back that far.</summary>
        public List<StreamEvent>? After(long afterSeq)
        {
            lock (_lock)
            {
                if (_recent.Count == 0 || _recent[0].Seq > afterSeq + 1)
                {
                    return null;
                }

                int start = (int)(afterSeq + 1 - _recent[0].Seq);
                return start >= _recent.Count ? [] : _recent.GetRange(start, Math.Min(MaxFrame, _recent.Count - start));
            }
        }
    }

    private sealed class Subscription(LiveEvents owner, string connectionId, Guid jobId, long afterSeq, JobFeed feed) : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private Task _sender = Task.CompletedTask;
        private long _sent = afterSeq;

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

        private async Task SendAsync()
        {
            CancellationToken stop = _stop.Token;
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    Task more = feed.More;
                    while (_sent < feed.PersistedSeq && !stop.IsCancellationRequested)
                    {
                        List<StreamEvent> events = feed.After(_sent) is { Count: > 0 } recent
                            ? recent
                            : await owner.ReadHistoryAsync(jobId, _sent, feed.PersistedSeq);
                        if (events.Count == 0)
                        {
                            break;
                        }

                        await owner._hub.Clients.Client(connectionId).Events(jobId, events);
                        _sent = events[^1].Seq;
                    }

                    await more.WaitAsync(stop);
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
            }
            catch (Exception ex)
            {
                owner._logger.LogWarning(ex, "Streaming job {JobId} to connection {ConnectionId} stopped", jobId, connectionId);
            }
        }
    }
}
