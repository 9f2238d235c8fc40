using System.Diagnostics;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using SkiaSharp;
using TrainingService.Api.Datasets;
using TrainingService.Api.Tests.Outputs;
using TrainingService.Api.Tests.Service;
using Xunit.Abstractions;
using static TrainingService.Api.Tests.Datasets.ArchiveFiles;

namespace TrainingService.Api.Tests.Datasets;

/// <summary>
/// Small inputs that once cost the server far more than their size, each refused or bounded now. Each test writes what
/// went in, what was kept and what the request allocated, so the figures can be compared across versions. The
/// allocation count is the process's, so these run with no other test beside them.
/// </summary>
[Collection(nameof(MemoryMeasuring))]
public sealed class AmplificationTests(ITestOutputHelper output)
{
    private const long MiB = 1 << 20;

    [Fact]
    public async Task AGzipIdxBombIsRefusedByItsCompressionRatioBeforeItsDeclaredSizeIsAllocated()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        // 100,000 black 28×28 images: 74.8 MiB that gzip to about 76 KB, a ratio of about 1,000:1.
        byte[] images = DatasetFiles.Gzip(DatasetFiles.Idx([100_000, 28, 28], new byte[100_000 * 28 * 28]), CompressionLevel.SmallestSize);
        byte[] labels = DatasetFiles.Gzip(DatasetFiles.Labels(100_000, 2), CompressionLevel.SmallestSize);

        (HttpResponseMessage response, Measure measure) = await MeasureAsync(
            factory, images.Length + labels.Length, () => client.PostAsync(
                new Uri("/datasets", UriKind.Relative), DatasetFiles.Form("bomb", "idx", ("images", images), ("labels", labels))));

