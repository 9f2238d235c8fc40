using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.Playwright;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace TrainingService.Dashboard.Tests;

/// <summary>The sweep page: every trial's curves, the parallel-coordinates plot, the leaderboard, stops, cancel and the best model.</summary>
[Collection(BrowserCollection.Name)]
public sealed class SweepPageTests(Browser browser, ITestOutputHelper output)
{
    /// <summary>tests/Api.Tests/Jobs/JobHarness.TinySpec: a convolution, a pool and a linear layer on 16×16 grey images.</summary>
    private const string TinySpec = """
        { "input": { "channels": 1, "height": 16, "width": 16 },
          "layers": [ { "kind": "conv2d", "filters": 4, "kernel": 3 }, { "kind": "relu" }, { "kind": "maxpool2d", "kernel": 2 },
                      { "kind": "flatten" }, { "kind": "linear", "units": 2 } ] }
        """;

    private sealed record ProbeTrial(int Index, string JobId, int LossPoints, int MetricPoints, long LastStep, string State);

    private sealed record ProbeLine(int Trial, bool Best, double?[] At);

    private sealed record SweepProbe(string Id, string State, ProbeTrial[] Trials, int LeftOut, string[] Axes, ProbeLine[] Lines);

    [Fact]
    public async Task ASweepShowsEveryTrialsCurvesItsSettingsAgainstTheMetricAndItsLeaderboard()
    {
        await using LiveService service = LiveService.Start();
        HttpClient client = service.Client;
        Guid dataset = await ShapesAsync(client);
        // A 2 × 2 grid: a learning rate that trains and one so large (with momentum 0.99) that its trials diverge and
        // are stopped, by conv1's width.
        Guid sweepId = await CreateSweepAsync(client, $$"""
            { "name": "lr x filters",
              "base": { "datasetId": "{{dataset}}", "model": {{TinySpec}}, "hyperparameters": { "epochs": 2, "batchSize": 16, "momentum": 0.99 } },
              "searchSpace": [ { "path": "hyperparameters.learningRate", "choice": [0.05, 10] },
                               { "path": "layers.conv1.filters", "choice": [2, 4] } ],
              "parallelism": 2 }
            """);
        JsonElement sweep = await WaitForSweepAsync(client, sweepId, s => s.GetProperty("state").GetString() != "Running");
        Assert.Equal("Succeeded", sweep.GetProperty("state").GetString());
        JsonElement[] trials = [.. sweep.GetProperty("trialList").EnumerateArray()];
        Assert.Equal(4, trials.Length);
        int best = sweep.GetProperty("best").GetProperty("index").GetInt32();
        JsonElement[] stopped = [.. trials.Where(t => t.GetProperty("stopCode").ValueKind == JsonValueKind.String)];
        Assert.NotEmpty(stopped); // learning rate 10 with momentum 0.99 diverges: the grid has a stopped trial to show

        IPage page = await browser.NewPageAsync(service.BaseUrl);
        var errors = new List<string>();
        page.PageError += (_, error) => errors.Add(error);
        await page.GotoAsync("");
        await page.ClickAsync("header nav a[href='#/sweeps']");
        await Expect(page.Locator($"tr[data-sweep='{sweepId}'] td").Nth(1)).ToHaveTextAsync("Succeeded");
        await page.ClickAsync($"tr[data-sweep='{sweepId}'] a");
        await Expect(page.Locator("h1")).ToHaveTextAsync("Sweep “lr x filters”");
        await Expect(page.Locator("#sweep-state")).ToHaveTextAsync("Succeeded");

        // Every trial's curves: each of its job's steps a loss point, each of its epochs with a value a point of the metric.
        await Dashboard.WaitAsync(page, "p.sweep && p.sweep.trials.length === 4 && p.sweep.trials.every(t => t.state === 'done')");
        SweepProbe probe = await ProbeAsync(page);
        Assert.Equal(sweepId.ToString(), probe.Id);
        Assert.Equal(0, probe.LeftOut);
        foreach (JsonElement trial in trials)
        {
            Guid jobId = trial.GetProperty("jobId").GetGuid();
            List<JsonElement> history = await Dashboard.HistoryAsync(client, jobId);
            ProbeTrial drawn = Assert.Single(probe.Trials, t => t.Index == trial.GetProperty("index").GetInt32());
            Assert.Equal(jobId.ToString(), drawn.JobId);
            Assert.Equal(history.Count(e => e.GetProperty("kind").GetString() == "step"), drawn.LossPoints);
            Assert.Equal(history.Count(e => e.GetProperty("kind").GetString() == "epoch" && e.TryGetProperty("validationAccuracy", out JsonElement v) && v.ValueKind != JsonValueKind.Null),
                drawn.MetricPoints);
            Assert.Equal(trial.GetProperty("step").GetInt64(), drawn.LastStep);
        }

        Assert.Equal(5, await page.Locator("#sweep-loss-chart .u-legend .u-series").CountAsync()); // x and a trial each
        Assert.Equal(5, await page.Locator("#sweep-metric-chart .u-legend .u-series").CountAsync());
        await Expect(page.Locator("#sweep-loss-chart .u-legend")).ToContainTextAsync($"trial {best} (best)");
        Assert.Equal(1, await page.Locator("#sweep-loss-chart .u-legend .u-series", new() { HasText = "(best)" }).CountAsync());

        // The parallel-coordinates plot: an axis per setting and one for the metric; each trial's line at its choices,
        // the best at the top of the metric's axis, a trial with no value not on it; and painted.
        Assert.Equal(["hyperparameters.learningRate", "layers.conv1.filters", "validationAccuracy"], probe.Axes);
        Assert.Equal(4, probe.Lines.Length);
        foreach (JsonElement trial in trials)
        {
            JsonElement settings = trial.GetProperty("params");
            ProbeLine line = Assert.Single(probe.Lines, l => l.Trial == trial.GetProperty("index").GetInt32());
            Assert.Equal(settings.GetProperty("hyperparameters.learningRate").GetDouble() == 10 ? 1.0 : 0.0, line.At[0]);
            Assert.Equal(settings.GetProperty("layers.conv1.filters").GetInt32() == 4 ? 1.0 : 0.0, line.At[1]);
            Assert.Equal(trial.GetProperty("value").ValueKind == JsonValueKind.Null, line.At[2] is null);
            Assert.Equal(line.Trial == best, line.Best);
        }

        Assert.Equal(1.0, Assert.Single(probe.Lines, l => l.Best).At[2]);
        int painted = await page.EvaluateAsync<int>("""
            () => {
              const c = document.querySelector('#sweep-parallel canvas');
              const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
              let n = 0;
              for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
              return n;
            }
            """);
        Assert.True(painted > 2000, $"the parallel plot painted {painted} pixels");

        // The leaderboard in the server's rank order, the best first; each stopped trial with its code and reason.
        JsonElement board = await client.GetFromJsonAsync<JsonElement>($"sweeps/{sweepId}/leaderboard");
        int[] ranked = [.. board.GetProperty("ranked").EnumerateArray().Select(r => r.GetProperty("trial").GetProperty("index").GetInt32())];
        Assert.Equal(ranked, await page.Locator("#leaderboard tbody tr").EvaluateAllAsync<int[]>("rows => rows.map(r => Number(r.dataset.trial))"));
        Assert.Equal(best, ranked[0]);
        await Expect(page.Locator("#leaderboard tbody tr").First).ToHaveClassAsync("best");
        await Expect(page.Locator("#leaderboard thead")).ToContainTextAsync("learningRate");
        await Expect(page.Locator("#leaderboard thead")).ToContainTextAsync("conv1.filters");
        foreach (JsonElement trial in trials)
        {
            ILocator row = page.Locator($"#leaderboard tr[data-trial='{trial.GetProperty("index").GetInt32()}']");
            await Expect(row.Locator(".badge")).ToHaveTextAsync(trial.GetProperty("status").GetString()!);
            if (trial.GetProperty("stopCode").GetString() is { } code)
            {
                await Expect(row.Locator(".why")).ToContainTextAsync(code);
                await Expect(row.Locator(".why")).ToContainTextAsync(trial.GetProperty("stopReason").GetString()!);
            }
            else
            {
                await Expect(row.Locator(".why")).ToHaveTextAsync("");
            }
        }

        await Browser.ScreenshotAsync(page, "sweep");
        await PageTests.AssertNoSeriousViolationsAsync(page, "sweep");

        // Save best as model: the best trial's spec, under the name given.
        await page.FillAsync("#best-model-name", "best of the grid");
        await page.ClickAsync("#save-best");
        await Expect(page.Locator("#sweep-status")).ToContainTextAsync("Saved the best trial's model as “best of the grid”");
        string modelId = (await page.Locator("#sweep-status").GetAttributeAsync("data-model"))!;
        JsonElement model = await client.GetFromJsonAsync<JsonElement>($"models/{modelId}");
        Assert.Equal("best of the grid", model.GetProperty("name").GetString());
        Assert.Equal(trials[best].GetProperty("params").GetProperty("layers.conv1.filters").GetInt32(), model.GetProperty("spec").GetProperty("layers")[0].GetProperty("filters").GetInt32());
        await Expect(page.Locator("#sweep-cancel")).ToBeDisabledAsync(); // it has ended

        // The jobs list says which sweep each trial belongs to, with a link to it.
        await page.GotoAsync("#/");
        foreach (JsonElement trial in trials)
        {
            ILocator link = page.Locator($"tr[data-job='{trial.GetProperty("jobId").GetGuid()}'] a.sweep-of");
            await Expect(link).ToHaveAttributeAsync("href", $"#/sweeps/{sweepId}");
            await Expect(link).ToContainTextAsync($"trial {trial.GetProperty("index").GetInt32()}");
        }

        await page.GotoAsync("#/sweeps");
        await page.Locator($"tr[data-sweep='{sweepId}']").WaitForAsync();
        await PageTests.AssertNoSeriousViolationsAsync(page, "sweeps");

        // On a phone the page fits its width (the leaderboard scrolls inside its own box).
        IPage phone = await browser.NewPageAsync(service.BaseUrl, width: 390, height: 844);
        await phone.GotoAsync($"#/sweeps/{sweepId}");
        await Dashboard.WaitAsync(phone, "p.sweep && p.sweep.trials.every(t => t.state === 'done')");
        int width = await phone.EvaluateAsync<int>("() => document.documentElement.scrollWidth");
        Assert.True(width <= 390, $"the sweep page is {width} px wide on a 390 px screen");
        await Browser.ScreenshotAsync(phone, "phone-sweep");
        Assert.True(errors.Count == 0, string.Join('\n', errors));
    }

