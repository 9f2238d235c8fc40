using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using TrainingService.Api.Outputs;
using TrainingService.Api.Tests.Service;
using Row = TrainingService.Api.Outputs.HistoryApi.HistoryRow;

namespace TrainingService.Api.Tests.Outputs;

/// <summary>/history's fromStep, toStep and points: a range of steps, downsampled to what a chart draws.</summary>
public sealed class HistoryRangeTests
{
    /// <summary>20,000 steps of a noisy falling loss with one spike and one NaN, and a learning rate every step.</summary>
    private static List<Row> LongRun()
    {
        var random = new Random(3);
        var rows = new List<Row>();
        for (long step = 1; step <= 20_000; step++)
        {
            double loss = step == 12_345 ? 40 : step == 15_000 ? double.NaN : (2.3 * Math.Exp(-step / 5000.0)) + (0.1 * random.NextDouble());
            rows.Add(new Row(step, (int)(1 + ((step - 1) / 1000)), default, "step/loss", loss));
            rows.Add(new Row(step, (int)(1 + ((step - 1) / 1000)), default, "step/learning_rate", 0.1 * (1 - (step / 40_000.0))));
        }

        return rows;
    }

    private static async IAsyncEnumerable<List<Row>> Chunks(List<Row> rows, int size)
    {
        for (int i = 0; i < rows.Count; i += size)
        {
            await Task.Yield();
            yield return rows.GetRange(i, Math.Min(size, rows.Count - i));
        }
    }

    private static async Task<List<Row>> ApplyAsync(List<Row> rows, long? from, long? to, int? points, long lastStep = 20_000)
    {
        var kept = new List<Row>();
        await foreach (List<Row> chunk in HistoryRange.Apply(Chunks(rows, 700), from, to, points, lastStep, CancellationToken.None))
        {
            kept.AddRange(chunk);
        }

        return kept;
    }

    [Fact]
    public async Task EachBucketKeepsItsLowestAndHighestRowsAndItsFirstNonFiniteOneInStepOrder()
    {
        List<Row> rows = LongRun();
        List<Row> kept = await ApplyAsync(rows, null, null, points: 2000);

        long width = HistoryRange.BucketWidth(0, 20_000, 2000);
        Assert.Equal(21, width); // 1,000 buckets over steps 0..20,000
        foreach (string tag in new[] { "step/loss", "step/learning_rate" })
        {
            List<Row> all = [.. rows.Where(r => r.Tag == tag)];
            List<Row> mine = [.. kept.Where(r => r.Tag == tag)];
            Assert.All(mine, r => Assert.Contains(r, all)); // real rows only, at their own steps
            Assert.Equal(mine.OrderBy(r => r.Step), mine); // in step order
            Assert.Equal(mine.Count, mine.Select(r => r.Step).Distinct().Count());
            Assert.InRange(mine.Count, 1000, 2001);
            foreach (IGrouping<long, Row> bucket in all.GroupBy(r => r.Step / width))
            {
                Row[] finite = [.. bucket.Where(r => double.IsFinite(r.Value))];
                Assert.Contains(finite.MinBy(r => r.Value), mine);
                Assert.Contains(finite.MaxBy(r => r.Value), mine);
                Assert.True(mine.Count(r => r.Step / width == bucket.Key) <= 4); // lowest, highest, first non-finite; the last bucket its last

            }
        }

        // The spike and the divergence survive: what a person must see in a long run.
        Assert.Contains(kept, r => r.Tag == "step/loss" && r.Step == 12_345 && r.Value == 40);
        Assert.Contains(kept, r => r.Tag == "step/loss" && r.Step == 15_000 && double.IsNaN(r.Value));
    }

    [Fact]
    public async Task ARangeKeepsItsRowsAndAFineEnoughOneKeepsEveryRow()
    {
        List<Row> rows = LongRun();
        Assert.Equal(rows.Where(r => r.Step is >= 8000 and <= 8100), await ApplyAsync(rows, 8000, 8100, points: null));
        Assert.Equal(rows.Where(r => r.Step >= 19_990), await ApplyAsync(rows, 19_990, null, points: null));
        Assert.Equal(rows.Where(r => r.Step <= 10), await ApplyAsync(rows, null, 10, points: null));

        // A zoom to 1,001 steps at 2,002 points: 1,001 buckets one step wide, so every row comes back.
        Assert.Equal(1, HistoryRange.BucketWidth(8000, 9000, 2002));
        Assert.Equal(2, HistoryRange.BucketWidth(8000, 9000, 2000));
        List<Row> zoomed = await ApplyAsync(rows, 8000, 9000, points: 2002);
        Assert.Equal(rows.Where(r => r.Step is >= 8000 and <= 9000).OrderBy(r => r.Tag, StringComparer.Ordinal).ThenBy(r => r.Step),
            zoomed.OrderBy(r => r.Tag, StringComparer.Ordinal).ThenBy(r => r.Step));

        // No toStep: the buckets cover the job's steps so far; a running job's newer rows fall in more of the same width.
        List<Row> running = await ApplyAsync(rows, null, null, points: 100, lastStep: 10_000);
        Assert.Contains(running, r => r.Step > 19_000);
        Assert.InRange(running.Count(r => r.Tag == "step/learning_rate"), 150, 202);
        IAsyncEnumerable<List<Row>> chunks = Chunks(rows, 100);
        Assert.Same(chunks, HistoryRange.Apply(chunks, null, null, null, 20_000, CancellationToken.None));
    }

