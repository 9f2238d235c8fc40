using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using TrainingService.Api.Persistence;
using TrainingService.Training.Loop;
using Xunit.Abstractions;

namespace TrainingService.Api.Tests.Jobs;

/// <summary>A job whose statistics would outgrow Jobs:MaxHistoryBytesPerJob keeps every step and stays under it.</summary>
public sealed class HistoryThinningTests(ITestOutputHelper output)
{
    [Fact]
    public async Task AJobWhoseStatisticsOutgrowTheLimitIsThinnedUnderItKeepingEveryStepAndEverySeq()
    {
        const long Limit = 1L << 20;
        await using var factory = new TrainingServiceFactory(new() { ["Jobs:MaxHistoryBytesPerJob"] = Limit.ToString(CultureInfo.InvariantCulture) });
        using HttpClient client = factory.CreateClient();
        Guid datasetId = await JobHarness.CreateShapesAsync(client);
        // 16 steps an epoch, statistics every step: ~1,900 bytes a layers event, 800 steps: ~1.8 MB if nothing were thinned. Thinned
        // in full, it would keep ~480 kB: under half the limit, so it is admitted.
        (HttpResponseMessage response, JsonElement posted) = await JobHarness.PostJobAsync(client,
            $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 50, "batchSize": 16 }, "monitoring": { "statsEvery": 1 } }""");
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Guid jobId = posted.GetProperty("id").GetGuid();
        JsonElement job = await JobHarness.WaitForStateAsync(client, jobId, "Succeeded", TimeSpan.FromMinutes(4));

        JsonElement[] events = [.. (await client.GetFromJsonAsync<JsonElement>($"/jobs/{jobId}/events?limit=10000")).EnumerateArray()];
        long stored = await JobHarness.StoredHistoryBytesAsync(client, jobId);
        long full = events.Where(e => Kind(e) == "layers" && !IsThinned(e)).Sum(e => Encoding.UTF8.GetByteCount(e.GetRawText()) + (long)HistoryEstimate.RowBytes);
        output.WriteLine($"{events.Length:N0} events, {stored:N0} bytes stored (historyBytes {job.GetProperty("historyBytes").GetInt64():N0}), {full:N0} of them full layers events");

        Assert.Equal(stored, job.GetProperty("historyBytes").GetInt64()); // the count the service keeps is the rows' true size
        Assert.InRange(stored, Limit / 3, Limit * 9 / 10);
        Assert.Equal(Enumerable.Range(1, events.Length).Select(i => (long)i), events.Select(e => e.GetProperty("seq").GetInt64())); // no gap
        long totalSteps = job.GetProperty("totalSteps").GetInt64();
        JsonElement[] steps = [.. events.Where(e => Kind(e) == "step")];
        Assert.Equal(Enumerable.Range(1, (int)totalSteps).Select(i => (long)i), steps.Select(e => e.GetProperty("step").GetInt64())); // every step's loss
        Assert.All(steps, e => Assert.True(e.GetProperty("loss").GetDouble() > 0));

        JsonElement[] layers = [.. events.Where(e => Kind(e) == "layers")];
        Assert.Equal(totalSteps, layers.Length);
        JsonElement[] thinned = [.. layers.Where(IsThinned)];
        output.WriteLine($"{layers.Length:N0} layers events, {thinned.Length:N0} thinned");
        Assert.All(thinned, e =>
        {
            Assert.Equal(["seq", "kind", "time", "step", "thinned"], e.EnumerateObject().Select(p => p.Name));
            Assert.True(e.GetProperty("step").GetInt64() > 0);
            Assert.True(e.GetProperty("time").GetDateTime() > DateTime.UtcNow.AddHours(-1));
        });
        Assert.InRange(thinned.Length, layers.Length / 3, layers.Length - 50);
        // With age: the newest statistics are in full; the oldest are kept, sparsely.
        Assert.All(layers[^20..], e => Assert.False(IsThinned(e)));
        JsonElement[] oldest = layers[..(layers.Length / 4)], newest = layers[^(layers.Length / 4)..];
        output.WriteLine($"in full: {oldest.Count(e => !IsThinned(e))} of the oldest {oldest.Length}, {newest.Count(e => !IsThinned(e))} of the newest");
        Assert.Contains(oldest, e => !IsThinned(e));
        Assert.True(oldest.Count(IsThinned) > oldest.Length / 2);
        Assert.True(newest.Count(e => !IsThinned(e)) > oldest.Count(e => !IsThinned(e)));

        JsonElement[] notices = [.. events.Where(e => Kind(e) == "alert" && e.GetProperty("code").GetString() == "history-thinned")];
        JsonElement notice = Assert.Single(notices);
        output.WriteLine(notice.GetProperty("message").GetString());
        Assert.Contains("1,048,576 bytes", notice.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal("info", notice.GetProperty("severity").GetString());
    }

    [Fact]
    public async Task ThinningStaysWithinTheIndexAndNeverReadsTheRows()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        _ = await client.GetAsync(new Uri("/health/ready", UriKind.Relative)); // migrated
        string folder = factory.Services.GetRequiredService<IOptions<StorageOptions>>().Value.FullDataFolder;
        await using var connection = new SqliteConnection($"Data Source={Path.Combine(folder, "training.db")}");
        await connection.OpenAsync();
        await using SqliteCommand plan = connection.CreateCommand();
        plan.CommandText = $"EXPLAIN QUERY PLAN SELECT Seq, Bytes FROM JobEvents WHERE JobId = 'x' AND Seq > 0 AND Seq <= 10 AND {HistoryThinning.FullLayersFilter} ORDER BY Seq LIMIT 256";
        var steps = new List<string>();
        await using (SqliteDataReader reader = await plan.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                steps.Add(reader.GetString(3));
            }
        }

        output.WriteLine(string.Join(Environment.NewLine, steps));
        Assert.Equal("SEARCH JobEvents USING COVERING INDEX IX_JobEvents_FullLayers (JobId=? AND Seq>? AND Seq<?)", Assert.Single(steps));
    }

    private static string Kind(JsonElement e) => e.GetProperty("kind").GetString()!;

    private static bool IsThinned(JsonElement e) => e.TryGetProperty("thinned", out JsonElement t) && t.GetBoolean();
}