    [Fact]
    public async Task AnActiveTrialIsDrawnLiveAndCancellingSaysWhyEveryTrialStopped()
    {
        await using LiveService service = LiveService.Start();
        HttpClient client = service.Client;
        Guid dataset = await ShapesAsync(client);
        Guid sweepId = await CreateSweepAsync(client, $$"""
            { "base": { "datasetId": "{{dataset}}", "model": {{TinySpec}}, "hyperparameters": { "epochs": 1000, "batchSize": 8 } },
              "searchSpace": [ { "path": "hyperparameters.learningRate", "logUniform": { "min": 0.001, "max": 0.1 } } ],
              "strategy": "random", "trials": 3, "parallelism": 1 }
            """);
        JsonElement running = await WaitForSweepAsync(client, sweepId, s => s.GetProperty("trialList")[0].GetProperty("status").GetString() == "Active");
        Guid first = running.GetProperty("trialList")[0].GetProperty("jobId").GetGuid();

        IPage page = await browser.NewPageAsync(service.BaseUrl);
        var errors = new List<string>();
        page.PageError += (_, error) => errors.Add(error);
        await page.GotoAsync($"#/sweeps/{sweepId}");
        await Expect(page.Locator("#sweep-state")).ToHaveTextAsync("Running");
        await Expect(page.Locator("#sweep-cancel")).ToBeEnabledAsync();
        await Dashboard.WaitAsync(page, "p.sweep && p.sweep.trials.length === 1 && p.sweep.trials[0].state === 'live' && p.sweep.trials[0].lossPoints > 0");
        await Expect(page.Locator("#sweep-link")).ToHaveTextAsync("● live");
        // Its steps arrive over the hub: the curve grows while the page fetches no history.
        int historyRequests = 0;
        page.Request += (_, request) => { if (request.Url.Contains("/history", StringComparison.Ordinal)) historyRequests++; };
        long before = (await ProbeAsync(page)).Trials[0].LastStep;
        await Dashboard.WaitAsync(page, $"p.sweep.trials[0].lastStep > {before + 20}");
        Assert.Equal(0, historyRequests);
        // One axis, the learning rate's, logarithmic over 0.001 … 0.1, then the metric.
        Assert.Equal(["hyperparameters.learningRate", "validationAccuracy"], (await ProbeAsync(page)).Axes);

        await page.ClickAsync("#sweep-cancel"); // its confirm is accepted
        await Expect(page.Locator("#sweep-state")).ToHaveTextAsync("Cancelled");
        foreach (int trial in new[] { 0, 1, 2 })
        {
            ILocator row = page.Locator($"#leaderboard tr[data-trial='{trial}']");
            await Expect(row.Locator(".badge")).ToHaveTextAsync("Cancelled");
            await Expect(row.Locator(".why")).ToContainTextAsync("sweep-cancelled");
        }

        // Once its job has ended, the trial's curve is read once more from the history: every step it trained.
        JsonElement job = await Dashboard.JobAsync(client, first);
        Assert.Equal("Cancelled", job.GetProperty("state").GetString());
        await Dashboard.WaitAsync(page, $"p.sweep.trials[0].state === 'done' && p.sweep.trials[0].lossPoints === {job.GetProperty("step").GetInt64()}");
        await Expect(page.Locator("#sweep-cancel")).ToBeDisabledAsync();
        await Browser.ScreenshotAsync(page, "sweep-cancelled");
        Assert.True(errors.Count == 0, string.Join('\n', errors));
    }

