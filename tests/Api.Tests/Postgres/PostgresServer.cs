using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace TrainingService.Api.Tests.Postgres;

/// <summary>The test classes that share one real PostgreSQL server (<see cref="PostgresServer"/>), each in its own database.</summary>
[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresServer>
{
    public const string Name = "postgres";
}

/// <summary>
/// A real PostgreSQL server for the tests: initdb and pg_ctl (Debian's postgresql package) on a data folder under the
/// temp folder, listening on 127.0.0.1 at a free port, run as the unprivileged user postgres when the tests run as root
/// (initdb refuses root). Stopped and deleted after the collection; one database per test class.
/// </summary>
public sealed class PostgresServer : IAsyncLifetime
{
    private const string UnprivilegedUser = "postgres";

    private readonly ConcurrentDictionary<string, Lazy<Task<string>>> _databases = new();

    private string _bin = "";

    private string _folder = "";

    private int _port;

    /// <summary>A connection string to the server's maintenance database.</summary>
    public string AdminConnectionString => $"Host=127.0.0.1;Port={_port};Username=postgres;Database=postgres;Timeout=30";

    public async Task InitializeAsync()
    {
        _bin = FindBinaries();
        _folder = Path.Combine(Path.GetTempPath(), $"postgres-{Guid.NewGuid():N}");
        string data = Path.Combine(_folder, "data");
        Directory.CreateDirectory(_folder);
        if (IsRoot)
        {
            await RunAsync("chown", UnprivilegedUser, _folder);
            if (await RunAsync("runuser", ["-u", UnprivilegedUser, "--", "test", "-w", _folder], check: false) != 0)
            {
                throw new InvalidOperationException(
                    $"The user {UnprivilegedUser} cannot write {_folder}: every folder above the temp folder ({Path.GetTempPath()}) must be "
                    + "traversable by others (chmod o+x), or set TMPDIR to one that is.");
            }
        }

        _port = FreePort();
        await PgAsync("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync");
        await StartAsync();
    }

    /// <summary>The connection string of the calling test class's own database, created on first use.</summary>
    public Task<string> DatabaseFor(Type testClass) =>
        _databases.GetOrAdd(testClass.Name, _ => new Lazy<Task<string>>(NewDatabaseAsync)).Value;

    /// <summary>A fresh, empty database (for a test that needs one of its own besides its class's).</summary>
    public async Task<string> NewDatabaseAsync()
    {
        string name = $"ts_{Guid.NewGuid():N}";
        await using (var admin = new NpgsqlConnection(AdminConnectionString))
        {
            await admin.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", admin);
            await create.ExecuteNonQueryAsync();
        }

        return new NpgsqlConnectionStringBuilder(AdminConnectionString) { Database = name }.ConnectionString;
    }

    /// <summary>Stops the server as an operator's restart does (fast: sessions are ended, the data stays).</summary>
    public Task StopAsync() => PgAsync("pg_ctl", "-D", Path.Combine(_folder, "data"), "-m", "fast", "-w", "-t", "60", "stop");

    /// <summary>
    /// Starts the stopped server again on the same port. The stop ended every session, so the connections this test
    /// process keeps in Npgsql's pools are dead: they are dropped, or the next test to borrow one fails with 57P01.
    /// </summary>
    public async Task StartAsync()
    {
        await PgAsync("pg_ctl", "-D", Path.Combine(_folder, "data"), "-l", Path.Combine(_folder, "server.log"), "-w", "-t", "60",
            "-o", $"-c listen_addresses=127.0.0.1 -p {_port} -k {_folder} -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            "start");
        Npgsql.NpgsqlConnection.ClearAllPools();
    }

    public async Task DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        if (_port != 0)
        {
            string pgCtl = Path.Combine(_bin, "pg_ctl");
            string[] stop = ["-D", Path.Combine(_folder, "data"), "-m", "immediate", "-w", "stop"];
            await (IsRoot ? RunAsync("runuser", ["-u", UnprivilegedUser, "--", pgCtl, .. stop], check: false) : RunAsync(pgCtl, stop, check: false));
        }

        if (_folder.Length > 0 && Directory.Exists(_folder))
        {
            Directory.Delete(_folder, recursive: true);
        }
    }

    private static bool IsRoot => Environment.UserName == "root";

    /// <summary>PG_BIN, or the newest <paramref name="root"/>/N/bin with initdb and pg_ctl; a clear error when there is none.</summary>
    internal static string FindBinaries(string? configured = null, string root = "/usr/lib/postgresql")
    {
        configured ??= Environment.GetEnvironmentVariable("PG_BIN");
        IEnumerable<string> candidates = configured is { Length: > 0 }
            ? [configured]
            : Directory.Exists(root)
                ? Directory.GetDirectories(root).Select(v => Path.Combine(v, "bin"))
                    .OrderByDescending(b => int.TryParse(Path.GetFileName(Path.GetDirectoryName(b)), out int version) ? version : 0)
                : [];
        return candidates.FirstOrDefault(b => File.Exists(Path.Combine(b, "initdb")) && File.Exists(Path.Combine(b, "pg_ctl")))
            ?? throw new InvalidOperationException(
                $"The PostgreSQL tests need the PostgreSQL server binaries (initdb, pg_ctl) under {root}/<version>/bin "
                + "or in PG_BIN; install them with `apt-get install -y postgresql` (test.sh does).");
    }

    private Task<int> PgAsync(string tool, params string[] args) =>
        IsRoot
            ? RunAsync("runuser", ["-u", UnprivilegedUser, "--", Path.Combine(_bin, tool), .. args])
            : RunAsync(Path.Combine(_bin, tool), args);

    private static Task<int> RunAsync(string file, params string[] args) => RunAsync(file, args, check: true);

    private static async Task<int> RunAsync(string file, string[] args, bool check)
    {
        var start = new ProcessStartInfo(file, args)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = "/",
        };
        using Process process = Process.Start(start)!;
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        Task<string> error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (check && process.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"{file} {string.Join(' ', args)} exited with {process.ExitCode}:\n{await output}\n{await error}");
        }

        return process.ExitCode;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
