using System.Diagnostics;
using Xunit.Abstractions;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace TrainingService.Dashboard.Tests;

[Collection(BrowserCollection.Name)]
public sealed class CompareTests(Browser browser, ITestOutputHelper output)
{
    [Fact]
    public async Task JobsTickedInTheListOpenSideBySideWithTheSettingsThatDiffer()
    {
        await using LiveService service = LiveService.Start();
        Guid dataset = await Dashboard.ShapesDatasetAsync(service.Client, samples: 400);
        Guid slow = await ShortJobAsync(service.Client, dataset, 0.01);
        Guid fast = await ShortJobAsync(service.Client, dataset, 0.1);
        await Dashboard.WaitForStateAsync(service.Client, slow, "Succeeded");
        await Dashboard.WaitForStateAsync(service.Client, fast, "Succeeded");

        IPage page = await browser.NewPageAsync(service.BaseUrl);
        await page.GotoAsync("#/");
        await Expect(page.Locator("#compare-picked")).ToHaveAttributeAsync("aria-disabled", "true");
        await page.CheckAsync($"[data-compare='{slow}']");
        await page.CheckAsync($"[data-compare='{fast}']");
        await Expect(page.Locator("#compare-picked")).ToHaveTextAsync("Compare 2");
        await page.ClickAsync("#compare-picked");

        await Expect(page.Locator("h1")).ToHaveTextAsync("Compare 2 jobs");
        ILocator learningRate = page.Locator("#compare-settings tr", new() { HasText = "hyperparameters.learningRate" });
        await Expect(learningRate).ToContainTextAsync("0.01");
        await Expect(learningRate).ToContainTextAsync("0.1");
        await Expect(page.Locator("#compare-settings tr", new() { HasText = "hyperparameters.batchSize" })).ToHaveCountAsync(0);
        await page.WaitForFunctionAsync("() => window.compareDrawnMs !== undefined");
        Assert.True(await page.Locator("#compare-chart canvas").CountAsync() > 0);

        // Another metric, by epoch: drawn again.
        await page.EvaluateAsync("() => { window.compareDrawnMs = undefined; }");
        await page.SelectOptionAsync("#compare-metric", "epoch/validation_accuracy");
        await page.SelectOptionAsync("#compare-axis", "epoch");
        await page.WaitForFunctionAsync("() => window.compareDrawnMs !== undefined");
        await Browser.ScreenshotAsync(page, "compare");
    }

    [Fact]
    public async Task TwentyRunsOfTwentyThousandStepsDrawOverlaidAndZoom()
    {
        await using LiveService service = LiveService.Start();
        Guid dataset = await Dashboard.ShapesDatasetAsync(service.Client, samples: 200);
        var jobs = new List<Guid>();
        for (int i = 0; i < 20; i++)
        {
            Guid job = await Dashboard.LongJobAsync(service.Client, dataset);
            await service.Client.PostAsync(new Uri($"jobs/{job}/cancel", UriKind.Relative), null);
            jobs.Add(job);
        }

        foreach (Guid job in jobs)
        {
            await Dashboard.WaitForStateAsync(service.Client, job, "Cancelled");
            await StreamingTests.ReplaceHistoryAsync(service, job, steps: 20_000, statsEvery: 10);
        }

        // How fast is the benchmark's and the issue's figure (< 2 s), printed here and in docs/benchmarks.md; this
        // checks that every run is drawn and that a zoom redraws promptly, with room for a slow machine.
        IPage page = await browser.NewPageAsync(service.BaseUrl);
        await page.GotoAsync("");
        var clock = Stopwatch.StartNew();
        await page.GotoAsync($"#/compare?ids={string.Join(',', jobs)}");
        await page.WaitForFunctionAsync("() => window.compareOpenedMs !== undefined", null, new() { Timeout = 60_000 });
        double wall = clock.Elapsed.TotalMilliseconds;
        double opened = await page.EvaluateAsync<double>("() => window.compareOpenedMs");
        output.WriteLine($"20 runs × 20,000 steps: drawn {opened:F0} ms after opening the page ({wall:F0} ms wall in the test)");
        output.WriteLine($"in the page (ms): {await page.EvaluateAsync<string>("() => JSON.stringify({ ...window.trainingDashboard.compare, drawMs: window.trainingDashboard.timings.drawMs })")}");
        Assert.Equal(21, await page.Locator("#compare-chart .u-legend .u-series").CountAsync()); // x and one per run
        await Browser.ScreenshotAsync(page, "compare-twenty");

        ILocator plot = page.Locator("#compare-chart .u-over");
        LocatorBoundingBoxResult box = (await plot.BoundingBoxAsync())!;
        await page.EvaluateAsync("() => { window.compareZoomed = false; }");
        var zoom = Stopwatch.StartNew();
        await page.Mouse.MoveAsync(box.X + box.Width * 0.4f, box.Y + box.Height / 2);
        await page.Mouse.DownAsync();
        await page.Mouse.MoveAsync(box.X + box.Width * 0.6f, box.Y + box.Height / 2, new() { Steps = 4 });
        await page.Mouse.UpAsync();
        string ticks = await page.Locator("#compare-chart .u-axis").First.InnerTextAsync();
        output.WriteLine($"zoom to 40–60%: {zoom.ElapsedMilliseconds} ms");
        Assert.True(zoom.ElapsedMilliseconds < 1000, $"zoom took {zoom.ElapsedMilliseconds} ms");
        Assert.DoesNotContain("20,000", ticks, StringComparison.Ordinal);

        // The histories came downsampled to the chart's width; the zoom asks for its range again, at the same resolution.
        await page.WaitForFunctionAsync("() => window.trainingDashboard.compare.zoomDetailMs !== undefined", null, new() { Timeout = 30_000 });
        int[] points = await page.EvaluateAsync<int[]>("() => [window.trainingDashboard.compare.points, window.trainingDashboard.compare.overviewPoints]");
        output.WriteLine($"zoom's detail in {await page.EvaluateAsync<double>("() => window.trainingDashboard.compare.zoomDetailMs"):F0} ms; "
            + $"{points[1]:N0} x values drawn from before the zoom, {points[0]:N0} after");
        Assert.InRange(points[1], 1000, 10_000); // downsampled: not the 20,000 steps of each run (measured 2,224)
        Assert.True(points[0] > points[1], $"the zoom's detail added no point ({points[1]} before, {points[0]} after)");
        Assert.True(opened < 10_000, $"drawn {opened:F0} ms after opening");
    }

    private static async Task<Guid> ShortJobAsync(HttpClient client, Guid dataset, double learningRate)
    {
        var body = new
        {
            datasetId = dataset,
            model = new
            {
                input = new { channels = 1, height = 28, width = 28 },
                layers = new object[] { new { kind = "conv2d", filters = 4, kernel = 3 }, new { kind = "relu" }, new { kind = "maxpool2d", kernel = 2 }, new { kind = "flatten" }, new { kind = "linear", units = 4 } },
            },
            hyperparameters = new { epochs = 2, batchSize = 32, learningRate, validationFraction = 0.25 },
        };
        HttpResponseMessage response = await client.PostAsJsonAsync("jobs", body);
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
    }
}
