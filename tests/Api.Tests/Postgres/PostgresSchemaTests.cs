using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;
using Npgsql;
using TrainingService.Api.Persistence;
using TrainingService.Contracts.Specs;
using TrainingService.Contracts.Training;

namespace TrainingService.Api.Tests.Postgres;

/// <summary>The PostgreSQL migration set and the model on a real server: the schema half of issue 14's "State on PostgreSQL".</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresSchemaTests(PostgresServer server)
{
    [Fact]
    public async Task TheMigrationSetBuildsTheSchemaFromAnEmptyDatabaseAndAgainChangesNothing()
    {
        string connectionString = await server.NewDatabaseAsync();
        DbContextOptions<PostgresTrainingDb> options = Options(connectionString);
        await using (var db = new PostgresTrainingDb(options))
        {
            await db.Database.MigrateAsync();
            Assert.Equal(db.Database.GetMigrations(), await db.Database.GetAppliedMigrationsAsync());
        }

        await using (var db = new PostgresTrainingDb(options))
        {
            await db.Database.MigrateAsync(); // the second start of a node: nothing to apply, nothing fails
            Assert.Empty(await db.Database.GetPendingMigrationsAsync());
            Assert.Equal(db.Database.GetMigrations(), await db.Database.GetAppliedMigrationsAsync());
        }

        // History thinning finds full layers events through this partial index; PostgreSQL kept its filter.
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var index = new NpgsqlCommand("SELECT indexdef FROM pg_indexes WHERE indexname = 'IX_JobEvents_FullLayers'", connection);
        string definition = (string)(await index.ExecuteScalarAsync())!;
        Assert.Contains("WHERE ((\"Kind\" = 'layers'::text) AND (\"Bytes\" > 160))", definition, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheIdempotentScriptAppliesTwice()
    {
        string connectionString = await server.NewDatabaseAsync();
        string script;
        await using (var db = new PostgresTrainingDb(Options(connectionString)))
        {
            script = db.GetService<IMigrator>().GenerateScript(options: MigrationsSqlGenerationOptions.Idempotent);
        }

        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        for (int run = 0; run < 2; run++)
        {
            await using var apply = new NpgsqlCommand(script, connection);
            await apply.ExecuteNonQueryAsync();
        }

        await using (var db = new PostgresTrainingDb(Options(connectionString)))
        {
            Assert.Empty(await db.Database.GetPendingMigrationsAsync());
            Assert.False(await db.Jobs.AnyAsync());
        }
    }

    [Fact]
    public async Task EveryKindOfRecordRoundTripsThroughEf()
    {
        DbContextOptions<PostgresTrainingDb> options = Options(await server.DatabaseFor(GetType()));
        await using (var db = new PostgresTrainingDb(options))
        {
            await db.Database.MigrateAsync();
        }

        // Microsecond times: PostgreSQL keeps microseconds (SQLite keeps 100 ns ticks).
        DateTime created = new DateTime(2026, 11, 27, 23, 1, 2, DateTimeKind.Utc).AddTicks(1_234_560);
        string owner = $"user-{Guid.NewGuid():N}";
        var user = new UserRecord { Id = owner, Name = $"ada-{Guid.NewGuid():N}", Role = "user", CreatedAt = created };
        var key = new ApiKeyRecord
        {
            Id = Guid.NewGuid(), UserId = owner, Name = "laptop", Prefix = "tsk_AbC1", Hash = Guid.NewGuid().ToString("N"),
            CreatedAt = created, LastUsedAt = created.AddMinutes(1),
        };
        var dataset = new DatasetRecord
        {
            Id = Guid.NewGuid(), Owner = owner, Name = "pets", Source = "imagefolder", Classes = 3, ClassNames = ["cat", "dog", "ünïcode"],
            Fit = "crop", Channels = 3, Height = 32, Width = 32, TrainCount = 90, TestCount = 9,
            Mean = [0.49140003f, 0.4822f, 0.4465f], Std = [0.247f, 0.2435f, 0.2616f], CreatedAt = created,
        };
        var model = new ModelRecord { Id = Guid.NewGuid(), Owner = owner, Name = "tiny", Spec = SpecJson, Parameters = 1234, CreatedAt = created };
        var job = new JobRecord
        {
            Id = Guid.NewGuid(), Owner = owner, State = RunState.Paused, Spec = Read<ModelSpec>(SpecJson), ModelId = model.Id, DatasetId = dataset.Id,
            Hyperparameters = Read<Hyperparameters>(HyperparametersJson), Monitoring = Read<MonitoringOptions>(MonitoringJson),
            Sanity = Read<SanityOptions>(SanityJson), Threads = 2, TotalSteps = 300, Step = 12, Epoch = 1, LatestLoss = 0.25,
            BestValidationAccuracy = null, SamplesPerSecond = 1234.5, LastSeq = 40, HistoryBytes = 5000, CrashCount = 1,
            CreatedAt = created, StartedAt = created.AddSeconds(1), FinishedAt = null,
        };
        var sweep = new SweepRecord
        {
            Id = Guid.NewGuid(), Owner = owner, Name = "lr × width", State = RunState.Running, DatasetId = dataset.Id, Trials = 16, Parallelism = 2, TrialsCreated = 5,
            Waiting = "quota", CreatedAt = created, TrialParams = """[{"hyperparameters.learningRate":0.01,"layers.conv1.filters":8}]""",
            Settings = new TrainingService.Contracts.Sweeps.SweepSettings
            {
                DatasetId = dataset.Id, Model = JsonDocument.Parse(SpecJson).RootElement.Clone(), Hyperparameters = job.Hyperparameters, Monitoring = job.Monitoring,
                SearchSpace = [new() { Path = "hyperparameters.learningRate", LogUniform = new() { Min = 1e-3, Max = 0.1 } }],
                Strategy = TrainingService.Contracts.Sweeps.SweepStrategy.Asha, Trials = 16, Parallelism = 2, Seed = 1,
                Metric = TrainingService.Contracts.Sweeps.SweepMetricName.ValidationAccuracy, Goal = TrainingService.Contracts.Sweeps.MetricGoal.Maximize,
                Asha = new() { MinEpochs = 1, ReductionFactor = 3, MaxEpochs = 9, Sampler = "grid" }, Rungs = [1, 3],
            },
        };
        job.SweepId = sweep.Id;
        job.SweepTrial = 4;
        job.StopCode = "asha-cut";
        job.SweepValue = 0.8125;
        job.SweepValueEpoch = 3;
        var rung = new SweepRungRecord { SweepId = sweep.Id, Epoch = 3, Trial = 4, Value = 0.8125, Cutoff = null, Earlier = 0, Continued = true, ReportedAt = created };
        var jobEvent = new JobEventRecord { JobId = job.Id, Seq = 40, Kind = "step", Json = """{"kind":"step","seq":40}""", Bytes = 24 };
        var share = new ShareLinkRecord { Id = Guid.NewGuid(), JobId = job.Id, CreatedBy = owner, CreatedAt = created, ExpiresAt = created.AddDays(7) };
        await using (var db = new PostgresTrainingDb(options))
        {
            db.AddRange(user, key, dataset, model, job, jobEvent, share, sweep, rung);
            await db.SaveChangesAsync();
        }

        await using (var db = new PostgresTrainingDb(options))
        {
            UserRecord u = await db.Users.SingleAsync(r => r.Id == owner);
            Assert.Equal((user.Name, user.Role, created, DateTimeKind.Utc, (DateTime?)null), (u.Name, u.Role, u.CreatedAt, u.CreatedAt.Kind, u.DisabledAt));

            ApiKeyRecord k = await db.ApiKeys.SingleAsync(r => r.Hash == key.Hash);
            Assert.Equal((key.Id, key.Prefix, created.AddMinutes(1), DateTimeKind.Utc), (k.Id, k.Prefix, k.LastUsedAt!.Value, k.LastUsedAt.Value.Kind));

            DatasetRecord d = await db.Datasets.SingleAsync(r => r.Id == dataset.Id);
            Assert.Equal(dataset.ClassNames, d.ClassNames);
            Assert.Equal(dataset.Mean, d.Mean);
            Assert.Equal(dataset.Std, d.Std);
            Assert.Equal(("crop", 3, 32, 90, created), (d.Fit, d.Channels, d.Width, d.TrainCount, d.CreatedAt));

            Assert.Equal(SpecJson, (await db.Models.SingleAsync(r => r.Id == model.Id)).Spec);

            JobRecord j = await db.Jobs.SingleAsync(r => r.Id == job.Id && r.Owner == owner && r.DatasetId == dataset.Id);
            Assert.Equal(Write(job.Spec), Write(j.Spec));
            Assert.Equal(Write(job.Hyperparameters), Write(j.Hyperparameters));
            Assert.Equal(Write(job.Monitoring), Write(j.Monitoring));
            Assert.Equal(Write(job.Sanity), Write(j.Sanity));
            Assert.Equal(
                (RunState.Paused, model.Id, 2, 300L, 12L, 0.25, (double?)null, 40L, 1, created.AddSeconds(1), DateTimeKind.Utc, (DateTime?)null),
                (j.State, j.ModelId, j.Threads, j.TotalSteps, j.Step, j.LatestLoss!.Value, j.BestValidationAccuracy, j.LastSeq, j.CrashCount,
                    j.StartedAt!.Value, j.StartedAt.Value.Kind, j.FinishedAt));

            JobEventRecord e = await db.JobEvents.SingleAsync(r => r.JobId == job.Id && r.Seq == 40);
            Assert.Equal((jobEvent.Kind, jobEvent.Json, 24), (e.Kind, e.Json, e.Bytes));

            Assert.Equal((sweep.Id, 4, "asha-cut", 0.8125, 3), (j.SweepId!.Value, j.SweepTrial!.Value, j.StopCode, j.SweepValue!.Value, j.SweepValueEpoch!.Value));
            SweepRecord w = await db.Sweeps.SingleAsync(r => r.Id == sweep.Id && r.Owner == owner && r.State == RunState.Running);
            Assert.Equal(JsonSerializer.Serialize(sweep.Settings, JsonSerializerOptions.Web), JsonSerializer.Serialize(w.Settings, JsonSerializerOptions.Web));
            Assert.Equal((sweep.Name, sweep.TrialParams, 16, 2, 5, "quota", created), (w.Name, w.TrialParams, w.Trials, w.Parallelism, w.TrialsCreated, w.Waiting, w.CreatedAt));
            SweepRungRecord g = await db.SweepRungs.SingleAsync(r => r.SweepId == sweep.Id);
            Assert.Equal((3, 4, 0.8125, (double?)null, true, created), (g.Epoch, g.Trial, g.Value, g.Cutoff, g.Continued, g.ReportedAt));

            ShareLinkRecord s = await db.ShareLinks.SingleAsync(r => r.JobId == job.Id);
            Assert.Equal((share.Id, created.AddDays(7)), (s.Id, s.ExpiresAt));

            // The job's settings are replaced whole and saved (the event pump's and steering's path).
            j.Hyperparameters = j.Hyperparameters with { LearningRate = 0.001 };
            j.State = RunState.Running;
            await db.SaveChangesAsync();
        }

        await using (var db = new PostgresTrainingDb(options))
        {
            JobRecord j = await db.Jobs.SingleAsync(r => r.Id == job.Id);
            Assert.Equal((0.001, RunState.Running), (j.Hyperparameters.LearningRate, j.State));
            Assert.Equal(1, await db.Jobs.CountAsync(r => r.Owner == owner && r.CreatedAt == created)); // keyset paging compares times
        }
    }

    private static DbContextOptions<PostgresTrainingDb> Options(string connectionString) =>
        new DbContextOptionsBuilder<PostgresTrainingDb>().UseNpgsql(connectionString).Options;

    private static T Read<T>(string json) => JsonSerializer.Deserialize<T>(json, JsonSerializerOptions.Web)!;

    private static string Write<T>(T value) => JsonSerializer.Serialize(value, JsonSerializerOptions.Web);

    private const string SpecJson =
        """{"name":"tiny","input":{"channels":1,"height":28,"width":28},"layers":[{"kind":"conv2d","filters":4,"kernel":3,"padding":"same"},{"kind":"flatten"},{"kind":"linear","units":4}]}""";

    private const string HyperparametersJson =
        """{"epochs":3,"batchSize":16,"optimizer":"adamw","learningRate":0.003,"momentum":0.9,"nesterov":false,"weightDecay":0.01,"schedule":"cosine","stepSize":5,"gamma":0.1,"seed":7,"validationFraction":0.2,"augmentation":{"randomCrop":{"padding":2},"horizontalFlip":true,"translate":null}}""";

    private const string MonitoringJson = """{"statsEvery":5,"diagnostics":{"enabled":false,"onNonFinite":"alert"}}""";

    private const string SanityJson = """{"check":"overfitSubset","samples":20,"maxSteps":300,"targetLoss":0.01}""";
}
