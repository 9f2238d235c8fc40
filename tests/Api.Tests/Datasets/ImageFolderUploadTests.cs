using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using SkiaSharp;
using TrainingService.Api.Datasets;
using TrainingService.Api.Persistence;
using TrainingService.Api.Tests.Jobs;
using TrainingService.Api.Tests.Service;
using TrainingService.Training.Data;
using static TrainingService.Api.Tests.Datasets.ArchiveFiles;

namespace TrainingService.Api.Tests.Datasets;

/// <summary>POST /datasets with format imagefolder: a zip of class folders of PNG/JPEG images, resized to one size.</summary>
public sealed class ImageFolderUploadTests
{
    private const string TinyColourSpec = """
        { "input": { "channels": 3, "height": 16, "width": 16 },
          "layers": [ { "kind": "conv2d", "filters": 4, "kernel": 3 }, { "kind": "relu" }, { "kind": "maxpool2d", "kernel": 2 },
                      { "kind": "flatten" }, { "kind": "linear", "units": 2 } ] }
        """;

    private static readonly SKColor s_red = new(220, 20, 30), s_green = new(10, 200, 40), s_blue = new(30, 40, 210);

    private static async Task<JsonElement> CreatedAsync(HttpResponseMessage response)
    {
        JsonElement view = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(response.StatusCode == HttpStatusCode.Created, view.ToString());
        return view;
    }

    /// <summary>The factory's only dataset, as the store loads it.</summary>
    internal static async Task<ImageDataset> LoadAsync(TrainingServiceFactory factory)
    {
        await using AsyncServiceScope scope = factory.Services.CreateAsyncScope();
        DatasetRecord record = await scope.ServiceProvider.GetRequiredService<TrainingDb>().Datasets.AsNoTracking().SingleAsync();
        return scope.ServiceProvider.GetRequiredService<DatasetStore>().Load(record);
    }

    private static Task<HttpResponseMessage> PostAsync(HttpClient client, byte[] zip, params (string Field, string Value)[] fields) =>
        client.PostAsync(new Uri("/datasets", UriKind.Relative), Form("imagefolder", fields, ("archive", "images.zip", zip)));

    [Fact]
    public async Task ClassFoldersBecomeClassesWithATestSplitAndTheDatasetTrains()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        // A zipped folder "pets" with train/ and test/, the litter a Mac and an editor leave, and a note.
        var entries = new List<(string, byte[]?)>
        {
            ("pets/", null),
            ("__MACOSX/pets/train/dog/._0.jpg", [0, 5, 22, 7]),
            ("pets/.DS_Store", [0, 0, 0, 1]),
            ("pets/train/README.txt", Encoding.UTF8.GetBytes("dogs and cats")),
            ("pets/test/cat/0.png", Png(20, 20, s_red)),
            ("pets/test/dog/0.JPG", Jpeg(20, 20, s_blue)),
        };
        for (int i = 0; i < 12; i++)
        {
            entries.Add(($"pets/train/cat/{i}.png", Png(24 + i, 20, s_red)));
            entries.Add(($"pets/train/dog/{(i < 6 ? "indoor" : "outdoor")}/{i}.jpeg", Jpeg(30, 18 + i, s_blue)));
        }

        JsonElement view = await CreatedAsync(await PostAsync(client, Zip([.. entries]), ("imageSize", "16")));

        Assert.Equal("imagefolder", view.GetProperty("source").GetString());
        Assert.Equal("[3,16,16]", view.GetProperty("shape").GetRawText());
        Assert.Equal("""["cat","dog"]""", view.GetProperty("classNames").GetRawText());
        Assert.Equal((2, 24, 2), (view.GetProperty("classes").GetInt32(), view.GetProperty("trainCount").GetInt32(), view.GetProperty("testCount").GetInt32()));
        Assert.Equal("[12,12]", view.GetProperty("classCounts").GetRawText());
        ImageDataset data = await LoadAsync(factory);
        Assert.Equal([0, 1], data.Test!.Labels);
        int plane = 16 * 16;
        Assert.Equal([s_red.Red, s_red.Green, s_red.Blue], new[] { data.Train.Images[100], data.Train.Images[plane + 100], data.Train.Images[(2 * plane) + 100] });
        Guid datasetId = view.GetProperty("id").GetGuid();
        Assert.Equal("""["cat","dog"]""", (await client.GetFromJsonAsync<JsonElement>($"/datasets/{datasetId}")).GetProperty("classNames").GetRawText());

