using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;
using Microsoft.Extensions.Options;

namespace TrainingService.Api.Persistence;

/// <summary>Where the service keeps its database and files.</summary>
public sealed class StorageOptions
{
    /// <summary>The data folder: training.db, datasets/, jobs/ (checkpoints and weights). Relative paths are from the working directory.</summary>
    public string DataFolder { get; set; } = "data";

    public string FullDataFolder => Path.GetFullPath(DataFolder);

    /// <summary>Seconds between checkpoints that copy the WAL into the database and truncate it (WalCheckpoints).</summary>
    public int CheckpointSeconds { get; set; } = 10;

    /// <summary>
    /// How long the event pump waits for the database's write lock before its batch fails and the jobs in it pause
    /// (requests wait SQLite's 30 s): a lock held longer than this is a fault to wait out, not contention.
    /// </summary>
    public int EventWriteTimeoutSeconds { get; set; } = 5;

    /// <summary>PRAGMA journal_size_limit: the size the WAL file is cut back to after SQLite's own checkpoints.</summary>
    public long JournalSizeLimitBytes { get; set; } = 16L << 20;

    /// <summary>Where every dataset's folder is, and the folders of uploads on their way in (.incoming-*).</summary>
    public string DatasetsRoot => Path.Combine(FullDataFolder, "datasets");

    /// <summary>Where every job's folder is.</summary>
    public string JobsRoot => Path.Combine(FullDataFolder, "jobs");

    public string DatasetFolder(Guid id) => Path.Combine(DatasetsRoot, id.ToString("N"));

    public string JobFolder(Guid id) => Path.Combine(JobsRoot, id.ToString("N"));

    /// <summary>A succeeded job's final model (TorchSharp's format).</summary>
    public string ModelFile(Guid id) => Path.Combine(JobFolder(id), "model.dat");

    /// <summary>A job's latest checkpoint.</summary>
    public string CheckpointFile(Guid id) => Path.Combine(JobFolder(id), "checkpoint.bin");

    /// <summary>A job's latest filters and feature maps.</summary>
    public string VisualsFile(Guid id) => Path.Combine(JobFolder(id), "visuals.bin");
}

public static class Storage
{
    /// <summary>The owner of everything until authentication arrives.</summary>
    public const string DefaultOwner = "local";

    public static IServiceCollection AddStorage(this IServiceCollection services)
    {
        services.AddOptions<StorageOptions>().BindConfiguration("Storage")
            .Validate(o => !string.IsNullOrWhiteSpace(o.DataFolder), "Storage:DataFolder must be set")
            .Validate(o => o.CheckpointSeconds >= 1 && o.JournalSizeLimitBytes >= 0 && o.EventWriteTimeoutSeconds >= 1,
                "Storage: CheckpointSeconds ≥ 1, JournalSizeLimitBytes ≥ 0, EventWriteTimeoutSeconds ≥ 1")
            .ValidateOnStart();
        services.AddDbContext<TrainingDb>((sp, options) =>
        {
            StorageOptions storage = sp.GetRequiredService<IOptions<StorageOptions>>().Value;
            Directory.CreateDirectory(storage.FullDataFolder);
            options.UseSqlite($"Data Source={Path.Combine(storage.FullDataFolder, "training.db")}")
                .AddInterceptors(sp.GetRequiredService<JournalSizeLimit>());
        });
        services.AddSingleton(sp => new JournalSizeLimit(sp.GetRequiredService<IOptions<StorageOptions>>().Value.JournalSizeLimitBytes));
        services.AddSingleton<WalCheckpoints>();
        services.AddHostedService(sp => sp.GetRequiredService<WalCheckpoints>());
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<StorageFaults>();
        services.AddExceptionHandler<StorageFaultExceptionHandler>();
        services.AddHealthChecks().AddDbContextCheck<TrainingDb>("database").AddCheck<StorageHealthCheck>("storage");
        return services;
    }

    /// <summary>Brings the database to the latest migration before the service takes requests.</summary>
    public static async Task MigrateDatabaseAsync(this WebApplication app)
    {
        await using AsyncServiceScope scope = app.Services.CreateAsyncScope();
        TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
        await db.Database.MigrateAsync();
        await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL;");
    }
}

/// <summary>Lets `dotnet ef migrations add` build the context without starting the host.</summary>
internal sealed class DesignTimeTrainingDbFactory : IDesignTimeDbContextFactory<TrainingDb>
{
    public TrainingDb CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<TrainingDb>().UseSqlite("Data Source=design-time.db").Options);
}
