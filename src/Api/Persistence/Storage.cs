using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Npgsql;

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
    /// (requests wait SQLite's 30 s): a lock held longer than this is a fault to wait out, not contention. On PostgreSQL
    /// also the default lock_timeout of every connection (<see cref="Storage.WithLockTimeout"/>).
    /// </summary>
    public int EventWriteTimeoutSeconds { get; set; } = 5;

    /// <summary>PRAGMA journal_size_limit: the size the WAL file is cut back to after SQLite's own checkpoints.</summary>
    public long JournalSizeLimitBytes { get; set; } = 16L << 20;

    /// <summary>
    /// A folder on this node's own disk for copies of the datasets it loads, by content hash (LocalDatasetCache): set it
    /// on worker nodes when the data folder is a network file system. Null (the default): datasets are read in place.
    /// One folder per node process.
    /// </summary>
    public string? LocalCacheFolder { get; set; }

    /// <summary>Bytes the local dataset copies may take; the least recently used go first.</summary>
    public long LocalCacheBytes { get; set; } = 20L << 30;

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

    public static IServiceCollection AddStorage(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<StorageOptions>().BindConfiguration("Storage")
            .Validate(o => !string.IsNullOrWhiteSpace(o.DataFolder), "Storage:DataFolder must be set")
            .Validate(o => o.CheckpointSeconds >= 1 && o.JournalSizeLimitBytes >= 0 && o.EventWriteTimeoutSeconds >= 1,
                "Storage: CheckpointSeconds ≥ 1, JournalSizeLimitBytes ≥ 0, EventWriteTimeoutSeconds ≥ 1")
            .ValidateOnStart();
        if (ProviderFrom(configuration) == DatabaseProvider.Postgres)
        {
            string connection = PostgresConnectionString(configuration);
            services.AddDbContext<TrainingDb, PostgresTrainingDb>((sp, options) => options.UseNpgsql(
                WithLockTimeout(connection, sp.GetRequiredService<IOptions<StorageOptions>>().Value.EventWriteTimeoutSeconds)));
        }
        else
        {
            services.AddDbContext<TrainingDb, SqliteTrainingDb>((sp, options) =>
            {
                StorageOptions storage = sp.GetRequiredService<IOptions<StorageOptions>>().Value;
                Directory.CreateDirectory(storage.FullDataFolder);
                options.UseSqlite($"Data Source={Path.Combine(storage.FullDataFolder, "training.db")}")
                    .AddInterceptors(sp.GetRequiredService<JournalSizeLimit>());
            });
            services.AddSingleton(sp => new JournalSizeLimit(sp.GetRequiredService<IOptions<StorageOptions>>().Value.JournalSizeLimitBytes));
            services.AddSingleton<WalCheckpoints>();
            services.AddHostedService(sp => sp.GetRequiredService<WalCheckpoints>());
        }

        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<StorageFaults>();
        services.AddExceptionHandler<StorageFaultExceptionHandler>();
        services.AddHealthChecks().AddDbContextCheck<TrainingDb>("database").AddCheck<StorageHealthCheck>("storage");
        return services;
    }

    /// <summary>Database:Provider: "sqlite" (the default) or "postgres"; anything else stops the service naming the key.</summary>
    public static DatabaseProvider ProviderFrom(IConfiguration configuration) =>
        configuration["Database:Provider"]?.Trim().ToLowerInvariant() switch
        {
            null or "" or "sqlite" => DatabaseProvider.Sqlite,
            "postgres" => DatabaseProvider.Postgres,
            string other => throw new InvalidOperationException(
                $"Database:Provider is '{other}'; it must be 'sqlite' (the default) or 'postgres'."),
        };

    /// <summary>ConnectionStrings:Postgres, required when Database:Provider is postgres.</summary>
    public static string PostgresConnectionString(IConfiguration configuration) =>
        configuration.GetConnectionString("Postgres") is { Length: > 0 } connection && !string.IsNullOrWhiteSpace(connection)
            ? connection
            : throw new InvalidOperationException(
                "Database:Provider is 'postgres' but ConnectionStrings:Postgres is not set "
                + "(e.g. Host=db;Database=trainingservice;Username=trainingservice;Password=…).");

    /// <summary>
    /// ConnectionStrings:Postgres with lock_timeout set to Storage:EventWriteTimeoutSeconds unless its Options already set
    /// one: a statement that waits longer for a lock fails (55P03) and is a storage fault (jobs pause, requests get 503)
    /// rather than a hang. (SQLite's counterpart is its busy timeout.)
    /// </summary>
    public static string WithLockTimeout(string connectionString, int seconds)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        if (builder.Options?.Contains("lock_timeout", StringComparison.Ordinal) != true)
        {
            builder.Options = $"{builder.Options} -c lock_timeout={seconds}s".Trim();
        }

        return builder.ConnectionString;
    }

    /// <summary>
    /// Held while a node migrates, sweeps and bootstraps at start, so nodes starting together take turns: on PostgreSQL a
    /// session advisory lock (released when its connection closes, also if the node dies); on SQLite nothing (one file,
    /// one machine, and SQLite's own write lock serialises the rest).
    /// </summary>
    public static async Task<IAsyncDisposable> StartupLockAsync(this WebApplication app)
    {
        if (ProviderFrom(app.Configuration) != DatabaseProvider.Postgres)
        {
            return new NpgsqlConnection(); // nothing to hold; disposing a closed connection does nothing
        }

        var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(PostgresConnectionString(app.Configuration)) { Pooling = false }.ConnectionString);
        await connection.OpenAsync(app.Lifetime.ApplicationStopping);
        await using var command = new NpgsqlCommand("SET lock_timeout = 0; SELECT pg_advisory_lock(7461351248130501);", connection) { CommandTimeout = 0 };
        await command.ExecuteNonQueryAsync(app.Lifetime.ApplicationStopping); // waits while another node starts
        return connection;
    }

    /// <summary>Brings the database to the latest migration before the service takes requests.</summary>
    public static async Task MigrateDatabaseAsync(this WebApplication app)
    {
        await using AsyncServiceScope scope = app.Services.CreateAsyncScope();
        TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
        await db.Database.MigrateAsync();
        if (db.Database.IsSqlite())
        {
            await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL;");
        }
    }
}
