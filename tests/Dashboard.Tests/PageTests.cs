using Deque.AxeCore.Commons;
using Deque.AxeCore.Playwright;
using System.Net.Http.Json;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace TrainingService.Dashboard.Tests;

/// <summary>The jobs list, a phone-sized screen, the keyboard, and an accessibility scan of every page.</summary>
[Collection(BrowserCollection.Name)]
public sealed class PageTests(Browser browser)
{
    [Fact]
    public async Task TheJobsListShowsStateProgressAndFiltersByState()
    {
        await using LiveService service = LiveService.Start();
        Guid dataset = await Dashboard.ShapesDatasetAsync(service.Client);
        Guid cancelled = await Dashboard.LongJobAsync(service.Client, dataset);
        await Dashboard.WaitForStateAsync(service.Client, cancelled, "Running");
        await service.Client.PostAsync(new Uri($"jobs/{cancelled}/cancel", UriKind.Relative), null);
        await Dashboard.WaitForStateAsync(service.Client, cancelled, "Cancelled");
        Guid running = await Dashboard.LongJobAsync(service.Client, dataset);

        IPage page = await browser.NewPageAsync(service.BaseUrl);
        await page.GotoAsync("");
        await Expect(page.Locator("table.jobs tbody tr")).ToHaveCountAsync(2);
        ILocator row = page.Locator($"tr[data-job='{running}']");
        await Expect(row.Locator(".badge")).ToHaveTextAsync("Running");
        await Expect(row.Locator("td").Nth(4)).Not.ToHaveTextAsync("–"); // the latest loss, refreshed while it trains
        string before = (await row.Locator(".progress-cell .small").TextContentAsync())!;
        await Expect(row.Locator(".progress-cell .small")).Not.ToHaveTextAsync(before); // steps move on by themselves
        await Expect(row.Locator(".progress-cell .small")).ToContainTextAsync("ETA");
        await Browser.ScreenshotAsync(page, "jobs-list");

        await page.SelectOptionAsync("#state-filter", "Cancelled");
        await Expect(page.Locator("table.jobs tbody tr")).ToHaveCountAsync(1);
        await Expect(page.Locator($"tr[data-job='{cancelled}'] .badge")).ToHaveTextAsync("Cancelled");
        Assert.EndsWith("#/?state=Cancelled", page.Url, StringComparison.Ordinal);

        await page.SelectOptionAsync("#state-filter", "");
        await page.ClickAsync($"tr[data-job='{running}'] a");
        await Expect(page.Locator("#state")).ToHaveTextAsync("Running");
        await service.Client.PostAsync(new Uri($"jobs/{running}/cancel", UriKind.Relative), null);
        await Expect(page.Locator("#state")).ToHaveTextAsync("Cancelled");
    }

    [Fact]
    public async Task EveryPageFitsA390PixelWideScreen()
    {
        await using LiveService service = LiveService.Start();
        Guid job = await Dashboard.LongJobOnShapesAsync(service.Client);
        IPage page = await browser.NewPageAsync(service.BaseUrl, width: 390, height: 844);
        foreach ((string route, string name, string ready) in new[]
        {
            ("", "phone-jobs", "table.jobs tbody tr"),
            ("#/new", "phone-new-job", "table.layers tbody tr"),
            ($"#/jobs/{job}", "phone-job", "#layers-h ~ .charts .uplot"),
        })
        {
            await page.GotoAsync(route);
            await page.Locator(ready).First.WaitForAsync();
            int width = await page.EvaluateAsync<int>("() => document.documentElement.scrollWidth");
            Assert.True(width <= 390, $"{name}: the page is {width} px wide on a 390 px screen");
            await Browser.ScreenshotAsync(page, name);
        }

        await service.Client.PostAsync(new Uri($"jobs/{job}/cancel", UriKind.Relative), null);
        await Expect(page.Locator("#state")).ToHaveTextAsync("Cancelled");
    }

