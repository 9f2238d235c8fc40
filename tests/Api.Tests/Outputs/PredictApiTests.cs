using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using SkiaSharp;
using TrainingService.Api.Tests.Jobs;
using TrainingService.Api.Tests.Service;

namespace TrainingService.Api.Tests.Outputs;

/// <summary>POST /jobs/{id}/predict: top classes for pixel arrays or image files, preprocessed as in training.</summary>
public sealed class PredictApiTests
{
    [Fact]
    public async Task ATrainedModelNamesTheShapesItIsShownAsJsonPixelsOrAsPng()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        HttpResponseMessage created = await client.PostAsJsonAsync("/datasets/builtin", new { classes = 4, samples = 1024, testSamples = 128, imageSize = 16 });
        Guid dataset = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
        (_, JsonElement job) = await JobHarness.PostJobAsync(client, $$"""
            { "datasetId": "{{dataset}}", "hyperparameters": { "epochs": 8, "optimizer": "adam", "learningRate": 0.003 },
              "model": { "input": { "channels": 1, "height": 16, "width": 16 }, "layers": [
                { "kind": "conv2d", "filters": 8, "kernel": 3, "padding": 1 }, { "kind": "relu" }, { "kind": "maxpool2d", "kernel": 2 },
                { "kind": "conv2d", "filters": 16, "kernel": 3, "padding": 1 }, { "kind": "relu" }, { "kind": "maxpool2d", "kernel": 2 },
                { "kind": "flatten" }, { "kind": "linear", "units": 4 } ] } }
            """);
        Guid id = job.GetProperty("id").GetGuid();
        JsonElement done = await JobHarness.WaitForStateAsync(client, id, "Succeeded", TimeSpan.FromMinutes(2));
        double accuracy = done.GetProperty("bestValidationAccuracy").GetDouble();
        Assert.True(accuracy > 0.6, $"validation accuracy {accuracy}: the model should be far above chance (0.25)");

        // The first 8 training samples, by their PNG (the dataset's own rendering, 16×16 grey) and by their pixels.
        var files = new MultipartFormDataContent();
        var pixels = new List<float[]>();
        for (int i = 0; i < 8; i++)
        {
            byte[] png = await client.GetByteArrayAsync($"/datasets/{dataset}/samples/{i}.png?scale=1");
            files.Add(new ByteArrayContent(png), "images", $"sample{i}.png");
            using SKBitmap bitmap = SKBitmap.Decode(png);
            pixels.Add([.. Enumerable.Range(0, 256).Select(p => (float)bitmap.GetPixel(p % 16, p / 16).Red)]);
        }

        HttpResponseMessage fromFiles = await client.PostAsync(new Uri($"/jobs/{id}/predict", UriKind.Relative), files);
        JsonElement byFile = await fromFiles.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(fromFiles.IsSuccessStatusCode, byFile.ToString());
        JsonElement byPixels = await (await client.PostAsJsonAsync($"/jobs/{id}/predict", new { images = pixels, top = 2, featureMaps = true })).Content.ReadFromJsonAsync<JsonElement>();

        Assert.Equal("final", byPixels.GetProperty("source").GetString());
        JsonElement[] a = [.. byFile.GetProperty("predictions").EnumerateArray()], b = [.. byPixels.GetProperty("predictions").EnumerateArray()];
        Assert.Equal(8, a.Length);
        for (int i = 0; i < 8; i++)
        {
            JsonElement best = b[i].GetProperty("top")[0];
            Assert.Equal(a[i].GetProperty("top")[0].GetProperty("class").GetInt32(), best.GetProperty("class").GetInt32());
            Assert.Equal(2, b[i].GetProperty("top").GetArrayLength());
            Assert.False(string.IsNullOrEmpty(best.GetProperty("name").GetString()));
            Assert.InRange(best.GetProperty("probability").GetDouble(), 0.25, 1);
        }

        string[] labels = [.. (await client.GetFromJsonAsync<JsonElement>($"/datasets/{dataset}")).GetProperty("classNames").EnumerateArray().Select(n => n.GetString()!)];
        Assert.All(b, p => Assert.Contains(p.GetProperty("top")[0].GetProperty("name").GetString(), labels));
        JsonElement maps = byPixels.GetProperty("featureMaps");
        Assert.StartsWith("data:image/png;base64,", maps.GetProperty("conv1").GetString(), StringComparison.Ordinal);
        Assert.True(maps.TryGetProperty("conv2", out _));
    }

    [Fact]
    public async Task BadImagesAreA400NamingWhichOne()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        Guid dataset = await JobHarness.CreateShapesAsync(client);
        (_, JsonElement job) = await JobHarness.PostJobAsync(client, $$"""{ "datasetId": "{{dataset}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 1 } }""");
        Guid id = job.GetProperty("id").GetGuid();
        await JobHarness.WaitForStateAsync(client, id, "Succeeded");

        async Task ExpectField(HttpContent content, string field)
        {
            JsonElement problem = await ServiceHarness.AssertProblemAsync(await client.PostAsync(new Uri($"/jobs/{id}/predict", UriKind.Relative), content), HttpStatusCode.BadRequest);
            Assert.Contains(field, ServiceHarness.FieldsOf(problem));
        }

        await ExpectField(JsonContent.Create(new { images = new[] { new float[256], new float[10] } }), "images[1]");
        await ExpectField(JsonContent.Create(new { images = new[] { Enumerable.Repeat(300f, 256).ToArray() } }), "images[0]");
        await ExpectField(JsonContent.Create(new { images = new[] { new float[256] }, top = 9 }), "top");
        await ExpectField(JsonContent.Create(new { images = Array.Empty<float[]>() }), "images");
        await ExpectField(new MultipartFormDataContent { { new ByteArrayContent([1, 2, 3]), "images", "not-an-image.png" } }, "images[0]");
        await ExpectField(JsonContent.Create(new { images = new[] { new float[256] }, topK = 2 }), "topK");
        // A small file that declares a huge image is refused from its header, before a pixel is decoded: a 413, as every size.
        using (var claiming = new MultipartFormDataContent { { new ByteArrayContent(Datasets.ArchiveFiles.JpegClaiming(60000, 60000)), "images", "huge.jpg" } })
        {
            JsonElement problem = await ServiceHarness.AssertProblemAsync(
                await client.PostAsync(new Uri($"/jobs/{id}/predict", UriKind.Relative), claiming), HttpStatusCode.RequestEntityTooLarge);
            Assert.Equal(["images"], ServiceHarness.FieldsOf(problem));
            Assert.Contains("declare 3,600,000,000 pixels in all, over the limit", problem.GetRawText(), StringComparison.Ordinal);
        }

        await ServiceHarness.AssertProblemAsync(
            await client.PostAsJsonAsync($"/jobs/{Guid.NewGuid()}/predict", new { images = new[] { new float[256] } }), HttpStatusCode.NotFound);

        // Without its dataset the job has lost training's mean, std and image fitting: a 409, not a wrongly scaled answer.
        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync(new Uri($"/datasets/{dataset}", UriKind.Relative))).StatusCode);
        JsonElement conflict = await ServiceHarness.AssertProblemAsync(
            await client.PostAsJsonAsync($"/jobs/{id}/predict", new { images = new[] { new float[256] } }), HttpStatusCode.Conflict);
        Assert.Contains("is deleted", conflict.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }
}
