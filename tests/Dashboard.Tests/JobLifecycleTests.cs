using System.Net;
using System.Net.Http.Json;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace TrainingService.Dashboard.Tests;

[Collection(BrowserCollection.Name)]
public sealed class JobLifecycleTests(Browser browser)
{
    [Fact]
    public async Task ANewJobMadeInTheUiStreamsLiveAndPausesResumesAndCancels()
    {
        await using LiveService service = LiveService.Start();
        IPage page = await browser.NewPageAsync(service.BaseUrl);
        await page.GotoAsync("#/new");

        // Generate a dataset from the page: its samples and class counts appear.
        await page.ClickAsync("summary:has-text('Generate')");
        await page.FillAsync("#gen-samples", "1000");
        await page.ClickAsync("#generate");
        await Expect(page.Locator("#dataset option")).ToHaveCountAsync(1);
        await Expect(page.Locator(".thumbs img")).ToHaveCountAsync(16);
        await Expect(page.Locator("table.counts tbody tr")).ToHaveCountAsync(4);
        Assert.Equal(28, await Dashboard.PictureWidthAsync(page, ".thumbs img"));

        // Pick the tiny preset: the per-layer table follows from /models/validate.
        await page.ClickAsync("[data-preset=tiny]");
        await Expect(page.Locator("#spec-status")).ToContainTextAsync("Valid:");
        await Expect(page.Locator("table.layers tbody tr")).ToHaveCountAsync(8);
        await Expect(page.Locator("table.layers tbody tr").First).ToContainTextAsync("8×28×28");

        await page.FillAsync("#hp-epochs", "300");
        await page.FillAsync("#hp-learningRate", "0.05");
        await page.ClickAsync("#start");
        await page.WaitForSelectorAsync("#state, ul.errors li"); // the job page, or the reasons it could not start
        Assert.Equal([], await page.Locator("ul.errors li").AllTextContentsAsync());
        Assert.Contains("#/jobs/", page.Url, StringComparison.Ordinal);

        // Loss points arrive live (drawn by the loss chart) and the step counter rises.
        await Dashboard.WaitAsync(page, "p.job && p.job.state === 'Running' && p.job.steps >= 20 && p.latencies.length >= 5");
        long before = long.Parse((await page.TextContentAsync("#step"))!.Replace(",", ""), System.Globalization.CultureInfo.InvariantCulture);
        await Dashboard.WaitAsync(page, $"p.job.lastStep > {before + 10}");
        Assert.True(await page.Locator("#loss-chart canvas").CountAsync() > 0);
        await Expect(page.Locator("#link")).ToContainTextAsync("live");
        await Browser.ScreenshotAsync(page, "job-running");

        await page.ClickAsync("#pause");
        await Expect(page.Locator("#state")).ToHaveTextAsync("Paused");
        await Expect(page.Locator("#resume")).ToBeEnabledAsync();
        long paused = (await Dashboard.ProbeAsync(page)).LastStep;
        await Task.Delay(1000);
        Assert.Equal(paused, (await Dashboard.ProbeAsync(page)).LastStep);
        await Browser.ScreenshotAsync(page, "job-paused");

        await page.ClickAsync("#resume");
        await Expect(page.Locator("#state")).ToHaveTextAsync("Running");
        await Dashboard.WaitAsync(page, $"p.job.lastStep > {paused + 10}");

        await page.ClickAsync("#cancel"); // confirm() is accepted by the test browser
        await Expect(page.Locator("#state")).ToHaveTextAsync("Cancelled");
        await Expect(page.Locator("#pause")).ToBeDisabledAsync();
        await Expect(page.Locator("#cancel")).ToBeDisabledAsync();

        // Every step exactly once, every event in seq order, as many as the server's history holds.
        await Dashboard.AssertEveryEventOnceAsync(page, service.Client, Guid.Parse((await Dashboard.ProbeAsync(page)).Id));
        await Browser.ScreenshotAsync(page, "job-cancelled");
    }