    [Fact]
    public async Task AJobCanBePausedAndResumedWithTheKeyboardAlone()
    {
        await using LiveService service = LiveService.Start();
        Guid job = await Dashboard.LongJobOnShapesAsync(service.Client);
        IPage page = await browser.NewPageAsync(service.BaseUrl);
        await page.GotoAsync($"#/jobs/{job}");
        await Dashboard.WaitAsync(page, "p.job && p.job.state === 'Running'");

        await TabToAsync(page, "pause");
        await page.Keyboard.PressAsync("Enter");
        await Expect(page.Locator("#state")).ToHaveTextAsync("Paused");
        await TabToAsync(page, "resume");
        await page.Keyboard.PressAsync("Space");
        await Expect(page.Locator("#state")).ToHaveTextAsync("Running");
        await Browser.ScreenshotAsync(page, "keyboard-resumed");

        // In the spec editor Tab indents; Escape then Tab leaves it.
        await page.GotoAsync("#/new");
        await page.Locator("table.layers tbody tr").First.WaitForAsync();
        await page.FocusAsync("#spec");
        await page.Keyboard.PressAsync("Tab");
        Assert.Equal("spec", await page.EvaluateAsync<string>("() => document.activeElement.id"));
        await page.Keyboard.PressAsync("Escape");
        await page.Keyboard.PressAsync("Tab");
        Assert.NotEqual("spec", await page.EvaluateAsync<string>("() => document.activeElement.id"));
        await service.Client.PostAsync(new Uri($"jobs/{job}/cancel", UriKind.Relative), null);
    }

    [Fact]
    public async Task NoPageHasSeriousAccessibilityViolations()
    {
        await using LiveService service = LiveService.Start();
        Guid job = await Dashboard.LongJobOnShapesAsync(service.Client);
        IPage signIn = await browser.NewPageAsync(service.BaseUrl, signIn: false);
        await signIn.GotoAsync("");
        await signIn.Locator("#signin-key").WaitForAsync();
        await AssertNoSeriousViolationsAsync(signIn, "sign-in");

        IPage page = await browser.NewPageAsync(service.BaseUrl);
        foreach ((string route, string name, string ready) in new[]
        {
            ("", "jobs", "table.jobs tbody tr"),
            ("#/new", "new-job", "table.layers tbody tr"),
            ("#/keys", "keys", "#keys tbody tr"),
            ($"#/jobs/{job}", "job", "#layers-h ~ .charts .uplot"),
        })
        {
            await page.GotoAsync(route);
            await page.Locator(ready).First.WaitForAsync();
            if (name == "job")
            {
                await page.ClickAsync("#share"); // the share panel and its list of links
                await page.ClickAsync("#share-create");
                await page.Locator("#shares tbody tr[data-share]").WaitForAsync();
            }

            await AssertNoSeriousViolationsAsync(page, name);
        }

        IPage viewer = await browser.NewPageAsync(service.BaseUrl, signIn: false);
        await viewer.GotoAsync(await page.Locator("#share-url").InputValueAsync());
        await viewer.Locator("#layers-h ~ .charts .uplot").First.WaitForAsync();
        await AssertNoSeriousViolationsAsync(viewer, "shared-job");

        await service.Client.PostAsync(new Uri($"jobs/{job}/cancel", UriKind.Relative), null);
    }

    [Fact]
    public async Task AlertsAppearAsTheyArriveWithTheirSuggestion()
    {
        await using LiveService service = LiveService.Start();
        Guid dataset = await Dashboard.ShapesDatasetAsync(service.Client);
        // Biases of 30 before the classifier: the first loss is far from ln 4 (the initial-loss rule).
        HttpResponseMessage created = await service.Client.PostAsJsonAsync("jobs", new
        {
            datasetId = dataset,
            model = new
            {
                input = new { channels = 1, height = 28, width = 28 },
                layers = new object[] { new { kind = "flatten" }, new { kind = "linear", units = 32, biasInit = 30 }, new { kind = "relu" }, new { kind = "linear", units = 4 } },
            },
            hyperparameters = new { epochs = 3, learningRate = 0.0001 },
        });
        Guid job = (await created.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>()).GetProperty("id").GetGuid();
        IPage page = await browser.NewPageAsync(service.BaseUrl);
        await page.GotoAsync($"#/jobs/{job}");
        ILocator alert = page.Locator("#notices li.warning", new() { HasText = "initial-loss" });
        await Expect(alert).ToContainTextAsync("ln(4)");
        await Expect(alert).ToContainTextAsync("smaller"); // the suggestion
        await Browser.ScreenshotAsync(page, "alert");
        await Dashboard.WaitForStateAsync(service.Client, job, "Succeeded");
    }

