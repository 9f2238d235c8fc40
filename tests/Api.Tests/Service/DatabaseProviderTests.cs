using System.Diagnostics;
using Microsoft.EntityFrameworkCore;
using TrainingService.Api.Persistence;

namespace TrainingService.Api.Tests.Service;

/// <summary>Database:Provider: one migration set per provider, each in step with the model; a provider checked at start.</summary>
public sealed class DatabaseProviderTests
{
    [Fact]
    public void TheSqliteModelHasNoChangesMissingFromItsMigrations()
    {
        using SqliteTrainingDb db = new DesignTimeSqliteTrainingDbFactory().CreateDbContext([]);
        Assert.False(db.Database.HasPendingModelChanges(), "run `dotnet ef migrations add` for SqliteTrainingDb (docs/architecture.md)");
    }

    [Fact]
    public void ThePostgresModelHasNoChangesMissingFromItsMigrations()
    {
        using PostgresTrainingDb db = new DesignTimePostgresTrainingDbFactory().CreateDbContext([]);
        Assert.False(db.Database.HasPendingModelChanges(), "run `dotnet ef migrations add` for PostgresTrainingDb (docs/architecture.md)");
    }

    [Fact]
    public void EachProviderHasItsOwnMigrationSetWithTheSqliteIdsUnchanged()
    {
        using SqliteTrainingDb sqlite = new DesignTimeSqliteTrainingDbFactory().CreateDbContext([]);
        using PostgresTrainingDb postgres = new DesignTimePostgresTrainingDbFactory().CreateDbContext([]);
        Assert.Equal("20261126140813_Initial", sqlite.Database.GetMigrations().First());
        Assert.Equal("20261127214522_HistoryThinning", sqlite.Database.GetMigrations().ElementAt(6));
        Assert.NotEmpty(postgres.Database.GetMigrations());
        Assert.Empty(sqlite.Database.GetMigrations().Intersect(postgres.Database.GetMigrations()));
    }

    [Fact]
    public async Task PostgresWithoutAConnectionStringStopsTheServiceNamingTheKey()
    {
        (int code, string output) = await RunServiceAsync("--Database:Provider", "postgres");
        Assert.Equal(1, code);
        Assert.Contains("ConnectionStrings:Postgres is not set", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnUnknownProviderStopsTheServiceNamingTheKey()
    {
        (int code, string output) = await RunServiceAsync("--Database:Provider", "mysql");
        Assert.Equal(1, code);
        Assert.Contains("Database:Provider is 'mysql'; it must be 'sqlite' (the default) or 'postgres'", output, StringComparison.Ordinal);
    }

    /// <summary>The real service in a child process, expected to stop by itself before it listens.</summary>
    private static async Task<(int Code, string Output)> RunServiceAsync(params string[] settings)
    {
        string folder = Directory.CreateTempSubdirectory("provider-tests-").FullName;
        try
        {
            var start = new ProcessStartInfo("dotnet",
                [Path.Combine(AppContext.BaseDirectory, "TrainingService.Api.dll"), "--urls", "http://127.0.0.1:0", "--Storage:DataFolder", folder, .. settings])
            {
                WorkingDirectory = AppContext.BaseDirectory,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            using Process process = Process.Start(start)!;
            Task<string> output = process.StandardOutput.ReadToEndAsync();
            Task<string> error = process.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"the service did not stop by itself:\n{await output}");
            }

            Assert.False(File.Exists(Path.Combine(folder, "training.db")), "a refused start must not create the SQLite database");
            return (process.ExitCode, await output + await error);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
