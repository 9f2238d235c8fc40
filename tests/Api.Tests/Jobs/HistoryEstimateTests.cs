using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using TrainingService.Api.Jobs;
using TrainingService.Api.Persistence;
using TrainingService.Api.Tests.Service;
using TrainingService.Training.Loop;
using TrainingService.Training.Specs;
using Xunit.Abstractions;

namespace TrainingService.Api.Tests.Jobs;

/// <summary>HistoryEstimate against what real runs store, and Jobs:MaxHistoryBytesPerJob at POST /jobs.</summary>
public sealed class HistoryEstimateTests(ITestOutputHelper output)
{
    // Conv, batch norm (two parameter tensors, no "bias" flag), ReLU (an extra figure), pooling, two linear layers.
    private const string MixedSpec = """
        { "input": { "channels": 1, "height": 16, "width": 16 },
          "layers": [ { "kind": "conv2d", "filters": 8, "kernel": 3, "padding": 1, "bias": false }, { "kind": "batchnorm2d" },
                      { "kind": "relu" }, { "kind": "maxpool2d", "kernel": 2 }, { "kind": "conv2d", "filters": 8, "kernel": 3 },
                      { "kind": "tanh" }, { "kind": "flatten" }, { "kind": "linear", "units": 16 }, { "kind": "relu" },
                      { "kind": "linear", "units": 2 } ] }
        """;

    [Theory]
    [InlineData("statistics every step", MixedSpec, """{ "epochs": 2, "batchSize": 16 }""", """{ "statsEvery": 1 }""")]
    [InlineData("default monitoring", MixedSpec, """{ "epochs": 3, "batchSize": 8 }""", "null")]
    [InlineData("no statistics", JobHarness.TinySpec, """{ "epochs": 2, "batchSize": 4 }""", """{ "statsEvery": 0 }""")]
    public async Task TheEstimateIsWithinAFactorOf1Point5OfWhatARealRunStores(string name, string spec, string hyperparameters, string monitoring)
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        Guid dataset = await JobHarness.CreateShapesAsync(client);
        (HttpResponseMessage response, JsonElement body) = await JobHarness.PostJobAsync(client,
            $$"""{ "datasetId": "{{dataset}}", "model": {{spec}}, "hyperparameters": {{hyperparameters}}, "monitoring": {{monitoring}} }""");
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        response.Dispose();
        Guid job = body.GetProperty("id").GetGuid();
        await JobHarness.WaitForStateAsync(client, job, "Succeeded");

        HistoryEstimate estimate = await EstimateAsync(factory, job);
        Stored stored = await StoredAsync(factory, job);

        output.WriteLine($"{name}: estimate {estimate.Bytes:N0} bytes ({estimate.Steps} steps × {estimate.StepBytes}, "
            + $"{estimate.Measurements} measurements × {estimate.MeasurementBytes}, {estimate.Epochs} epochs × {estimate.EpochBytes}, fixed {estimate.FixedBytes})");
        output.WriteLine($"  rows {stored.Rows}: JSON {stored.JsonBytes:N0} bytes, with key and kind {stored.RowBytes:N0}; "
            + $"pages {stored.PageBytes:N0}");
        foreach ((string kind, long count, double average) in stored.ByKind)
        {
            output.WriteLine($"  {kind}: {count} rows, {average:F1} bytes of JSON on average");
        }

