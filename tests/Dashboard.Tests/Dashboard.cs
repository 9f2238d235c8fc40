using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Playwright;

namespace TrainingService.Dashboard.Tests;

/// <summary>What the tests read from a page and do through the REST API.</summary>
internal static class Dashboard
{
    /// <summary>The folder holding TrainingService.sln, found upwards from the test binaries.</summary>
    public static string RepositoryRoot { get; } = FindRepositoryRoot();

    private static string FindRepositoryRoot()
    {
        DirectoryInfo? dir = new(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "TrainingService.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException($"TrainingService.sln not found above {AppContext.BaseDirectory}");
    }

    /// <summary>window.trainingDashboard.job: the followed job as the page holds it.</summary>
    public sealed record JobProbe(string Id, long Seq, long Steps, long LastStep, long Gaps, long RepeatedSteps, string State, string Link);

    public static async Task<JobProbe> ProbeAsync(IPage page) =>
        JsonSerializer.Deserialize<JobProbe>(await page.EvaluateAsync<string>("() => JSON.stringify(window.trainingDashboard.job)"), JsonSerializerOptions.Web)
        ?? throw new InvalidOperationException("the page follows no job");

    /// <summary>Waits until a JavaScript condition over `p` (window.trainingDashboard) holds.</summary>
    public static Task WaitAsync(IPage page, string condition, int timeoutMs = 60_000) =>
        page.WaitForFunctionAsync($"() => {{ const p = window.trainingDashboard; return {condition}; }}", null, new() { Timeout = timeoutMs, PollingInterval = 50 });

    /// <summary>
    /// Waits until the first image matching the selector shows its picture and returns its natural width. The dashboard
    /// fetches pictures with its credential and shows them through object URLs, so an img element is on the page before
    /// its picture is (and a newer snapshot may replace it meanwhile: the selector is asked again each time).
    /// </summary>
    public static async Task<int> PictureWidthAsync(IPage page, string selector)
    {
        IJSHandle width = await page.WaitForFunctionAsync("""
            selector => {
              const img = document.querySelector(selector);
              if (img?.dataset.error) throw new Error(`${selector}: ${img.dataset.error}`);
              return img && img.complete && img.naturalWidth > 0 ? img.naturalWidth : false;
            }
            """, selector, new() { PollingInterval = 50 });
        return await width.JsonValueAsync<int>();
    }

    public static async Task<Guid> ShapesDatasetAsync(HttpClient client, int samples = 1000, int classes = 4)
    {
        HttpResponseMessage response = await client.PostAsJsonAsync("datasets/builtin", new { classes, samples, testSamples = 200, imageSize = 28 });
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
    }

    /// <summary>A tiny CNN on the dataset for many epochs: it runs until a test stops it.</summary>
    public static async Task<Guid> LongJobAsync(HttpClient client, Guid datasetId)
    {
        var body = new
        {
            datasetId,
            model = new
            {
                name = "tiny",
                input = new { channels = 1, height = 28, width = 28 },
                layers = new object[]
                {
                    new { kind = "conv2d", filters = 8, kernel = 3, padding = "same" }, new { kind = "relu" }, new { kind = "maxpool2d", kernel = 2 },
                    new { kind = "flatten" }, new { kind = "linear", units = 4 },
                },
            },
            hyperparameters = new { epochs = 500, batchSize = 32, learningRate = 0.02 },
            monitoring = new { statsEvery = 10 },
        };
        HttpResponseMessage response = await client.PostAsJsonAsync("jobs", body);
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
    }

    /// <summary>A shapes dataset and a long job on it (see <see cref="LongJobAsync"/>).</summary>
    public static async Task<Guid> LongJobOnShapesAsync(HttpClient client) => await LongJobAsync(client, await ShapesDatasetAsync(client));

    /// <summary>
    /// The page holds the job's history exactly: every event once, in seq order, as many as the server's history
    /// (read after the job has finished, so the two can be compared), and every step from 1 to the last once.
    /// </summary>
    public static async Task<(JobProbe Probe, List<JsonElement> History)> AssertEveryEventOnceAsync(IPage page, HttpClient client, Guid job)
    {
        JobProbe probe = await ProbeAsync(page);
        List<JsonElement> history = await HistoryAsync(client, job);
        Assert.Equal(0, probe.Gaps);
        Assert.Equal(0, probe.RepeatedSteps);
        Assert.Equal(probe.LastStep, probe.Steps);
        Assert.Equal(history.Count, probe.Seq);
        Assert.Equal(history.Count(e => e.GetProperty("kind").GetString() == "step"), probe.Steps);
        return (probe, history);
    }

    public static async Task<JsonElement> JobAsync(HttpClient client, Guid id) =>
        await client.GetFromJsonAsync<JsonElement>($"jobs/{id}");

    /// <summary>Every event of a job from the REST history.</summary>
    public static async Task<List<JsonElement>> HistoryAsync(HttpClient client, Guid id)
    {
        var all = new List<JsonElement>();
        while (true)
        {
            JsonElement page = await client.GetFromJsonAsync<JsonElement>($"jobs/{id}/events?afterSeq={all.Count}&limit=10000");
            if (page.GetArrayLength() == 0)
            {
                return all;
            }

            all.AddRange(page.EnumerateArray());
        }
    }

    public static async Task WaitForStateAsync(HttpClient client, Guid id, string state)
    {
        for (int i = 0; i < 600; i++)
        {
            if ((await JobAsync(client, id)).GetProperty("state").GetString() == state)
            {
                return;
            }

            await Task.Delay(100);
        }

        Assert.Fail($"job {id} never reached {state}");
    }
}
