using System.Net;
using System.Net.Sockets;
using Npgsql;
using TrainingService.Api.Persistence;

namespace TrainingService.Api.Tests.Postgres;

/// <summary>StorageFault on PostgreSQL: what is worth waiting out (a lost connection above all) and what is not.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresFaultTests(PostgresServer server)
{
    [Fact]
    public async Task ANodeThatCannotReachTheServerMeetsAStorageFault()
    {
        int closedPort;
        using (var listener = new TcpListener(IPAddress.Loopback, 0))
        {
            listener.Start();
            closedPort = ((IPEndPoint)listener.LocalEndpoint).Port;
        }

        await using var connection = new NpgsqlConnection($"Host=127.0.0.1;Port={closedPort};Username=postgres;Timeout=5");
        Exception error = await Assert.ThrowsAnyAsync<NpgsqlException>(() => connection.OpenAsync());
        Assert.True(StorageFault.IsDiskOrDatabase(error));
        Assert.Equal("the database cannot be reached", StorageFault.Describe(error));
    }

    [Fact]
    public async Task AConnectionTheServerDropsIsAStorageFault()
    {
        await using var victim = await OpenAsync();
        int pid = victim.ProcessID;
        await using (var admin = await OpenAsync())
        {
            await using var terminate = new NpgsqlCommand($"SELECT pg_terminate_backend({pid})", admin);
            await terminate.ExecuteScalarAsync(); // what a server shutting down or a failover does to each session
        }

        await using var query = new NpgsqlCommand("SELECT 1", victim);
        Exception error = await Assert.ThrowsAnyAsync<NpgsqlException>(() => query.ExecuteScalarAsync());
        Assert.True(StorageFault.IsDiskOrDatabase(error));
        Assert.NotNull(StorageFault.Describe(error));
    }

    [Fact]
    public async Task ALockHeldTooLongAndAReadOnlyServerAreStorageFaults()
    {
        await using var holder = await OpenAsync();
        await using (var create = new NpgsqlCommand("CREATE TABLE IF NOT EXISTS fault_probe (id int PRIMARY KEY)", holder))
        {
            await create.ExecuteNonQueryAsync();
        }

        await using NpgsqlTransaction held = await holder.BeginTransactionAsync();
        await using (var take = new NpgsqlCommand("LOCK TABLE fault_probe IN ACCESS EXCLUSIVE MODE", holder, held))
        {
            await take.ExecuteNonQueryAsync();
        }

        await using var waiter = await OpenAsync();
        await using (var wait = new NpgsqlCommand("SET lock_timeout = '200ms'; SELECT count(*) FROM fault_probe", waiter))
        {
            PostgresException locked = await Assert.ThrowsAsync<PostgresException>(() => wait.ExecuteScalarAsync());
            Assert.Equal(("the database is locked by another process", true),
                (StorageFault.Describe(locked), StorageFault.IsDiskOrDatabase(locked)));
        }

        await held.RollbackAsync();
        await using (var readOnlyServer = new NpgsqlCommand("SET default_transaction_read_only = on", waiter)) // as on a standby
        {
            await readOnlyServer.ExecuteNonQueryAsync();
        }

        await using (var write = new NpgsqlCommand("INSERT INTO fault_probe VALUES (1)", waiter))
        {
            PostgresException readOnly = await Assert.ThrowsAsync<PostgresException>(() => write.ExecuteNonQueryAsync());
            Assert.Equal("the database is read-only", StorageFault.Describe(readOnly));
        }
    }

    [Fact]
    public async Task AnErrorInTheRequestOrACancelledQueryIsNotAStorageFault()
    {
        await using var connection = await OpenAsync();
        await using (var create = new NpgsqlCommand("CREATE TABLE IF NOT EXISTS fault_unique (id int PRIMARY KEY); INSERT INTO fault_unique VALUES (1) ON CONFLICT DO NOTHING", connection))
        {
            await create.ExecuteNonQueryAsync();
        }

        await using (var duplicate = new NpgsqlCommand("INSERT INTO fault_unique VALUES (1)", connection))
        {
            PostgresException unique = await Assert.ThrowsAsync<PostgresException>(() => duplicate.ExecuteNonQueryAsync());
            Assert.Equal(PostgresErrorCodes.UniqueViolation, unique.SqlState);
            Assert.False(StorageFault.IsDiskOrDatabase(unique));
            Assert.Null(StorageFault.Describe(unique));
        }

        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        await using var sleep = new NpgsqlCommand("SELECT pg_sleep(30)", connection);
        Exception cancelled = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => sleep.ExecuteScalarAsync(cancel.Token));
        Assert.False(StorageFault.IsDiskOrDatabase(cancelled));
        Assert.Null(StorageFault.Describe(cancelled));
    }

    private async Task<NpgsqlConnection> OpenAsync()
    {
        // Pooling off: a terminated session must not go back to a pool other tests draw from.
        var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(await server.DatabaseFor(GetType())) { Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        return connection;
    }
}
