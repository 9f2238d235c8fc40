using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using SkiaSharp;
using TrainingService.Api.Datasets;
using TrainingService.Api.Persistence;
using TrainingService.Contracts.Training;
using TrainingService.Training.Data;
using static TrainingService.Api.Tests.Datasets.DatasetFiles;

namespace TrainingService.Api.Tests.Datasets;

public sealed class DatasetsApiTests
{
    private const string TinyShapes = """{ "kind": "shapes", "name": "tiny", "classes": 3, "samples": 60, "testSamples": 12, "imageSize": 16, "channels": 1, "seed": 7 }""";

    [Fact]
    public async Task BuiltinDatasetIsCreatedListedRenderedAndDeleted()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();

        using HttpResponseMessage created = await PostBuiltin(client, TinyShapes);

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        JsonElement view = await ReadJsonAsync(created);
        Guid id = view.GetProperty("id").GetGuid();
        Assert.Equal($"/datasets/{id}", created.Headers.Location?.OriginalString);
        Assert.Equal("tiny", view.GetProperty("name").GetString());
        Assert.Equal("shapes", view.GetProperty("source").GetString());
        Assert.Equal(3, view.GetProperty("classes").GetInt32());
        Assert.Equal(60, view.GetProperty("trainCount").GetInt32());
        Assert.Equal(12, view.GetProperty("testCount").GetInt32());
        Assert.Equal("[1,16,16]", view.GetProperty("shape").GetRawText());
        Assert.Equal("[20,20,20]", view.GetProperty("classCounts").GetRawText());
        Assert.Equal("""["circle","square","triangle"]""", view.GetProperty("classNames").GetRawText());
        Assert.InRange(view.GetProperty("mean")[0].GetDouble(), 0.05, 0.6);
        Assert.InRange(view.GetProperty("std")[0].GetDouble(), 0.01, 0.5);
        Assert.True(view.GetProperty("createdAt").GetDateTimeOffset() > DateTimeOffset.UtcNow.AddMinutes(-1));
        Assert.Equal(
            [LocalDatasetCache.HashFile, DatasetStore.TestImagesFile, DatasetStore.TestLabelsFile, DatasetStore.TrainImagesFile, DatasetStore.TrainLabelsFile],
            Directory.GetFiles(DatasetFolder(factory, id)).Select(Path.GetFileName).Order(StringComparer.Ordinal));

        JsonElement got = await client.GetFromJsonAsync<JsonElement>($"/datasets/{id}");
        Assert.Equal(view.GetRawText(), got.GetRawText());

        using HttpResponseMessage second = await PostBuiltin(client, """{ "name": "second", "samples": 10, "testSamples": 0, "imageSize": 16 }""");
        Guid secondId = (await ReadJsonAsync(second)).GetProperty("id").GetGuid();
        JsonElement list = await client.GetFromJsonAsync<JsonElement>("/datasets");
        Assert.Equal([secondId, id], list.EnumerateArray().Select(d => d.GetProperty("id").GetGuid()));
        Assert.Equal(0, list[0].GetProperty("testCount").GetInt32());

        ImageDataset dataset = await LoadAsync(factory, id);
        byte[] png = await client.GetByteArrayAsync($"/datasets/{id}/samples/5.png");
        Assert.Equal((16, 16, (byte)0), PngHeader(png));
        AssertPixels(png, dataset, index: 5, scale: 1);
        byte[] large = await client.GetByteArrayAsync($"/datasets/{id}/samples/59.png?scale=3");
        Assert.Equal((48, 48, (byte)0), PngHeader(large));
        AssertPixels(large, dataset, index: 59, scale: 3);

