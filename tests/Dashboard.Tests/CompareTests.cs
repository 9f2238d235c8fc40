using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace TrainingService.Dashboard.Tests;

[Collection(BrowserCollection.Name)]
public sealed class CompareTests(Browser browser)
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
