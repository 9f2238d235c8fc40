using Microsoft.AspNetCore.SignalR;
using TrainingService.Api.Jobs;
using TrainingService.Contracts.Streaming;
using TrainingService.Contracts.Training;

namespace TrainingService.Api.Streaming;

/// <summary>
/// /hubs/training. A client calls Subscribe(jobId, afterSeq) and receives Events(jobId, events) with every event after
/// afterSeq — history first, then live — in seq order, with no gap and no duplicate. See docs/streaming.md.
/// </summary>
public sealed class TrainingHub(LiveEvents live, HubConnections connections, JobCommands commands) : Hub<ITrainingClient>
{
    public override Task OnConnectedAsync()
    {
        connections.Add(Context);
        return Task.CompletedTask;
    }

    /// <summary>Stream a job's events after <paramref name="afterSeq"/> (0: from the start).</summary>
    public Task Subscribe(Guid jobId, long afterSeq) => live.SubscribeAsync(Context.ConnectionId, jobId, afterSeq);

    public Task Unsubscribe(Guid jobId) => live.UnsubscribeAsync(Context.ConnectionId, jobId);

    /// <summary>As POST /jobs/{id}/pause; a refusal is a HubException naming the field and the reason, as for every command.</summary>
    public async Task Pause(Guid jobId) => (await commands.PauseAsync(jobId, Context.ConnectionAborted)).ThrowIfRefused();

    /// <summary>As POST /jobs/{id}/resume.</summary>
    public async Task Resume(Guid jobId) => (await commands.ResumeAsync(jobId, Context.ConnectionAborted)).ThrowIfRefused();

    /// <summary>As POST /jobs/{id}/cancel.</summary>
    public async Task Cancel(Guid jobId) => (await commands.CancelAsync(jobId, Context.ConnectionAborted)).ThrowIfRefused();

    /// <summary>As PATCH /jobs/{id}/hyperparameters.</summary>
    public async Task ChangeHyperparameters(Guid jobId, HyperparameterChange change) =>
        (await commands.ChangeHyperparametersAsync(jobId, change, Context.ConnectionAborted)).ThrowIfRefused();

    /// <summary>As POST /jobs/{id}/finish: finish now and keep the model.</summary>
    public async Task Finish(Guid jobId) => (await commands.FinishAsync(jobId, Context.ConnectionAborted)).ThrowIfRefused();

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
