using Microsoft.AspNetCore.SignalR;
using TrainingService.Contracts.Streaming;

namespace TrainingService.Api.Streaming;

/// <summary>
/// /hubs/training. A client calls Subscribe(jobId, afterSeq) and receives Events(jobId, events) with every event after
/// afterSeq — history first, then live — in seq order, with no gap and no duplicate. See docs/streaming.md.
/// </summary>
public sealed class TrainingHub(LiveEvents live) : Hub<ITrainingClient>
{
    /// <summary>Stream a job's events after <paramref name="afterSeq"/> (0: from the start).</summary>
    public Task Subscribe(Guid jobId, long afterSeq) => live.SubscribeAsync(Context.ConnectionId, jobId, afterSeq);

    public Task Unsubscribe(Guid jobId) => live.UnsubscribeAsync(Context.ConnectionId, jobId);

    public override Task OnDisconnectedAsync(Exception? exception) => live.DisconnectedAsync(Context.ConnectionId);
}
