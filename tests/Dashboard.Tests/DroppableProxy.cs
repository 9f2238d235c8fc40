using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace TrainingService.Dashboard.Tests;

/// <summary>
/// A TCP proxy on loopback between the browser and the service that can cut the network: every open connection is
/// reset and new ones are refused for a while, as when a laptop's Wi-Fi drops, while the server keeps running.
/// </summary>
public sealed class DroppableProxy : IAsyncDisposable
{
    private readonly int _target;
    private readonly ConcurrentDictionary<Socket, byte> _open = new();
    private readonly CancellationTokenSource _stop = new();
    private TcpListener _listener;
    private Task _accepting;

    public DroppableProxy(int targetPort)
    {
        _target = targetPort;
        _listener = Listen(0);
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accepting = AcceptAsync(_listener);
    }

    public int Port { get; }

    public string BaseUrl => $"http://127.0.0.1:{Port}/";

    /// <summary>Resets every connection, refuses new ones for <paramref name="outage"/>, then accepts again.</summary>
    public async Task DropAsync(TimeSpan outage)
    {
        _listener.Stop();
        await _accepting;
        foreach (Socket socket in _open.Keys)
        {
            Reset(socket);
        }

        await Task.Delay(outage);
        _listener = Listen(Port);
        _accepting = AcceptAsync(_listener);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        foreach (Socket socket in _open.Keys)
        {
            Reset(socket);
        }

        _stop.Dispose();
    }

    private static TcpListener Listen(int port)
    {
        var listener = new TcpListener(IPAddress.Loopback, port);
        listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        listener.Start();
        return listener;
    }

    private async Task AcceptAsync(TcpListener listener)
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException or OperationCanceledException)
            {
                return; // stopped
            }

            _ = PipeAsync(client);
        }
    }

    private async Task PipeAsync(Socket client)
    {
        var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _open[client] = 0;
        _open[server] = 0;
        try
        {
            await server.ConnectAsync(IPAddress.Loopback, _target);
            await using var a = new NetworkStream(client, ownsSocket: false);
            await using var b = new NetworkStream(server, ownsSocket: false);
            await Task.WhenAny(a.CopyToAsync(b), b.CopyToAsync(a));
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            // reset by DropAsync, or closed by either side
        }
        finally
        {
            _open.TryRemove(client, out _);
            _open.TryRemove(server, out _);
            Reset(client);
            Reset(server);
        }
    }

    /// <summary>Closes with RST, not FIN: the peer sees the connection fail, not end.</summary>
    private static void Reset(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
            socket.Close();
        }
        catch (ObjectDisposedException)
        {
        }
    }
}
