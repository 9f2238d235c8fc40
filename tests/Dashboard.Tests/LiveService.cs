using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Mvc.Testing;
using TrainingService.Api.Tests;

namespace TrainingService.Dashboard.Tests;

/// <summary>
/// The service on a real loopback port (Kestrel, not the in-memory test server), so a browser can reach it. It can be
/// restarted on the same port and data folder, which is what a browser sees when the server goes away and comes back.
/// </summary>
public sealed class LiveService : IAsyncDisposable
{
    private readonly Dictionary<string, string?> _settings;
    private TrainingServiceFactory _factory;

    private LiveService(Dictionary<string, string?> settings)
    {
        _settings = settings;
        Port = FreePort();
        _factory = Host(null);
    }

    public int Port { get; }

    public string BaseUrl => $"http://127.0.0.1:{Port}/";

    public string DataFolder => _factory.DataFolder;

    public HttpClient Client { get; private set; } = null!;

    public IServiceProvider Services => _factory.Services;

    public static LiveService Start(Dictionary<string, string?>? settings = null) => new(settings ?? []);

    /// <summary>Stops the host (gracefully: running jobs checkpoint and are re-queued) and starts a new one in its place.</summary>
    public async Task RestartAsync(TimeSpan downtime)
    {
        string folder = _factory.DataFolder;
        Client.Dispose();
        await _factory.DisposeAsync(); // keeps the folder: the factory below was given it
        await Task.Delay(downtime);
        _factory = Host(folder);
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        string folder = _factory.DataFolder;
        await _factory.DisposeAsync();
        if (Directory.Exists(folder))
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(folder, recursive: true);
        }
    }

    private TrainingServiceFactory Host(string? dataFolder)
    {
        var factory = new TrainingServiceFactory(_settings, dataFolder ?? Directory.CreateTempSubdirectory("trainingservice-dashboard-").FullName);
        factory.UseKestrel(Port);
        factory.StartServer();
        Client = new HttpClient { BaseAddress = new Uri(BaseUrl) };
        Client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", TrainingServiceFactory.AdminKey);
        return factory;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