    [Fact]
    public async Task ASweepOfMoreTrialsThanTheCapDrawsTheBestAndSaysHowManyItLeftOutUntilAskedForAll()
    {
        await using LiveService service = LiveService.Start();
        HttpClient client = service.Client;
        Guid dataset = await ShapesAsync(client);
        // 2 × 11 = 22 one-epoch trials: two more than the page draws unless asked.
        Guid sweepId = await CreateSweepAsync(client, $$"""
            { "base": { "datasetId": "{{dataset}}", "model": {{TinySpec}}, "hyperparameters": { "epochs": 1, "batchSize": 32 } },
              "searchSpace": [ { "path": "hyperparameters.learningRate", "choice": [0.05, 0.1] },
                               { "path": "layers.conv1.filters", "intUniform": { "min": 1, "max": 11 } } ],
              "parallelism": 4 }
            """);
        JsonElement sweep = await WaitForSweepAsync(client, sweepId, s => s.GetProperty("state").GetString() != "Running");
        Assert.Equal("Succeeded", sweep.GetProperty("state").GetString());
        Assert.Equal(22, sweep.GetProperty("trialList").GetArrayLength());

        IPage page = await browser.NewPageAsync(service.BaseUrl);
        var errors = new List<string>();
        page.PageError += (_, error) => errors.Add(error);
        await page.GotoAsync($"#/sweeps/{sweepId}");
        await Dashboard.WaitAsync(page, "p.sweep && p.sweep.trials.length === 20 && p.sweep.trials.every(t => t.state === 'done')");
        SweepProbe probe = await ProbeAsync(page);
        Assert.Equal(2, probe.LeftOut);
        await Expect(page.Locator("#drawn-note")).ToHaveTextAsync(
            "Curves of 20 of the 22 trials that have started: the best 20 and those training now (2 left out; the leaderboard has them all).");
        JsonElement board = await client.GetFromJsonAsync<JsonElement>($"sweeps/{sweepId}/leaderboard");
        int[] best20 = [.. board.GetProperty("ranked").EnumerateArray().Take(20).Select(r => r.GetProperty("trial").GetProperty("index").GetInt32()).Order()];
        Assert.Equal(best20, probe.Trials.Select(t => t.Index).Order());
        Assert.Equal(21, await page.Locator("#sweep-loss-chart .u-legend .u-series").CountAsync()); // x and 20 trials
        await Expect(page.Locator("#leaderboard tbody tr")).ToHaveCountAsync(22);

        await page.ClickAsync("#draw-all");
        await Dashboard.WaitAsync(page, "p.sweep.trials.length === 22 && p.sweep.trials.every(t => t.state === 'done')");
        Assert.Equal(0, (await ProbeAsync(page)).LeftOut);
        await Expect(page.Locator("#drawn-note")).ToHaveTextAsync("Curves of all 22 trials that have started.");
        Assert.Equal(23, await page.Locator("#sweep-loss-chart .u-legend .u-series").CountAsync());
        await Expect(page.Locator("#draw-all")).ToHaveTextAsync("Draw only the best 20 and those training");
        await page.ClickAsync("#draw-all");
        await Dashboard.WaitAsync(page, "p.sweep.trials.length === 20");
        await Expect(page.Locator("#draw-all")).ToHaveTextAsync("Draw all 22");
        Assert.True(errors.Count == 0, string.Join('\n', errors));
    }

