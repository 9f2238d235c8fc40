using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using SkiaSharp;
using TrainingService.Api.Tests.Jobs;
using TrainingService.Api.Tests.Service;
using TrainingService.Contracts.Streaming;

namespace TrainingService.Api.Tests.Outputs;

/// <summary>What the network sees: filters and feature maps as PNG, taken at every epoch's end and on request.</summary>
public sealed class VisualsTests
{
    private const string LeNetLike = """
        { "input": { "channels": 3, "height": 16, "width": 16 },
          "layers": [ { "kind": "conv2d", "filters": 6, "kernel": 5, "padding": 2 }, { "kind": "relu" }, { "kind": "maxpool2d", "kernel": 2 },
                      { "kind": "conv2d", "filters": 8, "kernel": 3 }, { "kind": "relu" }, { "kind": "flatten" }, { "kind": "linear", "units": 2 } ] }
        """;

    [Fact]
    public async Task EveryEpochLeavesFiltersAndFeatureMapsOfEveryConvolutionLayer()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        HttpResponseMessage created = await client.PostAsJsonAsync("/datasets/builtin", new { classes = 2, samples = 256, testSamples = 32, imageSize = 16, channels = 3 });
        Guid dataset = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
        (_, JsonElement job) = await JobHarness.PostJobAsync(client, $$"""{ "datasetId": "{{dataset}}", "model": {{LeNetLike}}, "hyperparameters": { "epochs": 2 } }""");
        Guid id = job.GetProperty("id").GetGuid();
        await JobHarness.WaitForStateAsync(client, id, "Succeeded");

        List<StreamEvent> history = await JobHarness.HistoryAsync(client, id);
        Assert.Equal([1, 2], history.Where(e => e.Kind == "snapshot").Select(e => e.Epoch!.Value));
        JsonElement visuals = await client.GetFromJsonAsync<JsonElement>($"/jobs/{id}/visuals");
        Assert.Equal(2, visuals.GetProperty("epoch").GetInt32());
        Assert.Equal(16, visuals.GetProperty("probes").GetInt32());
        JsonElement[] layers = [.. visuals.GetProperty("layers").EnumerateArray()];
        Assert.Equal(["conv1", "conv2"], layers.Select(l => l.GetProperty("name").GetString()));
        Assert.Equal([6, 3], [layers[0].GetProperty("filters").GetInt32(), layers[0].GetProperty("channels").GetInt32()]);
        Assert.Equal([6, 6], layers[1].GetProperty("mapSize").EnumerateArray().Select(d => d.GetInt32())); // 8×8 after pooling, 3×3 kernel

        // conv1: 6 RGB filters of 5×5, drawn ×8 in a 3×2 grid with 1-pixel lines: 3·41+1 by 2·41+1.
        using SKBitmap filters = await PngAsync(client, $"/jobs/{id}/filters/conv1.png");
        Assert.Equal((124, 83), (filters.Width, filters.Height));
        // conv2: 8 filters × 6 input channels, one grey row each: 6 tiles of 3×3 drawn ×13.
        using SKBitmap deep = await PngAsync(client, $"/jobs/{id}/filters/conv2.png");
        Assert.Equal((6 * 40) + 1, deep.Width);
        Assert.Equal((8 * 40) + 1, deep.Height);
        // conv2's 8 maps of 6×6 for probe 3, drawn ×8 in a 3×3 grid.
        using SKBitmap maps = await PngAsync(client, $"/jobs/{id}/featuremaps/conv2.png?sample=3");
        Assert.Equal(((3 * 49) + 1, (3 * 49) + 1), (maps.Width, maps.Height));
        Assert.True(Distinct(maps) > 10, "the maps are pictures, not a flat colour");

        JsonElement problem = await ServiceHarness.AssertProblemAsync(await client.GetAsync(new Uri($"/jobs/{id}/featuremaps/conv2.png?sample=16", UriKind.Relative)), HttpStatusCode.NotFound);
        Assert.Contains("sample", ServiceHarness.FieldsOf(problem));
        problem = await ServiceHarness.AssertProblemAsync(await client.GetAsync(new Uri($"/jobs/{id}/filters/relu1.png", UriKind.Relative)), HttpStatusCode.NotFound);
        Assert.Contains("layer", ServiceHarness.FieldsOf(problem));
        await ServiceHarness.AssertProblemAsync(await client.PostAsync(new Uri($"/jobs/{id}/snapshot", UriKind.Relative), null), HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task ASnapshotCanBeRequestedMidEpoch()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        // 5,120 steps an epoch: the first lasts a second or more even at thousands of steps a second, so neither the
        // check for no pictures yet nor the snapshot meets the end of epoch 1 (the job is cancelled once it has its snapshot).
        Guid dataset = await JobHarness.CreateShapesAsync(client, samples: 40960);
        (_, JsonElement job) = await JobHarness.PostJobAsync(client,
            $$"""{ "datasetId": "{{dataset}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 5, "batchSize": 8 } }""");
        Guid id = job.GetProperty("id").GetGuid();
        await JobHarness.WaitForStateAsync(client, id, "Running");
        await ServiceHarness.AssertProblemAsync(await client.GetAsync(new Uri($"/jobs/{id}/visuals", UriKind.Relative)), HttpStatusCode.Conflict);

        Assert.Equal(HttpStatusCode.Accepted, (await client.PostAsync(new Uri($"/jobs/{id}/snapshot", UriKind.Relative), null)).StatusCode);
        StreamEvent? snapshot = null;
        for (int i = 0; i < 200 && snapshot is null; i++)
        {
            await Task.Delay(50);
            snapshot = (await JobHarness.HistoryAsync(client, id)).FirstOrDefault(e => e.Kind == "snapshot");
        }

        Assert.NotNull(snapshot);
        Assert.True(snapshot.Step < 5120, $"taken mid-epoch 1 (5,120 steps an epoch), at step {snapshot.Step}");
        JsonElement visuals = await client.GetFromJsonAsync<JsonElement>($"/jobs/{id}/visuals");
        Assert.Equal(snapshot.Step, visuals.GetProperty("step").GetInt64());
        using SKBitmap filters = await PngAsync(client, $"/jobs/{id}/filters/conv1.png");
        await client.PostAsync(new Uri($"/jobs/{id}/cancel", UriKind.Relative), null);
        await JobHarness.WaitForStateAsync(client, id, "Cancelled");
    }

    private static async Task<SKBitmap> PngAsync(HttpClient client, string path)
    {
        HttpResponseMessage response = await client.GetAsync(new Uri(path, UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("image/png", response.Content.Headers.ContentType?.MediaType);
        return SKBitmap.Decode(await response.Content.ReadAsByteArrayAsync());
    }

    private static int Distinct(SKBitmap bitmap) => bitmap.Pixels.Distinct().Count();
}
