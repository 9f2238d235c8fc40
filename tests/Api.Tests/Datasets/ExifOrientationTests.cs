using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using SkiaSharp;
using TrainingService.Api.Tests.Jobs;
using TrainingService.Training.Data;
using static TrainingService.Api.Tests.Datasets.ArchiveFiles;

namespace TrainingService.Api.Tests.Datasets;

/// <summary>A JPEG's EXIF orientation is applied, to uploads and to predictions: pixels land where a viewer shows them.</summary>
public sealed class ExifOrientationTests
{
    // What a viewer shows: 16 wide, 24 high, one colour per quadrant.
    private const int Width = 16, Height = 24;

    private static readonly SKColor[] s_quadrants = [new(230, 30, 30), new(30, 200, 40), new(40, 50, 220), new(240, 240, 240)];

    private static SKColor Shown(int x, int y) => s_quadrants[(x < Width / 2 ? 0 : 1) + (y < Height / 2 ? 0 : 2)];

    /// <summary>
    /// The JPEG a camera would store for <see cref="Shown"/> with orientation <paramref name="orientation"/>: stored pixel
    /// (x, y) is seen where the tag puts the stored first row and first column (EXIF 2.3, tag 0x0112).
    /// </summary>
    private static byte[] Stored(int orientation)
    {
        bool transposed = orientation >= 5;
        (int w, int h) = transposed ? (Height, Width) : (Width, Height);
        (int X, int Y) Seen(int x, int y) => orientation switch
        {
            2 => (w - 1 - x, y),
            3 => (w - 1 - x, h - 1 - y),
            4 => (x, h - 1 - y),
            5 => (y, x),
            6 => (h - 1 - y, x),
            7 => (h - 1 - y, w - 1 - x),
            8 => (y, w - 1 - x),
            _ => (x, y),
        };
        byte[] jpeg = Image(w, h, (x, y) => Seen(x, y) is var (sx, sy) ? Shown(sx, sy) : default, SKEncodedImageFormat.Jpeg);
        return WithOrientation(jpeg, orientation);
    }

    [Fact]
    public async Task EveryOrientationIsUploadedAndPredictedAsAViewerShowsIt()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        var entries = Enumerable.Range(1, 8).Select(o => ($"a/{o}.jpg", (byte[]?)Stored(o))).ToList();
        entries.Add(("b/plain.png", Png(Width, Height, SKColors.Gray)));
        using HttpResponseMessage created = await client.PostAsync(new Uri("/datasets", UriKind.Relative), Form("imagefolder",
            [("height", $"{Height}"), ("width", $"{Width}"), ("channels", "3")], ("archive", "images.zip", Zip([.. entries]))));
        JsonElement view = await created.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(created.StatusCode == HttpStatusCode.Created, view.ToString());

        ImageDataset data = await ImageFolderUploadTests.LoadAsync(factory);

        int plane = Width * Height;
        for (int o = 1; o <= 8; o++)
        {
            byte[] sample = data.Train.Images[((o - 1) * data.SampleSize)..(o * data.SampleSize)];
            foreach ((int x, int y) in new[] { (4, 6), (12, 6), (4, 18), (12, 18) })
            {
                SKColor expected = Shown(x, y);
                int at = (y * Width) + x;
                int distance = Math.Abs(expected.Red - sample[at]) + Math.Abs(expected.Green - sample[plane + at]) + Math.Abs(expected.Blue - sample[(2 * plane) + at]);
                Assert.True(distance < 60, $"orientation {o}, pixel ({x}, {y}): expected {expected}, got ({sample[at]}, {sample[plane + at]}, {sample[(2 * plane) + at]})");
            }
        }

        // A prediction decodes the file as the upload did: each oriented file scores as its stored (checked) sample.
        (HttpResponseMessage response, JsonElement job) = await JobHarness.PostJobAsync(client, $$"""
            { "datasetId": "{{view.GetProperty("id")}}", "hyperparameters": { "epochs": 1, "batchSize": 3, "validationFraction": 0 },
              "model": { "input": { "channels": 3, "height": {{Height}}, "width": {{Width}} }, "layers": [
                { "kind": "conv2d", "filters": 4, "kernel": 3 }, { "kind": "relu" }, { "kind": "flatten" }, { "kind": "linear", "units": 2 } ] } }
            """);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, job.ToString());
        Guid jobId = job.GetProperty("id").GetGuid();
        await JobHarness.WaitForStateAsync(client, jobId, "Succeeded");

        float[][] samples = [.. Enumerable.Range(0, 8).Select(i => data.Train.Images[(i * data.SampleSize)..((i + 1) * data.SampleSize)].Select(b => (float)b).ToArray())];
        using var files = new MultipartFormDataContent();
        foreach ((string name, byte[]? bytes) in entries.Take(8))
        {
            files.Add(new ByteArrayContent(bytes!), "images", name);
        }

        JsonElement byPixels = await PredictAsync(client, jobId, JsonContent.Create(new { images = samples, top = 2 }));
        JsonElement byFiles = await PredictAsync(client, jobId, files);
        for (int o = 0; o < 8; o++)
        {
            double[] expected = ImageFolderUploadTests.Probabilities(byPixels.GetProperty("predictions")[o]), actual = ImageFolderUploadTests.Probabilities(byFiles.GetProperty("predictions")[o]);
            Assert.True(expected.Zip(actual, (a, b) => Math.Abs(a - b)).Max() < 1e-6, $"orientation {o + 1}: {string.Join(", ", actual)} for {string.Join(", ", expected)}");
        }
    }

    private static async Task<JsonElement> PredictAsync(HttpClient client, Guid jobId, HttpContent content)
    {
        using HttpResponseMessage response = await client.PostAsync(new Uri($"/jobs/{jobId}/predict", UriKind.Relative), content);
        JsonElement body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(response.IsSuccessStatusCode, body.ToString());
        return body;
    }
}