        long Count(string kind) => stored.ByKind.SingleOrDefault(k => k.Kind == kind).Count;
        Assert.Equal((estimate.Steps, estimate.Measurements, estimate.Epochs), (Count("step"), Count("layers"), Count("epoch")));
        double ratio = (double)estimate.Bytes / stored.RowBytes;
        output.WriteLine($"  estimate / stored rows = {ratio:F2}");
        Assert.InRange(ratio, 1 / 1.5, 1.5);
        output.WriteLine($"  estimate / pages = {(double)estimate.Bytes / stored.PageBytes:F2}");
        Assert.InRange((double)estimate.Bytes / stored.PageBytes, 1 / 1.5, 1.5);
    }

    [Fact]
    public async Task AJobOverTheHistoryLimitEvenThinnedIsA422NamingEpochsTheEstimateAndTheLimitAndBothItsAdvicesPass()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        Guid dataset = await JobHarness.CreateShapesAsync(client);
        // 256 images at batch size 1 for 5,000 epochs, every step measured: 1.28 million step and layers events each. The
        // steps alone would fit in half the limit; with every layers event thinned too they do not.
        string Job(int epochs, string monitoring) => $$"""
            { "datasetId": "{{dataset}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": {{epochs}}, "batchSize": 1 },
              "monitoring": {{monitoring}} }
            """;

        (HttpResponseMessage refused, _) = await JobHarness.PostJobAsync(client, Job(5_000, """{ "statsEvery": 1 }"""));

        JsonElement problem = await ServiceHarness.AssertProblemAsync(refused, HttpStatusCode.UnprocessableEntity);
        string detail = problem.GetProperty("detail").GetString()!;
        output.WriteLine(detail);
        Assert.Equal(["hyperparameters.epochs"], ServiceHarness.FieldsOf(problem)); // steps outweigh thinned statistics
        Assert.Equal("Jobs:MaxHistoryBytesPerJob", problem.GetProperty("limit").GetString());
        long estimate = problem.GetProperty("estimatedBytes").GetInt64();
        Assert.Equal(1L << 30, problem.GetProperty("limitBytes").GetInt64());
        Assert.True(estimate > 1L << 29, $"{estimate:N0}");
        foreach (string part in new[] { N(estimate), "536,870,912 bytes, half the limit of 1,073,741,824", "Jobs:MaxHistoryBytesPerJob", "1,280,000 steps",
            "1,280,000 layers events", "(monitoring.statsEvery)", "(hyperparameters.epochs)" })
        {
            Assert.Contains(part, detail, StringComparison.Ordinal);
        }

        Assert.Empty(await ServiceHarness.ListIdsAsync(client, "")); // nothing stored
        int epochs = int.Parse(Regex.Match(detail, @"train at most ([\d,]+) epochs").Groups[1].Value, NumberStyles.AllowThousands, CultureInfo.InvariantCulture);
        string every = Regex.Match(detail, @"record statistics every ([\d,]+) steps instead").Groups[1].Value.Replace(",", "", StringComparison.Ordinal);
        Guid shorter = await AcceptedAsync(client, Job(epochs, """{ "statsEvery": 1 }"""));
        Guid lessOften = await AcceptedAsync(client, Job(5_000, $$"""{ "statsEvery": {{every}} }"""));
        (HttpResponseMessage over, _) = await JobHarness.PostJobAsync(client, Job(epochs + (epochs / 20), """{ "statsEvery": 1 }"""));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, over.StatusCode);
        await CancelAsync(client, shorter, lessOften);
    }

    [Fact]
    public async Task AJobWhoseStepsAloneAreOverTheLimitIsA422NamingEpochsAndItsAdvicePasses()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory(new() { ["Jobs:MaxHistoryBytesPerJob"] = "50000000" });
        using HttpClient client = factory.CreateClient();
        Guid dataset = await JobHarness.CreateShapesAsync(client);
        string Job(int epochs) => $$"""
            { "datasetId": "{{dataset}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": {{epochs}}, "batchSize": 1 },
              "monitoring": { "statsEvery": 0 } }
            """;

        (HttpResponseMessage refused, _) = await JobHarness.PostJobAsync(client, Job(10_000));

        JsonElement problem = await ServiceHarness.AssertProblemAsync(refused, HttpStatusCode.UnprocessableEntity);
        string detail = problem.GetProperty("detail").GetString()!;
        output.WriteLine(detail);
        Assert.Equal(["hyperparameters.epochs"], ServiceHarness.FieldsOf(problem));
        Assert.Equal("Jobs:MaxHistoryBytesPerJob", problem.GetProperty("limit").GetString());
        Assert.Equal(50_000_000, problem.GetProperty("limitBytes").GetInt64());
        Assert.Contains("50,000,000 bytes per job (configuration Jobs:MaxHistoryBytesPerJob)", detail, StringComparison.Ordinal);
        Assert.DoesNotContain("record statistics", detail, StringComparison.Ordinal); // there are none to record less of
        int epochs = int.Parse(Regex.Match(detail, @"train at most ([\d,]+) epochs").Groups[1].Value, NumberStyles.AllowThousands, CultureInfo.InvariantCulture);
        Assert.InRange(epochs, 100, 9_999);
        Guid advised = await AcceptedAsync(client, Job(epochs));
        (HttpResponseMessage over, _) = await JobHarness.PostJobAsync(client, Job(epochs + (epochs / 20)));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, over.StatusCode);
        await CancelAsync(client, advised);
    }

    [Theory]
    [InlineData("0", false)]
    [InlineData("-1", false)]
    [InlineData("1", true)]
    public void TheLimitIsValidatedOnStartAndMustBePositive(string limit, bool valid)
    {
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Jobs:MaxHistoryBytesPerJob"] = limit }).Build());
        services.AddJobs(NodeRole.All);
        using ServiceProvider provider = services.BuildServiceProvider();
        IStartupValidator startup = provider.GetRequiredService<IStartupValidator>(); // what the host runs as it starts

        Exception? error = Record.Exception(startup.Validate);

        if (valid)
        {
            Assert.Null(error);
            Assert.Equal(1, provider.GetRequiredService<IOptions<JobOptions>>().Value.MaxHistoryBytesPerJob);
        }
        else
        {
            Assert.Contains("Jobs:MaxHistoryBytesPerJob must be positive", Assert.IsType<OptionsValidationException>(error).Message, StringComparison.Ordinal);
        }
    }

    private static async Task<Guid> AcceptedAsync(HttpClient client, string json)
    {
        (HttpResponseMessage response, JsonElement body) = await JobHarness.PostJobAsync(client, json);
        using (response)
        {
            Assert.True(response.StatusCode == HttpStatusCode.Accepted, body.ToString());
            return body.GetProperty("id").GetGuid();
        }
    }

    private static async Task CancelAsync(HttpClient client, params Guid[] jobs)
    {
        foreach (Guid job in jobs)
        {
            (await ServiceHarness.PostAsync(client, $"/jobs/{job}/cancel")).Dispose();
        }
    }

    private static string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    /// <summary>The plan the worker built for the job, from its stored record (as JobWorker does).</summary>
    private static async Task<HistoryEstimate> EstimateAsync(TrainingServiceFactory factory, Guid jobId)
    {
        await using AsyncServiceScope scope = factory.Services.CreateAsyncScope();
        TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
        JobRecord job = await db.Jobs.AsNoTracking().SingleAsync(j => j.Id == jobId);
        DatasetRecord d = await db.Datasets.AsNoTracking().SingleAsync(r => r.Id == job.DatasetId);
        TrainingPlan plan = TrainingPlan.Require(
            SpecAnalyzer.Analyze(job.Spec, scope.ServiceProvider.GetRequiredService<IOptions<SpecLimits>>().Value),
            new DatasetShape(d.Name, d.Channels, d.Height, d.Width, d.Classes, d.TrainCount, d.TestCount), job.Hyperparameters, job.Monitoring, job.Sanity, job.Threads);
        return HistoryEstimate.Of(plan);
    }

    private sealed record Stored(long Rows, long JsonBytes, long RowBytes, long PageBytes, List<(string Kind, long Count, double Average)> ByKind);

    /// <summary>
    /// What the job's events take as the database stores them: each row's JSON, job id, kind and seq (8 bytes at most),
    /// a step's figures again in the index of step events (job id, four integers of 8 bytes at most, the figures' text),
    /// and, where SQLite has its dbstat table, the pages of JobEvents and its key's index (this host's only job).
    /// </summary>
    private static async Task<Stored> StoredAsync(TrainingServiceFactory factory, Guid jobId)
    {
        await using AsyncServiceScope scope = factory.Services.CreateAsyncScope();
        var connection = (SqliteConnection)scope.ServiceProvider.GetRequiredService<TrainingDb>().Database.GetDbConnection();
        await connection.OpenAsync();
        string job = jobId.ToString().ToUpperInvariant();
        long rows, json, row;
        await using (SqliteCommand totals = connection.CreateCommand())
        {
            totals.CommandText = """
                SELECT COUNT(*), SUM(LENGTH(CAST(Json AS BLOB))), SUM(LENGTH(CAST(Json AS BLOB)) + LENGTH(JobId) + LENGTH(Kind) + 8
                    + CASE WHEN Kind = 'step' THEN LENGTH(JobId) + 4 * 8 + LENGTH(Loss) + LENGTH(LearningRate) + LENGTH(SamplesPerSecond) ELSE 0 END)
                FROM JobEvents WHERE JobId = $job
                """;
            totals.Parameters.AddWithValue("$job", job);
            await using SqliteDataReader reader = await totals.ExecuteReaderAsync();
            await reader.ReadAsync();
            (rows, json, row) = (reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2));
        }

        var byKind = new List<(string, long, double)>();
        await using (SqliteCommand kinds = connection.CreateCommand())
        {
            kinds.CommandText = "SELECT Kind, COUNT(*), AVG(LENGTH(CAST(Json AS BLOB))) FROM JobEvents WHERE JobId = $job GROUP BY Kind ORDER BY Kind";
            kinds.Parameters.AddWithValue("$job", job);
            await using SqliteDataReader reader = await kinds.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                byKind.Add((reader.GetString(0), reader.GetInt64(1), reader.GetDouble(2)));
            }
        }

        // The pages in use, with the job's events and after they are deleted (freed pages go to the free list).
        long used = await UsedBytesAsync(connection);
        await using (SqliteCommand delete = connection.CreateCommand())
        {
            delete.CommandText = "DELETE FROM JobEvents WHERE JobId = $job";
            delete.Parameters.AddWithValue("$job", job);
            await delete.ExecuteNonQueryAsync();
        }

        long pages = used - await UsedBytesAsync(connection);
        return new Stored(rows, json, row, pages, byKind);
    }

    private static async Task<long> UsedBytesAsync(SqliteConnection connection)
    {
        await using SqliteCommand pragma = connection.CreateCommand();
        pragma.CommandText = "PRAGMA wal_checkpoint(TRUNCATE)";
        await pragma.ExecuteNonQueryAsync();
        long Read(string name)
        {
            pragma.CommandText = $"PRAGMA {name}";
            return (long)pragma.ExecuteScalar()!;
        }

        return (Read("page_count") - Read("freelist_count")) * Read("page_size");
    }
}