    [Fact]
    public async Task SpecErrorsArePinnedToTheirLayerAndBadHyperparametersToTheirField()
    {
        await using LiveService service = LiveService.Start();
        await Dashboard.ShapesDatasetAsync(service.Client);
        HttpResponseMessage saved = await service.Client.PostAsJsonAsync("models", new
        {
            name = "my small net",
            spec = new { name = "mine", input = new { channels = 1, height = 28, width = 28 }, layers = new object[] { new { kind = "flatten" }, new { kind = "linear", units = 4 } } },
        });
        Assert.Equal(HttpStatusCode.Created, saved.StatusCode);
        IPage page = await browser.NewPageAsync(service.BaseUrl);
        await page.GotoAsync("#/new");
        await Expect(page.Locator("#spec-status")).ToContainTextAsync("Valid:"); // LeNet-5 sized to the dataset

        await page.ClickAsync("[data-model]:has-text('my small net')"); // a model saved with POST /models
        await Expect(page.Locator("#spec-status")).ToContainTextAsync("3,140 parameters");
        await Expect(page.Locator("table.layers tbody tr")).ToHaveCountAsync(2);

        const string tooBigKernel = """
            { "input": { "channels": 1, "height": 28, "width": 28 },
              "layers": [ { "kind": "conv2d", "filters": 6, "kernel": 5 }, { "kind": "relu" }, { "kind": "maxpool2d", "kernel": 2 },
                          { "kind": "conv2d", "filters": 16, "kernel": 20 }, { "kind": "flatten" }, { "kind": "linear", "units": 4 } ] }
            """;
        await page.FillAsync("#spec", tooBigKernel);
        await Expect(page.Locator("#spec-status")).ToContainTextAsync("error");
        await Expect(page.Locator("table.layers tr[data-layer='3']")).ToHaveClassAsync("has-error");
        await Expect(page.Locator("table.layers tr.issue.error").First).ToContainTextAsync("layers[3]");
        await Expect(page.Locator("#spec")).ToHaveAttributeAsync("aria-invalid", "true");
        await Browser.ScreenshotAsync(page, "spec-error");

        await page.FillAsync("#spec", "{ \"layers\": [ ");
        await Expect(page.Locator("#spec-status")).ToContainTextAsync("Not JSON");

        // A graph preset: the table says what each merge takes.
        await page.ClickAsync("[data-preset=resnet8]");
        await Expect(page.Locator("#spec-status")).ToContainTextAsync("Valid:");
        await Expect(page.Locator("table.layers tr", new() { HasText = "block1_add" })).ToContainTextAsync("add ← block1_bn2 + stem_relu");
        await Expect(page.Locator("table.layers tr", new() { HasText = "block2_shortcut" }).First).ToContainTextAsync("conv2d ← block1_relu2");
        await Browser.ScreenshotAsync(page, "graph-preset");

        await page.ClickAsync("[data-preset=tiny]");
        await Expect(page.Locator("#spec-status")).ToContainTextAsync("Valid:");
        await page.FillAsync("#hp-batchSize", "0");
        await page.ClickAsync("#start");
        await Expect(page.Locator("ul.errors")).ToContainTextAsync("hyperparameters.batchSize");
        await Expect(page.Locator("#hp-batchSize")).ToHaveAttributeAsync("aria-invalid", "true");
        Assert.EndsWith("#/new", page.Url, StringComparison.Ordinal);
        await Browser.ScreenshotAsync(page, "hyperparameter-error");
    }

    [Fact]
    public async Task ALearningRateChangedOnThePageIsRecordedAndAJobCanBeFinishedEarly()
    {
        await using LiveService service = LiveService.Start();
        Guid job = await Dashboard.LongJobOnShapesAsync(service.Client);
        IPage page = await browser.NewPageAsync(service.BaseUrl);
        await page.GotoAsync($"#/jobs/{job}");
        await Dashboard.WaitAsync(page, "p.job && p.job.state === 'Running' && p.job.steps >= 5");

        await page.ClickAsync("summary:has-text('Steer')");
        await page.FillAsync("#steer-lr", "50");
        await page.ClickAsync("#steer-apply");
        await Expect(page.Locator("#steer-status")).ToContainTextAsync("learningRate must be above 0 and at most 10");
        await Expect(page.Locator("#steer-lr")).ToHaveAttributeAsync("aria-invalid", "true");

        await page.FillAsync("#steer-lr", "0.001");
        await page.FillAsync("#steer-reason", "too noisy");
        await page.ClickAsync("#steer-apply");
        await Expect(page.Locator("#steer-status")).ToContainTextAsync("Applied from the next step: learning rate 0.001");
        ILocator notice = page.Locator("#notices li", new() { HasText = "hyperparameters" });
        await Expect(notice).ToContainTextAsync("learning rate 0.001");
        await Expect(notice).ToContainTextAsync("too noisy");
        await Browser.ScreenshotAsync(page, "steered");

        await page.ClickAsync("#finish"); // confirm() is accepted
        await Expect(page.Locator("#state")).ToHaveTextAsync("Succeeded");
        await Expect(page.Locator("#weights")).ToBeVisibleAsync();
        IDownload download = await page.RunAndWaitForDownloadAsync(() => page.ClickAsync("#weights")); // fetched with the key
        Assert.Equal($"job-{job:N}.dat", download.SuggestedFilename);
        Assert.True(new FileInfo((await download.PathAsync())!).Length > 0);
        IDownload history = await page.RunAndWaitForDownloadAsync(() => page.ClickAsync("#history-csv"));
        Assert.Equal($"job-{job:N}-history.csv", history.SuggestedFilename);
        Assert.StartsWith("step,epoch,time,tag,value\n1,1,", await File.ReadAllTextAsync((await history.PathAsync())!), StringComparison.Ordinal);
        IDownload events = await page.RunAndWaitForDownloadAsync(() => page.ClickAsync("#history-tensorboard"));
        Assert.StartsWith("events.out.tfevents.", events.SuggestedFilename, StringComparison.Ordinal);
        await Expect(page.Locator("#notices")).ToContainTextAsync("finished early");
    }