    [Fact]
    public async Task EqualValuesKeepTheirBucketsFirstRowAndTheCurveStillReachesItsLastStep()
    {
        // A constant learning rate: each bucket's lowest and highest are its first row; the last bucket adds its last.
        List<Row> rows = [.. Enumerable.Range(1, 20_000).Select(s => new Row(s, 1, default, "step/learning_rate", 0.01))];
        List<Row> kept = await ApplyAsync(rows, null, null, points: 2000);
        Assert.Equal(20_000, kept[^1].Step);
        Assert.Equal(1, kept[0].Step);
        long width = HistoryRange.BucketWidth(0, 20_000, 2000);
        Assert.Equal(rows.GroupBy(r => r.Step / width).Count() + 1, kept.Count); // the first of each bucket, and the very last
    }

    [Fact]
    public async Task AJobsDownsampledColumnsAreItsCsvRowsInRangeAndBadFiguresAreProblemsNamingThem()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        Guid id = await HistoryApiTests.FinishedJobAsync(client); // 12 steps

        string[] lines = (await client.GetStringAsync(new Uri($"/jobs/{id}/history?tags=step/loss", UriKind.Relative))).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        (long Step, double Value)[] all = [.. lines.Skip(1).Select(l => l.Split(',')).Select(f => (long.Parse(f[0], CultureInfo.InvariantCulture), double.Parse(f[4], CultureInfo.InvariantCulture)))];
        Assert.Equal(12, all.Length);

        // 10 points over steps 0..12: 5 buckets 3 steps wide, each with its lowest and highest loss.
        foreach (string format in new[] { "columns", "csv" })
        {
            (long Step, double Value)[] kept = await ReadAsync(client, $"/jobs/{id}/history?format={format}&tags=step/loss&points=10");
            Assert.All(kept, r => Assert.Contains(r, all));
            foreach (IGrouping<long, (long Step, double Value)> bucket in all.GroupBy(r => r.Step / 3))
            {
                Assert.Contains(bucket.MinBy(r => r.Value), kept);
                Assert.Contains(bucket.MaxBy(r => r.Value), kept);
            }

            Assert.True(kept.Length < all.Length, $"{kept.Length} of {all.Length} rows kept");
            Assert.Equal(all.Where(r => r.Step is >= 4 and <= 7), await ReadAsync(client, $"/jobs/{id}/history?format={format}&tags=step/loss&fromStep=4&toStep=7"));
        }

        // The event-reading path (a tag group other than step/ alone) is ranged the same way.
        (long Step, double Value)[] grouped = await ReadAsync(client, $"/jobs/{id}/history?format=columns&tags=step/loss,epoch/&fromStep=7&toStep=12");
        Assert.All(grouped, r => Assert.InRange(r.Step, 7, 12));
        Assert.Contains(grouped, r => r.Step == 12); // the last epoch's figures, at its last step

        foreach ((string query, string field) in new[]
        {
            ("points=9", "points"), ("points=50001", "points"), ("fromStep=-1", "fromStep"), ("fromStep=5&toStep=4", "toStep"),
            ("format=tensorboard&points=100", "points"), ("format=tensorboard&fromStep=3", "fromStep"),
        })
        {
            HttpResponseMessage response = await client.GetAsync(new Uri($"/jobs/{id}/history?{query}", UriKind.Relative));
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            JsonElement problem = await response.Content.ReadFromJsonAsync<JsonElement>();
            Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), $"{query}: {problem}");
        }
    }

    /// <summary>
    /// fromStep starts the read at the last step event under it (a bisection over seqs), not at the first event: from
    /// every starting step, the answer is the whole history's rows from there, each with its epoch, in every tag group.
    /// </summary>
    [Fact]
    public async Task FromEveryStepTheAnswerIsTheWholeHistorysRowsFromThere()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        Guid id = await HistoryApiTests.FinishedJobAsync(client); // 2 epochs of 6 steps, statistics every 2 steps

        string[] full = (await client.GetStringAsync(new Uri($"/jobs/{id}/history", UriKind.Relative))).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains(full, l => l.Contains("epoch/validation_accuracy", StringComparison.Ordinal));
        Assert.Contains(full, l => l.Contains("activations/", StringComparison.Ordinal));
        (long Step, double Value)[] losses = await ReadAsync(client, $"/jobs/{id}/history?format=columns&tags=step/loss");
        long Step(string line) => long.Parse(line.Split(',')[0], CultureInfo.InvariantCulture);
        for (long from = 0; from <= 13; from++)
        {
            string[] ranged = (await client.GetStringAsync(new Uri($"/jobs/{id}/history?fromStep={from}", UriKind.Relative))).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal([full[0], .. full.Skip(1).Where(l => Step(l) >= from)], ranged);
            Assert.Equal(losses.Where(r => r.Step >= from), await ReadAsync(client, $"/jobs/{id}/history?format=columns&tags=step/loss&fromStep={from}"));
        }
    }

    /// <summary>The (step, value) rows of a CSV or columns answer, in order within their tag.</summary>
    private static async Task<(long Step, double Value)[]> ReadAsync(HttpClient client, string uri)
    {
        string text = await client.GetStringAsync(new Uri(uri, UriKind.Relative));
        if (!uri.Contains("format=columns", StringComparison.Ordinal))
        {
            return [.. text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(l => l.Split(','))
                .Select(f => (long.Parse(f[0], CultureInfo.InvariantCulture), double.Parse(f[4], CultureInfo.InvariantCulture)))];
        }

        return [.. text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonSerializer.Deserialize<JsonElement>(l))
            .SelectMany(b => Enumerable.Range(0, b.GetProperty("value").GetArrayLength())
                .Select(i => (b.GetProperty("step")[i].GetInt64(), b.GetProperty("value")[i].GetDouble())))];
    }
}
