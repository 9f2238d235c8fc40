using Microsoft.AspNetCore.SignalR;
using TrainingService.Api.Jobs;
using TrainingService.Contracts.Streaming;
using TrainingService.Contracts.Training;

namespace TrainingService.Api.Streaming;

/// <summary>
/// /hubs/training. A client calls Subscribe(jobId, afterSeq) and receives Events(jobId, events) with every event after
/// afterSeq — history first, then live — in seq order, with no gap and no duplicate. See docs/streaming.md.
/// </summary>
public sealed class TrainingHub(LiveEvents live, HubConnections connections, JobSteering steering) : Hub<ITrainingClient>
{
    public override Task OnConnectedAsync()
    {
        connections.Add(Context);
        return Task.CompletedTask;
    }

    /// <summary>Stream a job's events after <paramref name="afterSeq"/> (0: from the start).</summary>
    public Task Subscribe(Guid jobId, long afterSeq) => live.SubscribeAsync(Context.ConnectionId, jobId, afterSeq);

    public Task Unsubscribe(Guid jobId) => live.UnsubscribeAsync(Context.ConnectionId, jobId);

    /// <summary>As PATCH /jobs/{id}/hyperparameters; a refusal is a HubException naming the field and the reason.</summary>
    public async Task ChangeHyperparameters(Guid jobId, HyperparameterChange change) =>
        Throw((await steering.ChangeAsync(jobId, change, Context.ConnectionAborted)).Error);

    /// <summary>As POST /jobs/{id}/finish: finish now and keep the model.</summary>
    public async Task Finish(Guid jobId) => Throw((await steering.FinishAsync(jobId, Context.ConnectionAborted)).Error);

    private static void Throw(SteeringError? error)
    {
        if (error is not null)
        {
            throw new HubException(string.Join("; ", error.Errors.Select(e => $"{e.Key}: {string.Join(" ", e.Value)}")));
        }
    }

    public override Task OnDisconnectedAsync(Exception? exception)
    {
        connections.Remove(Context);
        return live.DisconnectedAsync(Context.ConnectionId);
    }
}

/// <summary>
/// The open hub connections, so that a stopping server closes them at once: otherwise Kestrel waits for every
/// dashboard's WebSocket up to the shutdown timeout (30 s), and `docker stop` kills the process before running jobs
/// have checkpointed. Clients see the close and reconnect (to the restarted server).
/// </summary>
public sealed class HubConnections
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, HubCallerContext> _open = new();
    private volatile bool _stopping;

    public HubConnections(IHostApplicationLifetime lifetime) => lifetime.ApplicationStopping.Register(AbortAll);

    /// <summary>Tracks a new connection; one that arrives while the server stops (a quick reconnect) is closed at once.</summary>
    internal void Add(HubCallerContext context)
    {
        _open[context.ConnectionId] = context;
        if (_stopping)
        {
            context.Abort();
        }
    }

    internal void Remove(HubCallerContext context) => _open.TryRemove(context.ConnectionId, out _);

    private void AbortAll()
    {
        _stopping = true;
        foreach (HubCallerContext context in _open.Values)
        {
            context.Abort();
        }
    }
}
