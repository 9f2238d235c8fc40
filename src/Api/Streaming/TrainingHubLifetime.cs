using Microsoft.AspNetCore.SignalR;

namespace TrainingService.Api.Streaming;

/// <summary>
/// SignalR's in-memory lifetime manager for the training hub, which also finds a connection by id, so that
/// <see cref="LiveEvents"/> can write a frame serialised once (per protocol) to each of a job's viewers: the default
/// sends to one connection by serialising the message for it alone, which with hundreds of viewers of a job is
/// hundreds of serialisations of the same events.
/// </summary>
public sealed class TrainingHubLifetime(ILogger<DefaultHubLifetimeManager<TrainingHub>> logger) : DefaultHubLifetimeManager<TrainingHub>(logger)
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, HubConnectionContext> _connections = new();

    public override Task OnConnectedAsync(HubConnectionContext connection)
    {
        _connections[connection.ConnectionId] = connection;
        return base.OnConnectedAsync(connection);
    }

    public override Task OnDisconnectedAsync(HubConnectionContext connection)
    {
        _connections.TryRemove(connection.ConnectionId, out _);
        return base.OnDisconnectedAsync(connection);
    }

    /// <summary>Writes an already serialised message to the connection; a connection that has gone is skipped, as SignalR does.</summary>
    public ValueTask WriteAsync(string connectionId, SerializedHubMessage message, CancellationToken cancellationToken) =>
        _connections.TryGetValue(connectionId, out HubConnectionContext? connection) ? connection.WriteAsync(message, cancellationToken) : ValueTask.CompletedTask;
}