        string detail = await AssertRefusedAsync(factory, response, HttpStatusCode.RequestEntityTooLarge, "images", "expands more than 100:1");
        Assert.EndsWith("(configuration Uploads:MaxCompressionRatio)", detail, StringComparison.Ordinal);
        // Decoding stops at 100 × the compressed size (7.6 MB); the buffer grows only as far as the data goes.
        Assert.True(measure.Allocated < 40 * MiB, measure.ToString());
    }

    [Fact]
    public async Task AZipOfTinyPngsBlownUpPastTheDatasetLimitIsRefusedBeforeAllocating()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        byte[] dot = Png(1, 1, SKColors.White);
        // 400 images of 3×1024×1024 are 1.2 GiB, over Uploads:MaxDatasetBytes (1 GiB).
        byte[] zip = Zip([.. Enumerable.Range(0, 400).Select(i => ($"{(i % 2 == 0 ? "a" : "b")}/{i}.png", (byte[]?)dot))]);

        (HttpResponseMessage response, Measure measure) = await MeasureAsync(
            factory, zip.Length, () => client.PostAsync(
                new Uri("/datasets", UriKind.Relative), Form("imagefolder", [("imageSize", "1024")], ("archive", "dots.zip", zip))));

        await AssertRefusedAsync(
            factory,
            response,
            HttpStatusCode.RequestEntityTooLarge,
            "archive",
            "400 images of 3×1024×1024 are 1,258,291,200 bytes, over the limit of 1,073,741,824 bytes for a dataset (configuration Uploads:MaxDatasetBytes)");
        Assert.True(measure.Allocated < 32 * MiB, measure.ToString());
    }

    [Fact]
    public async Task ATarWhoseMetadataEntryDeclaresTwoGiBIsRefusedBeforeItIsAllocated()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        // The first header is the PAX attributes of the batch; TarReader would allocate its declared size at once.
        byte[] tar = WithTarSize(Tar(false, ("data_batch_1.bin", Cifar10(1))), 0, "17777777000");

        (HttpResponseMessage response, Measure measure) = await MeasureAsync(
            factory, tar.Length, () => client.PostAsync(new Uri("/datasets", UriKind.Relative), Form("cifar", [], ("archive", "c.tar", tar))));

        await AssertRefusedAsync(
            factory, response, HttpStatusCode.BadRequest, "archive", "archive: a tar metadata entry (type 'x') declares 2,147,483,136 bytes, over the 1,048,576 any needs");
        Assert.True(measure.Allocated < 32 * MiB, measure.ToString());
    }

    [Fact]
    public async Task ASampleScaleIsCappedSoThePngHasAtMostTheConfiguredPixels()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        Guid id = await UploadAsync(client, channels: 1, side: 1024);

        (HttpResponseMessage response, Measure measure) = await MeasureAsync(
            factory, 0, () => client.GetAsync(new Uri($"/datasets/{id}/samples/0.png?scale=16", UriKind.Relative)));

        JsonElement problem = await ServiceHarness.AssertProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Equal("scale", problem.GetProperty("field").GetString());
        Assert.StartsWith(
            "scale must be between 1 and 2 for this dataset's 1024×1024 images, but was 16: a sample's PNG has at most 4,194,304 pixels (configuration Uploads:MaxSamplePixels).",
            problem.GetProperty("detail").GetString(),
            StringComparison.Ordinal);
        Assert.True(measure.Allocated < 16 * MiB, measure.ToString());

        byte[] largest = await client.GetByteArrayAsync(new Uri($"/datasets/{id}/samples/0.png?scale=2", UriKind.Relative));
        (int width, int height, _) = DatasetFiles.PngHeader(largest);
        Assert.Equal((2048, 2048), (width, height));
    }

    [Fact]
    public async Task AnRgbDatasetOfTheLargestSideThatWasAcceptedLoadsAfterARestart()
    {
        string dataFolder = Directory.CreateTempSubdirectory("trainingservice-tests-").FullName;
        try
        {
            Guid id;
            await using (var first = new TrainingServiceFactory(dataFolder: dataFolder))
            {
                using HttpClient client = first.CreateClient();
                id = await UploadAsync(client, channels: 3, side: 1024);
            }

            await using var factory = new TrainingServiceFactory(dataFolder: dataFolder);
            using HttpClient restarted = factory.CreateClient();
            (HttpResponseMessage response, _) = await MeasureAsync(
                factory, 0, () => restarted.GetAsync(new Uri($"/datasets/{id}/samples/1.png", UriKind.Relative)));

            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
            (int width, int height, byte colour) = DatasetFiles.PngHeader(await response.Content.ReadAsByteArrayAsync());
            Assert.Equal((1024, 1024, (byte)2), (width, height, colour)); // RGB
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(dataFolder, recursive: true);
        }
    }

    [Fact]
    public async Task ADatasetWhoseFilesAreGoneGets409WithoutAServerPath()
    {
        // Room for four of these 2-image 8×8 datasets.
        await using var factory = new TrainingServiceFactory(new() { ["Uploads:CacheBytes"] = "512", ["Uploads:MaxDatasetBytes"] = "512" });
        using HttpClient client = factory.CreateClient();
        Guid id = await UploadAsync(client, channels: 1, side: 8);
        // Out of the store's memory, then its files lost.
        for (int i = 0; i < 4; i++)
        {
            await UploadAsync(client, channels: 1, side: 8);
        }

        File.Delete(Path.Combine(factory.DataFolder, "datasets", id.ToString("N"), DatasetStore.TrainImagesFile));

        using HttpResponseMessage response = await client.GetAsync(new Uri($"/datasets/{id}/samples/0.png", UriKind.Relative));

        string body = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        Assert.Contains("the dataset's files cannot be read", body, StringComparison.Ordinal);
        Assert.DoesNotContain(factory.DataFolder, body, StringComparison.Ordinal);
        Assert.DoesNotContain(DatasetStore.TrainImagesFile, body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ACsvOverTheDatasetLimitIsRefusedWhileItIsRead()
    {
        await using var factory = new TrainingServiceFactory(new() { ["Uploads:MaxDatasetBytes"] = "100" });
        using HttpClient client = factory.CreateClient();
        string csv = string.Concat(Enumerable.Range(0, 30).Select(i => $"{i % 2},1,2,3,4\n"));

        using HttpResponseMessage response = await client.PostAsync(new Uri("/datasets", UriKind.Relative), Form(
            "csv", [("channels", "1"), ("height", "2"), ("width", "2")], ("images", "train.csv", System.Text.Encoding.ASCII.GetBytes(csv))));

        await AssertRefusedAsync(
            factory,
            response,
            HttpStatusCode.RequestEntityTooLarge,
            "images",
            "images: too large: 26 images of 2×2 are 104 bytes, over the limit of 100 bytes for a dataset (configuration Uploads:MaxDatasetBytes)");
    }

    [Fact]
    public async Task AnImageSizeOverTheLargestSideIsRefusedNamingItsLimit()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();

        using HttpResponseMessage response = await client.PostAsync(new Uri("/datasets", UriKind.Relative), Form(
            "imagefolder", [("imageSize", "1025")], ("archive", "a.zip", Zip(("a/0.png", Png(1, 1, SKColors.White)), ("b/0.png", Png(1, 1, SKColors.Black))))));

        JsonElement problem = await ServiceHarness.AssertProblemAsync(response, HttpStatusCode.RequestEntityTooLarge);
        Assert.Equal("imageSize", problem.GetProperty("field").GetString());
        Assert.Equal("imageSize is 1025, over the limit of 1024 (configuration Uploads:MaxSide).", problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task ABuiltinDatasetOverTheDatasetLimitIsRefusedBeforeItIsGenerated()
    {
        await using var factory = new TrainingServiceFactory(new() { ["Uploads:MaxDatasetBytes"] = "100000" });
        using HttpClient client = factory.CreateClient();

        using HttpResponseMessage response = await client.PostAsJsonAsync("/datasets/builtin", new { kind = "shapes", samples = 200, imageSize = 28 });

        JsonElement problem = await ServiceHarness.AssertProblemAsync(response, HttpStatusCode.RequestEntityTooLarge);
        Assert.Equal("samples", problem.GetProperty("field").GetString());
        Assert.Contains("(configuration Uploads:MaxDatasetBytes)", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    /// <summary>An image folder of two classes, one white image each, made <paramref name="side"/>² with <paramref name="channels"/>.</summary>
    private static async Task<Guid> UploadAsync(HttpClient client, int channels, int side)
    {
        byte[] zip = Zip(("a/0.png", Png(1, 1, SKColors.White)), ("b/0.png", Png(1, 1, SKColors.Gray)));
        using HttpResponseMessage response = await client.PostAsync(new Uri("/datasets", UriKind.Relative), Form(
            "imagefolder", [("imageSize", side.ToString(System.Globalization.CultureInfo.InvariantCulture)), ("channels", channels.ToString(System.Globalization.CultureInfo.InvariantCulture))],
            ("archive", "a.zip", zip)));
        JsonElement view = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(response.StatusCode == HttpStatusCode.Created, view.ToString());
        return view.GetProperty("id").GetGuid();
    }

    /// <summary>Asserts a problem naming <paramref name="field"/> whose detail holds <paramref name="detail"/>, and nothing kept; returns the detail.</summary>
    private static async Task<string> AssertRefusedAsync(
        TrainingServiceFactory factory, HttpResponseMessage response, HttpStatusCode status, string field, string detail)
    {
        JsonElement problem = await ServiceHarness.AssertProblemAsync(response, status);
        Assert.Equal(field, problem.GetProperty("field").GetString());
        string said = problem.GetProperty("detail").GetString()!;
        Assert.Contains(detail, said, StringComparison.Ordinal);
        await DatasetFiles.AssertNothingKeptAsync(factory);
        return said;
    }

    private async Task<(HttpResponseMessage Response, Measure Measure)> MeasureAsync(
        TrainingServiceFactory factory, long bytesIn, Func<Task<HttpResponseMessage>> send)
    {
        using var process = Process.GetCurrentProcess();
        long rss = process.WorkingSet64;
        long allocated = GC.GetTotalAllocatedBytes(precise: true);
        HttpResponseMessage response = await send();
        long allocatedAfter = GC.GetTotalAllocatedBytes(precise: true);
        process.Refresh();
        string datasets = Path.Combine(factory.DataFolder, "datasets");
        long stored = Directory.Exists(datasets)
            ? Directory.EnumerateFiles(datasets, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length)
            : 0;
        var measure = new Measure((int)response.StatusCode, bytesIn, stored, allocatedAfter - allocated, process.WorkingSet64 - rss, process.PeakWorkingSet64);
        output.WriteLine(measure.ToString());
        return (response, measure);
    }

    private sealed record Measure(int Status, long BytesIn, long BytesStored, long Allocated, long RssGrowth, long PeakRss)
    {
        public override string ToString() =>
            $"status {Status}, bytes in {BytesIn:N0}, bytes stored {BytesStored:N0}, allocated during the request {Allocated / (double)MiB:F1} MiB, "
            + $"RSS growth {RssGrowth / (double)MiB:F1} MiB, process peak RSS {PeakRss / (double)MiB:F0} MiB";
    }
}