        (HttpResponseMessage response, JsonElement job) = await JobHarness.PostJobAsync(client,
            $$"""{ "datasetId": "{{datasetId}}", "model": {{TinyColourSpec}}, "hyperparameters": { "epochs": 2, "batchSize": 8 } }""");
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, job.ToString());
        await JobHarness.WaitForStateAsync(client, job.GetProperty("id").GetGuid(), "Succeeded");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public async Task AnImageOfTheSizeAskedForIsKeptPixelForPixelGreyByLuminance(int channels)
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        static SKColor Colour(int x, int y) => new((byte)(x * 40), (byte)(y * 50), (byte)(200 - (x * y * 5)));
        byte[] zip = Zip(("a/pattern.png", Image(6, 4, Colour)), ("b/plain.png", Png(6, 4, s_green)));

        JsonElement view = await CreatedAsync(await PostAsync(client, zip, ("height", "4"), ("width", "6"), ("channels", channels.ToString(System.Globalization.CultureInfo.InvariantCulture))));

        Assert.Equal($"[{channels},4,6]", view.GetProperty("shape").GetRawText());
        byte[] image = (await LoadAsync(factory)).Train.Images[..(channels * 24)];
        for (int y = 0; y < 4; y++)
        {
            for (int x = 0; x < 6; x++)
            {
                SKColor c = Colour(x, y);
                int at = (y * 6) + x;
                byte[] expected = channels == 1
                    ? [(byte)MathF.Round((0.299f * c.Red) + (0.587f * c.Green) + (0.114f * c.Blue))]
                    : [c.Red, c.Green, c.Blue];
                Assert.Equal(expected, Enumerable.Range(0, channels).Select(ch => image[(ch * 24) + at]));
            }
        }
    }

    [Theory]
    [InlineData("crop")]
    [InlineData("pad")]
    public async Task CropCutsTheMiddleOutAndPadLetterboxesInBlack(string fit)
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        // 40×20: red, then green for the middle half, then blue.
        byte[] wide = Image(40, 20, (x, _) => x < 10 ? s_red : x < 30 ? s_green : s_blue);
        byte[] zip = Zip(("wide/0.png", wide), ("other/0.png", Png(10, 10, s_blue)));

        await CreatedAsync(await PostAsync(client, zip, ("imageSize", "10"), ("fit", fit)));

        byte[] image = (await LoadAsync(factory)).Train.Images[300..600]; // labels in name order: other (0), wide (1)
        SKColor Pixel(int x, int y) => new(image[(y * 10) + x], image[100 + (y * 10) + x], image[200 + (y * 10) + x]);
        static void Near(SKColor expected, SKColor actual) =>
            Assert.True(Math.Abs(expected.Red - actual.Red) + Math.Abs(expected.Green - actual.Green) + Math.Abs(expected.Blue - actual.Blue) <= 12, $"expected {expected}, got {actual}");
        if (fit == "crop")
        {
            // Scaled to 20×10, the middle 10 columns kept: all green.
            Near(s_green, Pixel(0, 0));
            Near(s_green, Pixel(9, 9));
            Near(s_green, Pixel(5, 5));
        }
        else
        {
            // Scaled to 10×5 in rows 2.5..7.5; black above and below.
            Near(SKColors.Black, Pixel(5, 0));
            Near(SKColors.Black, Pixel(5, 9));
            Near(s_red, Pixel(0, 4));
            Near(s_green, Pixel(5, 4));
            Near(s_blue, Pixel(9, 5));
        }
    }

    [Theory]
    [InlineData("crop")]
    [InlineData("pad")]
    public async Task APredictionFitsAnImageAsTrainingDidSoTheSameFileScoresAsItsStoredSample(string fit)
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        // Wide images with a pattern across them: stretching, cropping and padding each give other pixels.
        static SKColor Stripes(int x, int y, int shift) => new((byte)((x * 37) + shift), (byte)((y * 53) + (x * 11)), (byte)(255 - (x * 5) - shift));
        var entries = new List<(string, byte[]?)>();
        for (int i = 0; i < 4; i++)
        {
            entries.Add(($"a/{i}.png", Image(40, 18, (x, y) => Stripes(x, y, i * 9))));
            entries.Add(($"b/{i}.png", Image(36, 20, (x, y) => Stripes(y, x, i * 7))));
        }

        JsonElement view = await CreatedAsync(await PostAsync(client, Zip([.. entries]), ("imageSize", "16"), ("fit", fit)));
        Assert.Equal(fit, view.GetProperty("fit").GetString());
        (HttpResponseMessage response, JsonElement job) = await JobHarness.PostJobAsync(client,
            $$"""{ "datasetId": "{{view.GetProperty("id")}}", "model": {{TinyColourSpec}}, "hyperparameters": { "epochs": 1, "batchSize": 4, "validationFraction": 0 } }""");
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, job.ToString());
        Guid jobId = job.GetProperty("id").GetGuid();
        await JobHarness.WaitForStateAsync(client, jobId, "Succeeded");

        // Every stored sample as pixels, then one original file: its scores must be those of one stored sample exactly.
        ImageDataset data = await LoadAsync(factory);
        float[][] stored = [.. Enumerable.Range(0, data.Train.Count).Select(i => data.Train.Images[(i * data.SampleSize)..((i + 1) * data.SampleSize)].Select(b => (float)b).ToArray())];
        using HttpResponseMessage asPixels = await client.PostAsJsonAsync(new Uri($"/jobs/{jobId}/predict", UriKind.Relative), new { images = stored });
        JsonElement pixelPredictions = await asPixels.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(asPixels.IsSuccessStatusCode, pixelPredictions.ToString());
        using var form = new MultipartFormDataContent { { new ByteArrayContent(entries[5].Item2!), "images", "b2.png" } };
        using HttpResponseMessage asFile = await client.PostAsync(new Uri($"/jobs/{jobId}/predict", UriKind.Relative), form);
        JsonElement filePrediction = await asFile.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(asFile.IsSuccessStatusCode, filePrediction.ToString());

        double[] file = Probabilities(filePrediction.GetProperty("predictions")[0]);
        double closest = pixelPredictions.GetProperty("predictions").EnumerateArray()
            .Min(p => Probabilities(p).Zip(file, (a, b) => Math.Abs(a - b)).Max());
        Assert.True(closest < 1e-6, $"the file's probabilities {string.Join(", ", file)} are {closest:G3} from the nearest stored sample's");
    }

    [Fact]
    public async Task ALargeJpegIsDecodedAtAFractionAndStillFillsTheSize()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        // 800×600, red left of the middle, blue right: decoded at 1/8 (100×75), then scaled to 43×32 and cut to 32×32.
        byte[] photo = Image(800, 600, (x, _) => x < 400 ? s_red : s_blue, SKEncodedImageFormat.Jpeg);
        byte[] zip = Zip(("a/photo.jpg", photo), ("b/plain.png", Png(32, 32, s_green)));

        await CreatedAsync(await PostAsync(client, zip, ("imageSize", "32")));

        byte[] image = (await LoadAsync(factory)).Train.Images[..(3 * 32 * 32)];
        SKColor Pixel(int x, int y) => new(image[(y * 32) + x], image[1024 + (y * 32) + x], image[2048 + (y * 32) + x]);
        Assert.True(Pixel(2, 16).Red > 180 && Pixel(2, 16).Blue < 80, $"left: {Pixel(2, 16)}");
        Assert.True(Pixel(29, 16).Blue > 170 && Pixel(29, 16).Red < 80, $"right: {Pixel(29, 16)}");
        Assert.True(Pixel(2, 0).Red > 180, $"top row: {Pixel(2, 0)}"); // cropped, not padded
    }

    public static TheoryData<string, string, string> Rejected => new()
    {
        // case, field at fault, part of the detail
        { "entry climbing out", "archive", "archive: the entry \"../evil.png\" escapes the archive's folder" },
        { "backslashes climbing out", "archive", "archive: the entry \"cat\\..\\..\\evil.png\" escapes the archive's folder" },
        { "absolute path", "archive", "archive: the entry \"/etc/evil.png\" escapes the archive's folder" },
        { "zip bomb", "archive", "archive: too large: \"cat/bomb.png\" expands more than 100:1" },
        { "too many bytes", "archive", "archive: too large: the upload's compressed files expand to more than 5,000 bytes (configuration Uploads:MaxUncompressedBytes)" },
        { "too many files", "archive", "archive: too large: the archive has more than 4 entries (files and folders) (configuration Uploads:MaxArchiveEntries)" },
        { "huge declared size", "archive", "archive: too large: \"dog/huge.jpg\" is 60000×60000 (3,600,000,000 pixels), over the limit of 50,000,000 pixels (configuration Uploads:MaxImagePixels)" },
        { "empty class folder", "archive", "archive: the class folder \"bird\" holds no PNG or JPEG images" },
        { "unreadable image", "archive", "archive: \"dog/broken.png\" is not an image that can be read: expected PNG or JPEG" },
        { "truncated image", "archive", "archive: \"dog/cut.png\" could not be decoded (IncompleteInput): a damaged or truncated image" },
        { "webp image", "archive", "archive: \"dog/0.png\" is a WEBP image: only PNG and JPEG are read" },
        { "single class", "archive", "archive: one class folder (\"cat\"): a classifier needs at least two" },
        { "image outside a class folder", "archive", "archive: \"loose.png\" is not in a class folder" },
        { "test class not in train", "archive", "archive: the test class folder \"test/bird\" has no train folder of that name" },
        { "folder beside train and test", "archive", "archive: the folder \"extra\" is beside train/ and test/" },
        { "not a zip", "archive", "archive: not a zip file" },
        { "no images", "archive", "archive: no class folders" },
        { "no size", "imageSize", "imageSize is required with format imagefolder" },
        { "size twice over", "imageSize", "Give imageSize (square images) or height and width, not both." },
        { "height alone", "width", "width is required with height" },
        { "two channels", "channels", "channels must be 1 (grey, by luminance) or 3 (RGB) with format imagefolder, got 2." },
        { "unknown fit", "fit", "Unknown fit \"stretch\"" },
        { "no archive", "archive", "The file archive is required with format imagefolder" },
        { "images instead of archive", "images", "An image folder comes as one .zip in the field archive" },
    };

    [Theory]
    [MemberData(nameof(Rejected))]
    public async Task ABrokenImageFolderIsRefusedNamingTheEntryAndKeepsNothing(string rejection, string field, string detail)
    {
        Dictionary<string, string?> settings = rejection switch
        {
            "too many bytes" => new() { ["Uploads:MaxUncompressedBytes"] = "5000" },
            "too many files" => new() { ["Uploads:MaxArchiveEntries"] = "4" },
            _ => [],
        };
        await using var factory = new TrainingServiceFactory(settings);
        using HttpClient client = factory.CreateClient();
        byte[] cat = Png(8, 8, s_red), dog = Jpeg(8, 8, s_blue);
        // Noise: it does not compress, so its bytes and its rows are many.
        byte[] noise = Image(60, 60, (x, y) => new SKColor((byte)((x * 7919) ^ (y * 104729)), (byte)((x * y * 31) + 17), (byte)((x + 3) * (y + 5) * 13)));
        (string, byte[]?)[] two = [("cat/0.png", cat), ("dog/0.jpg", dog)];
        (string Field, string Value)[] size = [("imageSize", "8")];
        (byte[]? Zip, (string, string)[] Fields) upload = rejection switch
        {
            "entry climbing out" => (Zip([.. two, ("../evil.png", cat)]), size),
            "backslashes climbing out" => (Zip([.. two, ("cat\\..\\..\\evil.png", cat)]), size),
            "absolute path" => (Zip([.. two, ("/etc/evil.png", cat)]), size),
            "zip bomb" => (Zip([.. two, ("cat/bomb.png", new byte[20 << 20])]), size),
            "too many bytes" => (Zip([.. two, ("dog/1.png", noise)]), size),
            "too many files" => (Zip([.. two, ("cat/1.png", cat), ("cat/2.png", cat), ("dog/1.jpg", dog)]), size),
            "huge declared size" => (Zip([.. two, ("dog/huge.jpg", JpegClaiming(60000, 60000))]), size),
            "empty class folder" => (Zip([.. two, ("bird/", null)]), size),
            "unreadable image" => (Zip([.. two, ("dog/broken.png", Encoding.UTF8.GetBytes("not an image at all"))]), size),
            "truncated image" => (Zip([.. two, ("dog/cut.png", noise[..(noise.Length / 2)])]), size),
            "webp image" => (Zip([("cat/0.png", cat), ("dog/0.png", Image(8, 8, (_, _) => s_blue, SKEncodedImageFormat.Webp))]), size),
            "single class" => (Zip(("cat/0.png", cat), ("cat/1.png", cat)), size),
            "image outside a class folder" => (Zip([.. two, ("loose.png", cat)]), size),
            "test class not in train" => (Zip(("train/cat/0.png", cat), ("train/dog/0.jpg", dog), ("test/bird/0.png", cat)), size),
            "folder beside train and test" => (Zip(("train/cat/0.png", cat), ("train/dog/0.jpg", dog), ("test/cat/0.png", cat), ("extra/cat/1.png", cat)), size),
            "not a zip" => (Encoding.UTF8.GetBytes("PK but not really a zip"), size),
            "no images" => (Zip(("notes.txt", Encoding.UTF8.GetBytes("nothing here"))), size),
            "no size" => (Zip(two), []),
            "size twice over" => (Zip(two), [("imageSize", "8"), ("height", "8")]),
            "height alone" => (Zip(two), [("height", "8")]),
            "two channels" => (Zip(two), [("imageSize", "8"), ("channels", "2")]),
            "unknown fit" => (Zip(two), [("imageSize", "8"), ("fit", "stretch")]),
            "no archive" => (null, size),
            "images instead of archive" => (null, [.. size, ("images", "x")]),
            _ => throw new ArgumentOutOfRangeException(nameof(rejection)),
        };
        using MultipartFormDataContent form = upload.Zip is null
            ? Form("imagefolder", rejection == "images instead of archive" ? size : upload.Fields,
                rejection == "images instead of archive" ? [("images", "images.zip", Zip(two))] : [])
            : Form("imagefolder", upload.Fields, ("archive", "images.zip", upload.Zip));

        JsonElement problem = await ServiceHarness.AssertProblemAsync(await client.PostAsync(new Uri("/datasets", UriKind.Relative), form), DatasetFiles.StatusFor(detail));

        Assert.Equal(field, problem.GetProperty("field").GetString());
        Assert.Contains(detail, problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        await DatasetFiles.AssertNothingKeptAsync(factory);
    }

    [Theory]
    [InlineData("a/b/c.png", "a,b,c.png")]
    [InlineData("./a//b/../c.png", "a,c.png")]
    [InlineData("a\\b.png", "a,b.png")]
    [InlineData("a/../../b.png", null)]
    [InlineData("..\\b.png", null)]
    [InlineData("/b.png", null)]
    [InlineData("C:/b.png", null)]
    [InlineData("\\\\server\\b.png", null)]
    public void EntryNamesAreNormalisedAndThoseLeavingTheRootRefused(string entry, string? segments)
    {
        if (segments is null)
        {
            DatasetFormatException refused = Assert.Throws<DatasetFormatException>(() => ArchiveBudget.Segments(entry));
            Assert.Equal("archive", refused.File);
        }
        else
        {
            Assert.Equal(segments, string.Join(',', ArchiveBudget.Segments(entry)));
        }
    }

    [Fact]
    public void NamesTooLongOrTooDeepAreRefusedBeforeTheirFoldersAreKept()
    {
        string deep = string.Concat(Enumerable.Repeat("a/", 40)) + "x.png";
        string longName = new string('n', 2000) + ".png";

        Assert.Contains("lies 40 folders deep, over the limit of 31", Assert.Throws<DatasetFormatException>(() => ArchiveBudget.Segments(deep)).Message, StringComparison.Ordinal);
        Assert.Contains("name is 2,004 characters long, over the limit of 1,024", Assert.Throws<DatasetFormatException>(() => ArchiveBudget.Segments(longName)).Message, StringComparison.Ordinal);
        Assert.Equal(32, ArchiveBudget.Segments(string.Concat(Enumerable.Repeat("a/", 31)) + "x.png").Length);
    }

    [Fact]
    public async Task AFormOfMoreFilesThanAnyFormatTakesIsRefusedWithNothingKept()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        (string, string, byte[])[] parts = [.. Enumerable.Range(0, 40).Select(i => ("images", $"data_batch_{i}.bin", Cifar10(1)))];

        using HttpResponseMessage response = await client.PostAsync(new Uri("/datasets", UriKind.Relative), Form("cifar", [], parts));

        JsonElement problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("more than 32 files", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        await DatasetFiles.AssertNothingKeptAsync(factory);
    }

    /// <summary>A prediction's probabilities by class.</summary>
    internal static double[] Probabilities(JsonElement prediction) =>
        [.. prediction.GetProperty("top").EnumerateArray().OrderBy(t => t.GetProperty("class").GetInt32()).Select(t => t.GetProperty("probability").GetDouble())];
}
