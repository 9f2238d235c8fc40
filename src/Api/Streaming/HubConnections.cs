using System.Collections.Concurrent;
using Microsoft.AspNetCore.SignalR;

namespace TrainingService.Api.Streaming;

/// <summary>
/// This node's open hub connections, by id (kept by <see cref="TrainingHubLifetime"/>), for three things:
/// <list type="bullet">
/// <item>a frame serialised once is written to each of a job's viewers (<see cref="WriteAsync"/>): SignalR's own
/// send-to-one serialises the message for that connection alone, hundreds of times for hundreds of viewers;</item>
/// <item>a stopping server closes them at once: otherwise Kestrel waits for every dashboard's WebSocket up to the
/// shutdown timeout (30 s), and `docker stop` kills the process before running jobs have checkpointed. Clients see the
/// close and reconnect (to the restarted server);</item>
/// <item>a revoked credential closes the connections signed in with it (<see cref="Revoke"/>).</item>
/// </list>
/// </summary>
public sealed class HubConnections
{
    private readonly ConcurrentDictionary<string, HubConnectionContext> _open = new();
    private readonly RedisBus? _bus;
    private volatile bool _stopping;

    public HubConnections(IHostApplicationLifetime lifetime, RedisBus? bus = null)
    {
        _bus = bus;
        lifetime.ApplicationStopping.Register(AbortAll);
    }

    /// <summary>Tracks a new connection; one that arrives while the server stops (a quick reconnect) is closed at once.</summary>
    internal void Add(HubConnectionContext connection)
    {
        _open[connection.ConnectionId] = connection;
        if (_stopping)
        {
            connection.Abort();
        }
    }

    internal void Remove(HubConnectionContext connection) => _open.TryRemove(connection.ConnectionId, out _);

    /// <summary>Connections open now.</summary>
    public int Count => _open.Count;

    /// <summary>Writes an already serialised message to the connection; a connection that has gone is skipped, as SignalR does.</summary>
    public ValueTask WriteAsync(string connectionId, SerializedHubMessage message, CancellationToken cancellationToken) =>
        _open.TryGetValue(connectionId, out HubConnectionContext? connection) ? connection.WriteAsync(message, cancellationToken) : ValueTask.CompletedTask;

    /// <summary>
    /// A credential was revoked: closes this node's connections signed in with it (<see cref="AbortSignedInWith"/>),
    /// and, with Redis, every other node's too (<see cref="RedisRelay"/>). Returns how many were closed here.
    /// </summary>
    public int Revoke(string claimType, string value)
    {
        _bus?.PublishRevocation(claimType, value);
        return AbortSignedInWith(claimType, value);
    }

    /// <summary>
    /// Closes this node's connections signed in with a claim (a revoked key, a removed user, a revoked share link): a
    /// connection is authenticated once, when it opens, so a revocation must end the ones already open. Returns how many.
    /// </summary>
    public int AbortSignedInWith(string claimType, string value)
    {
        int closed = 0;
        foreach (HubConnectionContext connection in _open.Values)
        {
            if (connection.User.HasClaim(claimType, value))
            {
                connection.Abort();
                closed++;
            }
        }

        return closed;
    }

    private void AbortAll()
    {
        _stopping = true;
        foreach (HubConnectionContext connection in _open.Values)
        {
            connection.Abort();
        }
    }
}
