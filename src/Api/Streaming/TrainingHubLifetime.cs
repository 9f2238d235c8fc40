using Microsoft.AspNetCore.SignalR;

namespace TrainingService.Api.Streaming;

/// <summary>
/// SignalR's in-memory lifetime manager for the training hub, which also keeps every connection in
/// <see cref="HubConnections"/>: from there <see cref="LiveEvents"/> writes a frame serialised once (per protocol) to each
/// of a job's viewers, and a stopping server or a revoked credential closes connections.
/// </summary>
public sealed class TrainingHubLifetime(HubConnections connections, ILogger<DefaultHubLifetimeManager<TrainingHub>> logger)
    : DefaultHubLifetimeManager<TrainingHub>(logger)
{
    public override Task OnConnectedAsync(HubConnectionContext connection)
    {
        connections.Add(connection);
        return base.OnConnectedAsync(connection);
    }

    public override Task OnDisconnectedAsync(HubConnectionContext connection)
    {
        connections.Remove(connection);
        return base.OnDisconnectedAsync(connection);
    }
}