        using HttpResponseMessage deleted = await client.DeleteAsync(new Uri($"/datasets/{id}", UriKind.Relative));
        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        Assert.False(Directory.Exists(DatasetFolder(factory, id)));
        using HttpResponseMessage gone = await client.GetAsync(new Uri($"/datasets/{id}", UriKind.Relative));
        await AssertProblemAsync(gone, HttpStatusCode.NotFound, "No such dataset");
        Assert.Equal([secondId], (await client.GetFromJsonAsync<JsonElement>("/datasets")).EnumerateArray().Select(d => d.GetProperty("id").GetGuid()));
    }

    [Fact]
    public async Task ColourSampleIsAnRgbPng()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        using HttpResponseMessage created = await PostBuiltin(client, """{ "classes": 10, "samples": 20, "testSamples": 0, "imageSize": 20, "channels": 3 }""");
        JsonElement view = await ReadJsonAsync(created);
        Guid id = view.GetProperty("id").GetGuid();
        Assert.Equal("[3,20,20]", view.GetProperty("shape").GetRawText());
        Assert.Equal(3, view.GetProperty("mean").GetArrayLength());
        Assert.Equal(10, view.GetProperty("classNames").GetArrayLength());

        byte[] png = await client.GetByteArrayAsync($"/datasets/{id}/samples/3.png?scale=2");

        Assert.Equal((40, 40, (byte)2), PngHeader(png));
        AssertPixels(png, await LoadAsync(factory, id), index: 3, scale: 2);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public async Task IdxUploadIsKeptAsRawIdxWithItsCountsAndMean(bool gzip, bool withTest)
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        byte[] images = Images(30, 5, 4, fourD: true), labels = Labels(30, 4);
        (string, byte[])[] files = withTest
            ? [("images", images), ("labels", labels), ("testImages", Images(9, 5, 4)), ("testLabels", Labels(9, 3))]
            : [("images", images), ("labels", labels)];
        if (gzip)
        {
            files = [.. files.Select(f => (f.Item1, Gzip(f.Item2)))];
        }

        using HttpResponseMessage response = await client.PostAsync(new Uri("/datasets", UriKind.Relative), Form("  digits  ", "idx", files));

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        JsonElement view = await ReadJsonAsync(response);
        Guid id = view.GetProperty("id").GetGuid();
        Assert.Equal("digits", view.GetProperty("name").GetString());
        Assert.Equal("idx", view.GetProperty("source").GetString());
        Assert.Equal(4, view.GetProperty("classes").GetInt32());
        Assert.Equal(30, view.GetProperty("trainCount").GetInt32());
        Assert.Equal(withTest ? 9 : 0, view.GetProperty("testCount").GetInt32());
        Assert.Equal("[1,5,4]", view.GetProperty("shape").GetRawText());
        Assert.Equal("[8,8,7,7]", view.GetProperty("classCounts").GetRawText());
        Assert.Equal(JsonValueKind.Null, view.GetProperty("classNames").ValueKind);
        double expectedMean = Pixels(images).Average(p => p / 255.0);
        Assert.Equal(expectedMean, view.GetProperty("mean")[0].GetDouble(), 5);

        string folder = DatasetFolder(factory, id);
        string[] expected = withTest
            ? [LocalDatasetCache.HashFile, DatasetStore.TestImagesFile, DatasetStore.TestLabelsFile, DatasetStore.TrainImagesFile, DatasetStore.TrainLabelsFile]
            : [LocalDatasetCache.HashFile, DatasetStore.TrainImagesFile, DatasetStore.TrainLabelsFile];
        Assert.Equal(expected, Directory.GetFiles(folder).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        // Raw 3-D IDX whatever came in: the same bytes as the grey 3-D form of the upload.
        Assert.Equal(Images(30, 5, 4), await File.ReadAllBytesAsync(Path.Combine(folder, DatasetStore.TrainImagesFile)));
        Assert.Equal(labels, await File.ReadAllBytesAsync(Path.Combine(folder, DatasetStore.TrainLabelsFile)));
        Assert.Empty(Directory.GetDirectories(Path.Combine(factory.DataFolder, "datasets"), ".incoming-*"));
        await using AsyncServiceScope scope = factory.Services.CreateAsyncScope();
        DatasetRecord record = await scope.ServiceProvider.GetRequiredService<TrainingDb>().Datasets.SingleAsync();
        Assert.Equal((id, Storage.DefaultOwner, 30), (record.Id, record.Owner, record.TrainCount));
    }

    [Fact]
    public async Task ColourIdxUploadKeepsItsChannels()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        byte[] images = Images(6, 3, 2, channels: 3);

        using HttpResponseMessage response = await client.PostAsync(
            new Uri("/datasets", UriKind.Relative), Form("colour", "IDX", ("images", images), ("labels", Labels(6, 2))));

        JsonElement view = await ReadJsonAsync(response);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal("[3,3,2]", view.GetProperty("shape").GetRawText());
        Guid id = view.GetProperty("id").GetGuid();
        Assert.Equal(images, await File.ReadAllBytesAsync(Path.Combine(DatasetFolder(factory, id), DatasetStore.TrainImagesFile)));
        byte[] png = await client.GetByteArrayAsync($"/datasets/{id}/samples/5.png");
        Assert.Equal((2, 3, (byte)2), PngHeader(png));
    }

    public static TheoryData<string, string, string, string?> RejectedUploads() => new()
    {
        // case, field at fault, part of the detail, title (null: any)
        { "missing images", "images", "The file images is required", "The upload is invalid" },
        { "missing labels", "labels", "The file labels is required", null },
        { "missing name", "name", "name is required", null },
        { "blank name", "name", "name must have 1 to 200 characters", null },
        { "missing format", "format", "format is required", null },
        { "unknown format", "format", "Unknown format \"tiff\"", null },
        { "unknown field", "trainImages", "Unknown field \"trainImages\"", null },
        { "images twice", "images", "images is given twice", null },
        { "test images without labels", "testLabels", "send both test files or neither", null },
        { "corrupt magic", "images", "images: bad magic number 0x89504E47: neither an IDX nor a gzip file", "A dataset file is not valid IDX" },
        { "truncated", "labels", "labels: truncated", "A dataset file is not valid IDX" },
        { "truncated gzip", "images", "images: truncated: header declares 8 images of 4×4 (128 bytes) but the decompressed file ends", null },
        { "corrupt gzip", "images", "images: corrupt gzip data", null },
        { "count mismatch", "labels", "labels: count mismatch: 7 labels for 8 images", null },
        { "test size mismatch", "testImages", "testImages: size mismatch: test images are 5×5 but train images are 4×4", null },
        { "test count mismatch", "testLabels", "testLabels: count mismatch", null },
        { "empty file", "labels", "labels: the file is empty", null },
    };

    [Theory]
    [MemberData(nameof(RejectedUploads))]
    public async Task RejectedUploadGets400NamingTheFieldAndLeavesNothingBehind(string rejection, string field, string detail, string? title)
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        byte[] images = Images(8, 4, 4), labels = Labels(8, 3);
        byte[] truncated = labels[..10];
        byte[] gzip = Gzip(images);
        using MultipartFormDataContent form = rejection switch
        {
            "missing images" => Form("d", "idx", ("labels", labels)),
            "missing labels" => Form("d", "idx", ("images", images)),
            "missing name" => Form(null, "idx", ("images", images), ("labels", labels)),
            "blank name" => Form("   ", "idx", ("images", images), ("labels", labels)),
            "missing format" => Form("d", null, ("images", images), ("labels", labels)),
            "unknown format" => Form("d", "tiff", ("images", images), ("labels", labels)),
            "unknown field" => Form("d", "idx", ("trainImages", images), ("labels", labels)),
            "images twice" => Form("d", "idx", ("images", images), ("images", images), ("labels", labels)),
            "test images without labels" => Form("d", "idx", ("images", images), ("labels", labels), ("testImages", images)),
            "corrupt magic" => Form("d", "idx", ("images", [0x89, (byte)'P', (byte)'N', (byte)'G', 0, 0, 0, 0]), ("labels", labels)),
            "truncated" => Form("d", "idx", ("images", images), ("labels", truncated)),
            "truncated gzip" => Form("d", "idx", ("images", gzip[..(gzip.Length / 2)]), ("labels", labels)),
            // A gzip header, then a deflate block of the reserved type 3.
            "corrupt gzip" => Form("d", "idx", ("images", [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xFF, 0xFF, 0xFF]), ("labels", labels)),
            "count mismatch" => Form("d", "idx", ("images", images), ("labels", Labels(7, 3))),
            "test size mismatch" => Form("d", "idx", ("images", images), ("labels", labels), ("testImages", Images(2, 5, 5)), ("testLabels", Labels(2, 2))),
            "test count mismatch" => Form("d", "idx", ("images", images), ("labels", labels), ("testImages", Images(2, 4, 4)), ("testLabels", Labels(3, 2))),
            "empty file" => Form("d", "idx", ("images", images), ("labels", [])),
            _ => throw new ArgumentOutOfRangeException(nameof(rejection), rejection, null),
        };

        using HttpResponseMessage response = await client.PostAsync(new Uri("/datasets", UriKind.Relative), form);

        JsonElement problem = await AssertProblemAsync(response, HttpStatusCode.BadRequest, title);
        Assert.Equal(field, problem.GetProperty("field").GetString());
        Assert.Contains(detail, problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        await AssertNothingKeptAsync(factory);
    }

    [Fact]
    public async Task UploadThatIsNotMultipartGets415()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();

        using HttpResponseMessage response = await client.PostAsync(
            new Uri("/datasets", UriKind.Relative), new StringContent("""{ "name": "x" }""", Encoding.UTF8, "application/json"));

        await AssertProblemAsync(response, HttpStatusCode.UnsupportedMediaType, "A dataset upload must be multipart/form-data");
        await AssertNothingKeptAsync(factory);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task UploadOverTheConfiguredLimitGets413ProblemDetails(bool knownLength)
    {
        await using var factory = new TrainingServiceFactory(new() { ["Uploads:MaxRequestBytes"] = "4000" });
        using HttpClient client = factory.CreateClient();
        using MultipartFormDataContent form = Form("big", "idx", ("labels", Labels(100, 2)));
        byte[] images = Images(100, 8, 8);
        // A stream that cannot tell its length makes the request chunked: no Content-Length to refuse up front.
        form.Add(knownLength ? new ByteArrayContent(images) : new StreamContent(new UnknownLengthStream(images)), "images", "images.idx");

        using HttpResponseMessage response = await client.PostAsync(new Uri("/datasets", UriKind.Relative), form);

        JsonElement problem = await AssertProblemAsync(response, HttpStatusCode.RequestEntityTooLarge, "The upload is too large");
        Assert.Contains("4,000 bytes", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        await AssertNothingKeptAsync(factory);
    }

    [Fact]
    public async Task UploadUnderTheConfiguredLimitIsAccepted()
    {
        await using var factory = new TrainingServiceFactory(new() { ["Uploads:MaxRequestBytes"] = "4000" });
        using HttpClient client = factory.CreateClient();

        using HttpResponseMessage response = await client.PostAsync(
            new Uri("/datasets", UriKind.Relative), Form("small", "idx", ("images", Images(10, 8, 8)), ("labels", Labels(10, 2))));

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
    }

    [Theory]
    [InlineData("""{ "classes": 11 }""", "classes", "classes must be between 2 and 10, but was 11.")]
    [InlineData("""{ "channels": 2 }""", "channels", "channels must be 1 or 3, but was 2.")]
    [InlineData("""{ "imageSize": 8 }""", "imageSize", "imageSize must be between 16 and 64, but was 8.")]
    [InlineData("""{ "testSamples": -1 }""", "testSamples", "testSamples must be between 0 and 100000, but was -1.")]
    [InlineData("""{ "kind": "mnist" }""", "kind", "Unknown kind \"mnist\"; the only kind is \"shapes\".")]
    [InlineData("""{ "name": " " }""", "name", "name must have 1 to 200 characters.")]
    public async Task BuiltinOutOfRangeGetsValidationProblemKeyedByTheOption(string body, string field, string message)
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();

        using HttpResponseMessage response = await PostBuiltin(client, body);

        JsonElement problem = await AssertProblemAsync(response, HttpStatusCode.BadRequest, null);
        JsonProperty error = Assert.Single(problem.GetProperty("errors").EnumerateObject());
        Assert.Equal(field, error.Name);
        Assert.Equal(message, Assert.Single(error.Value.EnumerateArray()).GetString());
        await AssertNothingKeptAsync(factory);
    }

    [Fact]
    public async Task BuiltinBodyThatIsNotJsonGetsProblemDetails()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();

        using HttpResponseMessage response = await PostBuiltin(client, "{ classes: ");

        await AssertProblemAsync(response, HttpStatusCode.BadRequest, null);
    }

    [Fact]
    public async Task DatasetInUseByAnUnfinishedJobCannotBeDeleted()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        Guid id = await CreateTinyAsync(client);
        Guid jobId = Guid.NewGuid();
        await using (AsyncServiceScope scope = factory.Services.CreateAsyncScope())
        {
            TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
            db.Jobs.Add(new JobRecord
            {
                Id = jobId,
                Owner = Storage.DefaultOwner,
                State = RunState.Running,
                Spec = new(),
                DatasetId = id,
                Hyperparameters = new(),
                Monitoring = new(),
                CreatedAt = DateTime.UtcNow,
            });
            await db.SaveChangesAsync();
        }

        using HttpResponseMessage refused = await client.DeleteAsync(new Uri($"/datasets/{id}", UriKind.Relative));

        JsonElement problem = await AssertProblemAsync(refused, HttpStatusCode.Conflict, "The dataset is in use");
        Assert.Equal([jobId], problem.GetProperty("jobIds").EnumerateArray().Select(j => j.GetGuid()));
        Assert.True(Directory.Exists(DatasetFolder(factory, id)));

        await using (AsyncServiceScope scope = factory.Services.CreateAsyncScope())
        {
            TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
            await db.Jobs.Where(j => j.Id == jobId).ExecuteUpdateAsync(s => s.SetProperty(j => j.State, RunState.Succeeded));
        }

        using HttpResponseMessage deleted = await client.DeleteAsync(new Uri($"/datasets/{id}", UriKind.Relative));
        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
    }

    [Theory]
    [InlineData("GET", "")]
    [InlineData("DELETE", "")]
    [InlineData("GET", "/samples/0.png")]
    public async Task UnknownDatasetGets404ProblemDetails(string method, string suffix)
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        Guid id = Guid.NewGuid();

        using HttpResponseMessage response = await client.SendAsync(new HttpRequestMessage(new HttpMethod(method), $"/datasets/{id}{suffix}"));

        JsonElement problem = await AssertProblemAsync(response, HttpStatusCode.NotFound, "No such dataset");
        Assert.Equal($"There is no dataset {id}.", problem.GetProperty("detail").GetString());
    }

    [Theory]
    [InlineData(60, HttpStatusCode.NotFound, "No such sample")]
    [InlineData(-1, HttpStatusCode.NotFound, "No such sample")]
    public async Task SampleOutsideTheTrainSplitGets404(int index, HttpStatusCode status, string title)
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        Guid id = await CreateTinyAsync(client);

        using HttpResponseMessage response = await client.GetAsync(new Uri($"/datasets/{id}/samples/{index}.png", UriKind.Relative));

        JsonElement problem = await AssertProblemAsync(response, status, title);
        Assert.Equal($"Dataset {id} has train images 0 to 59; there is no image {index}.", problem.GetProperty("detail").GetString());
    }

    [Theory]
    [InlineData("0")]
    [InlineData("17")]
    public async Task SampleScaleOutOfRangeGets400(string scale)
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        Guid id = await CreateTinyAsync(client);

        using HttpResponseMessage response = await client.GetAsync(new Uri($"/datasets/{id}/samples/0.png?scale={scale}", UriKind.Relative));

        JsonElement problem = await AssertProblemAsync(response, HttpStatusCode.BadRequest, null);
        Assert.True(problem.GetProperty("errors").TryGetProperty("scale", out _));
    }

    [Fact]
    public async Task StoreLoadsFromFilesAfterARestartAndCachesWhatItLoaded()
    {
        string dataFolder = Directory.CreateTempSubdirectory("trainingservice-tests-").FullName;
        try
        {
            Guid id;
            await using (var first = new TrainingServiceFactory(dataFolder: dataFolder))
            {
                using HttpClient client = first.CreateClient();
                id = await CreateTinyAsync(client);
            }

            await using var factory = new TrainingServiceFactory(dataFolder: dataFolder);
            using HttpClient restarted = factory.CreateClient();
            JsonElement view = await restarted.GetFromJsonAsync<JsonElement>($"/datasets/{id}");
            Assert.Equal("[20,20,20]", view.GetProperty("classCounts").GetRawText());
            DatasetStore store = factory.Services.GetRequiredService<DatasetStore>();
            DatasetRecord record = await RecordAsync(factory, id);

            ImageDataset loaded = store.Load(record);

            Assert.Equal("tiny", loaded.Name);
            Assert.Equal((3, 1, 16, 16, 60, 12), (loaded.Classes, loaded.Channels, loaded.Height, loaded.Width, loaded.Train.Count, loaded.Test?.Count));
            Assert.Equal(record.Mean, loaded.Mean);
            Assert.Same(loaded, store.Load(record));
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(dataFolder, recursive: true);
        }
    }

    [Fact]
    public async Task StoreKeepsTheMostRecentlyUsedDatasetsWithinItsByteBudgetAndForgetsDeletedOnes()
    {
        const long Tiny = (60 + 12) * 16 * 16, Budget = 4 * Tiny; // four tiny datasets' pixels
        await using var factory = new TrainingServiceFactory(new()
        {
            ["Uploads:CacheBytes"] = Budget.ToString(CultureInfo.InvariantCulture),
            ["Uploads:MaxDatasetBytes"] = Budget.ToString(CultureInfo.InvariantCulture),
        });
        using HttpClient client = factory.CreateClient();
        DatasetStore store = factory.Services.GetRequiredService<DatasetStore>();
        var records = new List<DatasetRecord>();
        for (int i = 0; i < 10; i++)
        {
            records.Add(await RecordAsync(factory, await CreateTinyAsync(client)));
            Assert.InRange(store.CachedBytes, Tiny, Budget);
        }

        Assert.Equal((4, Budget), (store.CachedCount, store.CachedBytes));
        ImageDataset oldest = store.Load(records[0]);
        Assert.Same(oldest, store.Load(records[0]));
        foreach (DatasetRecord record in records.Skip(1))
        {
            store.Load(record);
            Assert.InRange(store.CachedBytes, Tiny, Budget);
        }

        Assert.NotSame(oldest, store.Load(records[0]));
        Assert.Equal(oldest.Train.Images, store.Load(records[0]).Train.Images);

        using HttpResponseMessage deleted = await client.DeleteAsync(new Uri($"/datasets/{records[0].Id}", UriKind.Relative));
        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        DatasetFormatException gone = Assert.Throws<DatasetFormatException>(() => store.Load(records[0]));
        Assert.IsType<DirectoryNotFoundException>(gone.InnerException);
        Assert.Equal($"dataset: {DatasetStore.Unreadable}", gone.Message);
    }

    [Fact]
    public async Task SwaggerHasAWorkingBuiltinExampleAndAnUploadForm()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();

        JsonElement document = await client.GetFromJsonAsync<JsonElement>("/swagger/v1/swagger.json");

        JsonElement paths = document.GetProperty("paths");
        JsonElement example = paths.GetProperty("/datasets/builtin").GetProperty("post").GetProperty("requestBody")
            .GetProperty("content").GetProperty("application/json").GetProperty("example");
        using HttpResponseMessage created = await PostBuiltin(client, example.GetRawText());
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        JsonElement form = paths.GetProperty("/datasets").GetProperty("post").GetProperty("requestBody")
            .GetProperty("content").GetProperty("multipart/form-data").GetProperty("schema");
        Assert.Equal("binary", form.GetProperty("properties").GetProperty("images").GetProperty("format").GetString());
        Assert.Equal(["name", "format", "images"], form.GetProperty("required").EnumerateArray().Select(r => r.GetString())); // labels: idx only
        Assert.Equal(["idx", "csv", "cifar", "imagefolder"], form.GetProperty("properties").GetProperty("format").GetProperty("enum").EnumerateArray().Select(r => r.GetString()));
        Assert.Equal("binary", form.GetProperty("properties").GetProperty("archive").GetProperty("format").GetString());
        Assert.Equal(["crop", "pad"], form.GetProperty("properties").GetProperty("fit").GetProperty("enum").EnumerateArray().Select(r => r.GetString()));
        Assert.Equal(["cifar10", "cifar100", "cifar100-coarse"], form.GetProperty("properties").GetProperty("variant").GetProperty("enum").EnumerateArray().Select(r => r.GetString()));
        Assert.True(form.GetProperty("properties").TryGetProperty("imageSize", out _));
        Assert.True(form.GetProperty("properties").TryGetProperty("classNames", out _));
        Assert.True(paths.GetProperty("/datasets/{id}/samples/{index}.png").TryGetProperty("get", out _));
    }

    private static Task<HttpResponseMessage> PostBuiltin(HttpClient client, string json) =>
        client.PostAsync(new Uri("/datasets/builtin", UriKind.Relative), new StringContent(json, Encoding.UTF8, "application/json"));

    private static async Task<Guid> CreateTinyAsync(HttpClient client)
    {
        using HttpResponseMessage response = await PostBuiltin(client, TinyShapes);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await ReadJsonAsync(response)).GetProperty("id").GetGuid();
    }

    private static string DatasetFolder(TrainingServiceFactory factory, Guid id) =>
        Path.Combine(factory.DataFolder, "datasets", id.ToString("N"));

    private static async Task<DatasetRecord> RecordAsync(TrainingServiceFactory factory, Guid id)
    {
        await using AsyncServiceScope scope = factory.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<TrainingDb>().Datasets.AsNoTracking().SingleAsync(d => d.Id == id);
    }

    private static async Task<ImageDataset> LoadAsync(TrainingServiceFactory factory, Guid id) =>
        factory.Services.GetRequiredService<DatasetStore>().Load(await RecordAsync(factory, id));

    private static async Task<JsonElement> AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status, string? title)
    {
        Assert.Equal(status, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        JsonElement problem = await ReadJsonAsync(response);
        Assert.Equal((int)status, problem.GetProperty("status").GetInt32());
        if (title is not null)
        {
            Assert.Equal(title, problem.GetProperty("title").GetString());
        }

        return problem;
    }

    private static void AssertPixels(byte[] png, ImageDataset dataset, int index, int scale)
    {
        using SKBitmap bitmap = SKBitmap.Decode(png);
        int plane = dataset.Height * dataset.Width;
        int offset = index * dataset.SampleSize;
        for (int y = 0; y < bitmap.Height; y++)
        {
            for (int x = 0; x < bitmap.Width; x++)
            {
                int source = offset + ((y / scale) * dataset.Width) + (x / scale);
                SKColor colour = bitmap.GetPixel(x, y);
                byte[] expected = dataset.Channels == 1
                    ? [dataset.Train.Images[source], dataset.Train.Images[source], dataset.Train.Images[source]]
                    : [dataset.Train.Images[source], dataset.Train.Images[source + plane], dataset.Train.Images[source + (2 * plane)]];
                Assert.Equal(expected, new[] { colour.Red, colour.Green, colour.Blue });
            }
        }
    }

    private sealed class UnknownLengthStream(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
    }
}