    [Fact]
    public async Task FiltersAndFeatureMapsAppearForEachConvolutionLayerAndFollowTheChosenProbe()
    {
        await using LiveService service = LiveService.Start();
        Guid job = await Dashboard.LongJobOnShapesAsync(service.Client);
        IPage page = await browser.NewPageAsync(service.BaseUrl);
        await page.GotoAsync($"#/jobs/{job}");
        await Dashboard.WaitAsync(page, "p.job && p.job.state === 'Running'");

        await page.ClickAsync("#snapshot"); // mid-epoch, on request
        ILocator filters = page.Locator("#visuals img.filters");
        await Expect(filters).ToHaveCountAsync(1); // the tiny CNN has one convolution layer
        await Expect(page.Locator("#visuals-status")).ToContainTextAsync("Taken at step");
        Assert.True(await Dashboard.PictureWidthAsync(page, "#visuals img.filters") > 0);
        await Expect(page.Locator("#probes button")).ToHaveCountAsync(16);

        await page.Locator("#probes button").Nth(5).ClickAsync();
        await Expect(page.Locator("#visuals img.maps")).ToHaveAttributeAsync("data-src", new System.Text.RegularExpressions.Regex("sample=5&"));
        Assert.True(await Dashboard.PictureWidthAsync(page, "#visuals img.maps") > 0);
        await Browser.ScreenshotAsync(page, "what-the-network-sees");
        await service.Client.PostAsync(new Uri($"jobs/{job}/cancel", UriKind.Relative), null);
        await Expect(page.Locator("#snapshot")).ToBeDisabledAsync();
    }

    [Fact]
    public async Task AnImageDroppedOnAFinishedJobIsClassifiedWithItsFeatureMaps()
    {
        await using LiveService service = LiveService.Start();
        Guid dataset = await Dashboard.ShapesDatasetAsync(service.Client);
        HttpResponseMessage created = await service.Client.PostAsJsonAsync("jobs", new { datasetId = dataset, hyperparameters = new { epochs = 2 } });
        Guid job = (await created.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>()).GetProperty("id").GetGuid();
        await Dashboard.WaitForStateAsync(service.Client, job, "Succeeded");
        byte[] png = await service.Client.GetByteArrayAsync($"datasets/{dataset}/samples/0.png?scale=4");

        IPage page = await browser.NewPageAsync(service.BaseUrl);
        await page.GotoAsync($"#/jobs/{job}");
        await page.SetInputFilesAsync("#try-file", new FilePayload { Name = "sample0.png", MimeType = "image/png", Buffer = png });
        await Expect(page.Locator("#try-top tbody tr")).ToHaveCountAsync(3);
        await Expect(page.Locator("#try-top caption")).ToContainTextAsync("final");
        await Expect(page.Locator("#try-result figure")).ToHaveCountAsync(2); // LeNet-5: conv1, conv2
        await Browser.ScreenshotAsync(page, "try-it");
    }

    internal static async Task AssertNoSeriousViolationsAsync(IPage page, string name)
    {
        AxeResult result = await page.RunAxe();
        await Browser.ScreenshotAsync(page, $"axe-{name}");
        string[] serious = [.. result.Violations.Where(v => v.Impact is "serious" or "critical")
            .Select(v => $"{v.Id} ({v.Impact}): {v.Help} — {string.Join("; ", v.Nodes.Take(3).Select(n => n.Html))}")];
        Assert.True(serious.Length == 0, $"{name}:\n{string.Join("\n", serious)}");
    }

    /// <summary>Presses Tab until the element with the id has focus (at most 60 times).</summary>
    private static async Task TabToAsync(IPage page, string id)
    {
        for (int i = 0; i < 60; i++)
        {
            await page.Keyboard.PressAsync("Tab");
            if (await page.EvaluateAsync<string>("() => document.activeElement.id") == id)
            {
                return;
            }
        }

        Assert.Fail($"#{id} is not reachable with Tab");
    }
}
