using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using TrainingService.Api.Persistence;
using TrainingService.Api.Quotas;
using TrainingService.Contracts.Specs;
using TrainingService.Contracts.Training;

namespace TrainingService.Api.Tests.Postgres;

/// <summary>OwnerQuotas on PostgreSQL: two nodes at the limit cannot both count, then both insert.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresQuotaTests(PostgresServer server)
{
    [Fact]
    public async Task TwoRequestsAtTheLimitOnTwoConnectionsCannotBothPass()
    {
        var options = new DbContextOptionsBuilder<PostgresTrainingDb>().UseNpgsql(await server.DatabaseFor(GetType())).Options;
        await using (var db = new PostgresTrainingDb(options))
        {
            await db.Database.MigrateAsync();
        }

        string owner = $"owner-{Guid.NewGuid():N}";
        await using var first = new PostgresTrainingDb(options);
        await using var second = new PostgresTrainingDb(options);
        await using IDbContextTransaction firstWrite = await OwnerQuotas.BeginWriteAsync(first, CancellationToken.None);
        Assert.Null(await OwnerQuotas.RefuseJobAsync(first, owner, max: 1, CancellationToken.None));

        // The second request, on another connection (another api node), waits for the first to commit before it counts.
        Task<bool> secondPasses = Task.Run(async () =>
        {
            await using IDbContextTransaction secondWrite = await OwnerQuotas.BeginWriteAsync(second, CancellationToken.None);
            return await OwnerQuotas.RefuseJobAsync(second, owner, max: 1, CancellationToken.None) is null;
        });
        await Task.Delay(500);
        Assert.False(secondPasses.IsCompleted);

        first.Jobs.Add(Job(owner));
        await first.SaveChangesAsync();
        await firstWrite.CommitAsync();

        Assert.False(await secondPasses.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task ARolledBackWriteReleasesTheLock()
    {
        var options = new DbContextOptionsBuilder<PostgresTrainingDb>().UseNpgsql(await server.DatabaseFor(GetType())).Options;
        await using (var db = new PostgresTrainingDb(options))
        {
            await db.Database.MigrateAsync();
        }

        await using var first = new PostgresTrainingDb(options);
        await using (await OwnerQuotas.BeginWriteAsync(first, CancellationToken.None))
        {
            // disposed without a commit: rolled back
        }

        await using var second = new PostgresTrainingDb(options);
        await using IDbContextTransaction write = await OwnerQuotas.BeginWriteAsync(second, CancellationToken.None)
            .WaitAsync(TimeSpan.FromSeconds(10));
        await write.CommitAsync();
    }

    private static JobRecord Job(string owner) => new()
    {
        Id = Guid.NewGuid(),
        Owner = owner,
        State = RunState.Queued,
        Spec = new ModelSpec { Name = "tiny" },
        DatasetId = Guid.NewGuid(),
        Hyperparameters = new Hyperparameters(),
        Monitoring = new MonitoringOptions(),
        CreatedAt = DateTime.UtcNow,
    };
}