    [Fact]
    public async Task AugmentationIsOffUntilAskedPreviewedAsItsSettingsChangeAndShownOnTheJob()
    {
        await using LiveService service = LiveService.Start();
        await Dashboard.ShapesDatasetAsync(service.Client);
        IPage page = await browser.NewPageAsync(service.BaseUrl);
        await page.GotoAsync("#/new");
        await page.ClickAsync("[data-preset=tiny]");
        await Expect(page.Locator("#spec-status")).ToContainTextAsync("Valid:");
        await Expect(page.Locator("#aug-on")).Not.ToBeCheckedAsync();
        await Expect(page.Locator("#aug-fields")).ToBeHiddenAsync();

        // On: four training images, each followed by its six first epochs as the server draws them for this seed.
        await page.CheckAsync("#aug-on");
        await Expect(page.Locator("#aug-preview .aug-row")).ToHaveCountAsync(4);
        await Expect(page.Locator("#aug-preview .aug-row").First.Locator("img")).ToHaveCountAsync(7);
        string[] cropAndFlip = await FirstRowAsync(page);
        Assert.True(cropAndFlip.Skip(1).Distinct().Count() >= 3, "the epochs' variants differ");
        Assert.DoesNotContain(cropAndFlip[0], cropAndFlip.Skip(1));

        await page.FillAsync("#aug-translate", "3");
        await Expect(page.Locator("#aug-preview .aug-row img").Nth(1)).ToHaveAttributeAsync("data-src", new Regex("translate=3"));
        Assert.NotEqual(cropAndFlip, await FirstRowAsync(page));
        await page.SetViewportSizeAsync(390, 844);
        Assert.True(await page.EvaluateAsync<int>("() => document.documentElement.scrollWidth") <= 390, "the preview fits a phone");
        await Browser.ScreenshotAsync(page, "augmentation-preview");
        await page.SetViewportSizeAsync(1280, 900);

        // Out of range: the preview says why, and so does starting.
        await page.FillAsync("#aug-translate", "99");
        await Expect(page.Locator("#aug-status")).ToContainTextAsync("translate must be from 1 to 7");
        await Expect(page.Locator("#aug-translate")).ToHaveAttributeAsync("aria-invalid", "true");
        await page.ClickAsync("#start");
        await Expect(page.Locator("ul.errors")).ToContainTextAsync("hyperparameters.augmentation.translate");

        await page.FillAsync("#aug-translate", "2");
        await page.FillAsync("#hp-epochs", "1");
        await page.ClickAsync("#start");
        await page.WaitForSelectorAsync("#state, ul.errors li");
        Assert.Equal([], await page.Locator("ul.errors li").AllTextContentsAsync());
        await Expect(page.Locator("#hyperparameters")).ToContainTextAsync("augmentation: random crop (padding 2), horizontal flip, translate ±2");
        await Expect(page.Locator("#state")).ToHaveTextAsync("Succeeded", new() { Timeout = 60_000 });
        await Browser.ScreenshotAsync(page, "augmented-job");
    }

    /// <summary>The first preview row's pixels, as data URLs, once every image in it has loaded.</summary>
    private static async Task<string[]> FirstRowAsync(IPage page)
    {
        await page.WaitForFunctionAsync("() => [...document.querySelectorAll('#aug-preview .aug-row:first-child img')].every(i => i.complete && i.naturalWidth === 28)");
        return await page.EvaluateAsync<string[]>("""
            () => [...document.querySelectorAll('#aug-preview .aug-row:first-child img')].map(img => {
              const canvas = document.createElement('canvas');
              canvas.width = img.naturalWidth;
              canvas.height = img.naturalHeight;
              canvas.getContext('2d').drawImage(img, 0, 0);
              return canvas.toDataURL();
            })
            """);
    }

    [Fact]
    public async Task ARangeTestStartedFromThePagePlotsLossAgainstLearningRateAndSuggestsOne()
    {
        await using LiveService service = LiveService.Start();
        await Dashboard.ShapesDatasetAsync(service.Client);
        IPage page = await browser.NewPageAsync(service.BaseUrl);
        await page.GotoAsync("#/new");
        await page.ClickAsync("[data-preset=tiny]");
        await Expect(page.Locator("#spec-status")).ToContainTextAsync("Valid:");
        await page.SelectOptionAsync("#mode", "learningRateRangeTest");
        await page.FillAsync("#range-min", "0.0001");
        await page.FillAsync("#range-max", "10");
        await page.FillAsync("#range-steps", "120");
        await page.ClickAsync("#start");
        await page.WaitForSelectorAsync("#state, ul.errors li");
        Assert.Equal([], await page.Locator("ul.errors li").AllTextContentsAsync());

        await Expect(page.Locator("#state")).ToHaveTextAsync("Succeeded", new() { Timeout = 60_000 });
        await Expect(page.Locator("#range-chart canvas").First).ToBeVisibleAsync();
        await Expect(page.Locator("#notices li", new() { HasText = "learningRateRangeTest" })).ToContainTextAsync("learning rate");
        await Expect(page.Locator("#weights")).ToBeHiddenAsync(); // a range test keeps no model
        await Browser.ScreenshotAsync(page, "range-test");
    }
}