    [Fact]
    public async Task ASweepThatDoesNotExistSaysSo()
    {
        await using LiveService service = LiveService.Start();
        IPage page = await browser.NewPageAsync(service.BaseUrl);
        var errors = new List<string>();
        page.PageError += (_, error) => errors.Add(error);
        foreach (string id in new[] { Guid.NewGuid().ToString(), "not-a-sweep", "%E0%A4%A", "..%2F..%2Fjobs" })
        {
            await page.GotoAsync("#/sweeps");
            await Expect(page.Locator("h1")).ToHaveTextAsync("Sweeps");
            await Expect(page.Locator("main [role=status]")).ToHaveTextAsync("No sweeps yet.");
            await page.GotoAsync($"#/sweeps/{id}");
            await Expect(page.Locator("h1")).ToHaveTextAsync("Sweep not found");
        }

        Assert.True(errors.Count == 0, string.Join('\n', errors));
    }

    private static async Task<SweepProbe> ProbeAsync(IPage page)
    {
        string json = await page.EvaluateAsync<string>("() => JSON.stringify(window.trainingDashboard.sweep)");
        return JsonSerializer.Deserialize<SweepProbe>(json, JsonSerializerOptions.Web) ?? throw new InvalidOperationException("the page shows no sweep");
    }

    private static async Task<Guid> ShapesAsync(HttpClient client)
    {
        HttpResponseMessage response = await client.PostAsJsonAsync("datasets/builtin",
            new { kind = "shapes", classes = 2, samples = 128, testSamples = 32, imageSize = 16, channels = 1, seed = 1 });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
    }

    private static async Task<Guid> CreateSweepAsync(HttpClient client, string json)
    {
        HttpResponseMessage response = await client.PostAsync(new Uri("sweeps", UriKind.Relative), new StringContent(json, Encoding.UTF8, "application/json"));
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
    }

    private async Task<JsonElement> WaitForSweepAsync(HttpClient client, Guid id, Func<JsonElement, bool> done)
    {
        DateTime deadline = DateTime.UtcNow.AddSeconds(120);
        while (true)
        {
            JsonElement sweep = await client.GetFromJsonAsync<JsonElement>($"sweeps/{id}");
            if (done(sweep))
            {
                return sweep;
            }

            if (DateTime.UtcNow > deadline)
            {
                output.WriteLine(sweep.ToString());
                Assert.Fail($"sweep {id} did not get there in 120 s");
            }

            await Task.Delay(100);
        }
    }
}
