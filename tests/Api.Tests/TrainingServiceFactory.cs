using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace TrainingService.Api.Tests;

/// <summary>
/// The service in memory, with configuration a test may override. It accepts <see cref="AdminKey"/> (Auth:AdminKey),
/// and the clients it creates send it: a test acts as the admin unless it sends another key or none (AccessTests).
/// </summary>
public sealed class TrainingServiceFactory(Dictionary<string, string?>? settings = null, string? dataFolder = null) : WebApplicationFactory<Program>
{
    /// <summary>The admin key every test service accepts.</summary>
    public const string AdminKey = "tsk_test-admin-key-0123456789abcdefghijklmnopqrstuv";

    private readonly bool _ownsDataFolder = dataFolder is null;

    /// <summary>A fresh data folder per factory unless one is given (a restart test passes the same one twice).</summary>
    public string DataFolder { get; } = dataFolder ?? Directory.CreateTempSubdirectory("trainingservice-tests-").FullName;

    /// <summary>Services a test swaps or configures, after the service's own.</summary>
    public Action<IServiceCollection>? ConfigureServices { get; init; }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        builder.UseSetting("Storage:DataFolder", DataFolder);
        builder.UseSetting("Auth:AdminKey", AdminKey);
        builder.UseSetting("Jobs:ThreadsPerJob", "1"); // tiny test models; two intra-op threads only fight over a busy CI machine
        foreach (string limit in new[] { "RequestsPerMinute", "Burst", "CreationsPerMinute", "CreationBurst", "HubCallsPerMinute", "HubBurst" })
        {
            builder.UseSetting($"RateLimits:{limit}", "1000000"); // tests poll freely; RateLimitTests sets its own
        }

        // Quotas per owner stay out of the way; QuotaTests sets its own.
        builder.UseSetting("Jobs:MaxActiveJobsPerOwner", "1000000");
        builder.UseSetting("Uploads:MaxConcurrentPerOwner", "1000000");
        builder.UseSetting("Health:MemoryBudgetBytes", (1L << 40).ToString(System.Globalization.CultureInfo.InvariantCulture)); // the test host holds many services

        foreach ((string key, string? value) in settings ?? [])
        {
            builder.UseSetting(key, value);
        }

        if (ConfigureServices is { } services)
        {
            builder.ConfigureServices(services);
        }
    }

    protected override void ConfigureClient(HttpClient client)
    {
        base.ConfigureClient(client);
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", AdminKey);
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        if (_ownsDataFolder)
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(DataFolder, recursive: true);
        }
    }
}
