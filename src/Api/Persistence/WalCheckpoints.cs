using System.Data.Common;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.Options;

namespace TrainingService.Api.Persistence;

/// <summary>
/// Sets journal_size_limit on every connection EF Core opens: a per-connection setting, and SQLite's automatic checkpoint
/// only shrinks the WAL file back to it (otherwise the file stays as large as it ever grew).
/// </summary>
internal sealed class JournalSizeLimit(long bytes) : DbConnectionInterceptor
{
    public override void ConnectionOpened(DbConnection connection, ConnectionEndEventData eventData)
    {
        using DbCommand pragma = Pragma(connection);
        pragma.ExecuteNonQuery();
    }

    public override async Task ConnectionOpenedAsync(DbConnection connection, ConnectionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        await using DbCommand pragma = Pragma(connection);
        await pragma.ExecuteNonQueryAsync(cancellationToken);
    }

    private DbCommand Pragma(DbConnection connection)
    {
        DbCommand command = connection.CreateCommand();
        command.CommandText = $"PRAGMA journal_size_limit={bytes}";
        return command;
    }
}

/// <summary>
/// Every Storage:CheckpointSeconds, PRAGMA wal_checkpoint(TRUNCATE): copies the WAL into the database and empties the
/// file. It does not wait for readers (no busy handler): when one holds an old snapshot it does what it can and the
/// next round finishes. SQLite's own checkpoint (every 1,000 pages, on commit) only copies, and a reader in the way of
/// it lets the file grow; this bounds the file between rounds.
/// </summary>
public sealed class WalCheckpoints(IServiceScopeFactory scopes, IOptions<StorageOptions> options, ILogger<WalCheckpoints> logger) : BackgroundService
{
    /// <summary>The last round's result: busy (1 if a reader or writer was in the way), WAL frames, frames checkpointed.</summary>
    public (long Busy, long Log, long Checkpointed) Last { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.Value.CheckpointSeconds));
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await CheckpointAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogWarning(ex, "Checkpointing the database's WAL failed");
            }
        }
    }

    public async Task CheckpointAsync(CancellationToken cancellationToken)
    {
        await using AsyncServiceScope scope = scopes.CreateAsyncScope();
        TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
        var connection = (SqliteConnection)db.Database.GetDbConnection();
        await connection.OpenAsync(cancellationToken);
        await using SqliteCommand command = connection.CreateCommand();
        command.CommandText = "PRAGMA wal_checkpoint(TRUNCATE)";
        await using SqliteDataReader reader = await command.ExecuteReaderAsync(cancellationToken);
        if (await reader.ReadAsync(cancellationToken))
        {
            Last = (reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2));
        }
    }
}
