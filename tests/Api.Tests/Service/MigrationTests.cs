using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;
using TrainingService.Api.Persistence;
using TrainingService.Contracts.Training;

namespace TrainingService.Api.Tests.Service;

public sealed class MigrationTests
{
    [Fact]
    public async Task AJobStoredAsJsonTextBeforeTypedSettingsIsReadBackTyped()
    {
        string folder = Directory.CreateTempSubdirectory("migration-tests-").FullName;
        try
        {
            var options = new DbContextOptionsBuilder<SqliteTrainingDb>().UseSqlite($"Data Source={Path.Combine(folder, "training.db")};Pooling=False").Options;
            Guid id = Guid.NewGuid();
            await using (var db = new SqliteTrainingDb(options))
            {
                await db.GetService<IMigrator>().MigrateAsync("20261126181520_DatasetClassNamesAndFit");
                // The row exactly as the previous version wrote it: each setting JSON text in its column.
                await db.Database.ExecuteSqlRawAsync(
                    """
                    INSERT INTO Jobs (Id, Owner, State, Spec, DatasetId, Hyperparameters, Monitoring, Sanity, TotalSteps, Step, Epoch, LastSeq, CreatedAt)
                    VALUES ({0}, 'local', 'Paused', {1}, {2}, {3}, {4}, {5}, 300, 12, 1, 40, '2026-11-26 18:00:00')
                    """,
                    id.ToString().ToUpperInvariant(),
                    """{"name":"tiny","input":{"channels":1,"height":28,"width":28},"layers":[{"kind":"conv2d","filters":4,"kernel":3,"padding":"same"},{"kind":"flatten"},{"kind":"linear","units":4}]}""",
                    Guid.NewGuid().ToString().ToUpperInvariant(),
                    """{"epochs":3,"batchSize":16,"optimizer":"adamw","learningRate":0.003,"momentum":0.9,"nesterov":false,"weightDecay":0.01,"schedule":"cosine","stepSize":5,"gamma":0.1,"seed":7,"validationFraction":0.2,"augmentation":{"randomCrop":{"padding":2},"horizontalFlip":true,"translate":null}}""",
                    """{"statsEvery":5,"diagnostics":{"enabled":false,"onNonFinite":"alert"}}""",
                    """{"check":"overfitSubset","samples":20,"maxSteps":300,"targetLoss":0.01}""");
            }

            await using (var db = new SqliteTrainingDb(options))
            {
                await db.Database.MigrateAsync();
                JobRecord job = await db.Jobs.SingleAsync(j => j.Id == id);

                Assert.Equal(("tiny", 3, 1, 28), (job.Spec.Name, job.Spec.Layers!.Count, job.Spec.Input!.Channels, job.Spec.Input.Height));
                Assert.Equal(
                    (3, 16, OptimizerKind.AdamW, 0.003, ScheduleKind.Cosine, 7, 0.2, 2, true),
                    (job.Hyperparameters.Epochs, job.Hyperparameters.BatchSize, job.Hyperparameters.Optimizer, job.Hyperparameters.LearningRate,
                        job.Hyperparameters.Schedule, job.Hyperparameters.Seed, job.Hyperparameters.ValidationFraction, job.Hyperparameters.Augmentation!.RandomCrop!.Padding,
                        job.Hyperparameters.Augmentation.HorizontalFlip));
                Assert.Equal((5, false, NonFiniteAction.Alert), (job.Monitoring.StatsEvery, job.Monitoring.Diagnostics.Enabled, job.Monitoring.Diagnostics.OnNonFinite));
                Assert.Equal(300, job.Monitoring.Diagnostics.NotFallingSteps); // left out, so the default
                Assert.Equal(SanityCheck.OverfitSubset, job.Sanity!.Check);
                Assert.Equal((RunState.Paused, 40L, 1), (job.State, job.LastSeq, job.Threads));

                job.Hyperparameters = job.Hyperparameters with { LearningRate = 0.001 };
                await db.SaveChangesAsync();
            }

            await using (var db = new SqliteTrainingDb(options))
            {
                Assert.Equal(0.001, (await db.Jobs.SingleAsync(j => j.Id == id)).Hyperparameters.LearningRate);
            }
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(folder, recursive: true);
        }
    }
}
