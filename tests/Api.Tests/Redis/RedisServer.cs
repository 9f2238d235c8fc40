using System.Diagnostics;
using System.Net.Sockets;
using TrainingService.Api.Tests.Service;

namespace TrainingService.Api.Tests.Redis;

/// <summary>
/// A real Redis server for one test: Debian's redis-server (test.sh installs it) on 127.0.0.1 at a free port, nothing
/// saved to disk. <see cref="StopAsync"/> and <see cref="StartAsync()"/> restart it on the same port (a Redis restart
/// mid-job); disposing stops it.
/// </summary>
public sealed class RedisServer : IAsyncDisposable
{
    private const string Binary = "redis-server";

    private Process? _process;

    private RedisServer(int port) => Port = port;

    public int Port { get; }

    /// <summary>StackExchange.Redis's configuration string for the server.</summary>
    public string ConnectionString => $"127.0.0.1:{Port}";

    public static async Task<RedisServer> StartNewAsync()
    {
        var server = new RedisServer(ServiceHarness.FreePort());
        await server.StartAsync();
        return server;
    }

    /// <summary>Starts the server (again) on its port and waits until it accepts connections.</summary>
    public async Task StartAsync()
    {
        var start = new ProcessStartInfo(Binary, ["--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.GetTempPath(),
        };
        try
        {
            _process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException("The Redis tests need redis-server; install it with `apt-get install -y redis-server` (test.sh does).", ex);
        }

        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(System.Net.IPAddress.Loopback, Port);
                return;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline && !_process.HasExited)
            {
                await Task.Delay(20);
            }
        }
    }

    /// <summary>Kills the server (its connections drop, messages in flight are lost) and waits until it is gone.</summary>
    public async Task StopAsync()
    {
        if (_process is { } process)
        {
            _process = null;
            if (!process.HasExited)
            {
                process.Kill();
            }

            await process.WaitForExitAsync();
            process.Dispose();
        }
    }

    public async ValueTask DisposeAsync() => await StopAsync();
}
