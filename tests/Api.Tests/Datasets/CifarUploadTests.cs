using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using TrainingService.Api.Datasets;
using TrainingService.Api.Persistence;
using TrainingService.Api.Tests.Jobs;
using TrainingService.Api.Tests.Service;
using TrainingService.Training.Data;
using static TrainingService.Api.Tests.Datasets.ArchiveFiles;

namespace TrainingService.Api.Tests.Datasets;

/// <summary>POST /datasets with format cifar: CIFAR-10/100 binary batches as file parts or in their .tar.gz.</summary>
public sealed class CifarUploadTests
{
    private static readonly string[] s_names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

    private const string TinyCifarSpec = """
        { "input": { "channels": 3, "height": 32, "width": 32 },
          "layers": [ { "kind": "conv2d", "filters": 4, "kernel": 3, "stride": 2 }, { "kind": "relu" }, { "kind": "maxpool2d", "kernel": 2 },
                      { "kind": "flatten" }, { "kind": "linear", "units": 10 } ] }
        """;

    // batches.meta.txt as CIFAR-10 ships it: one name per line, then blank lines.
    private static byte[] Meta(IEnumerable<string> names) => Encoding.UTF8.GetBytes(string.Join('\n', names) + "\n\n");

    private static async Task<JsonElement> CreatedAsync(HttpResponseMessage response)
    {
        JsonElement view = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(response.StatusCode == HttpStatusCode.Created, view.ToString());
        return view;
    }

    private static async Task<ImageDataset> LoadAsync(TrainingServiceFactory factory)
    {
        await using AsyncServiceScope scope = factory.Services.CreateAsyncScope();
        DatasetRecord record = await scope.ServiceProvider.GetRequiredService<TrainingDb>().Datasets.AsNoTracking().SingleAsync();
        return scope.ServiceProvider.GetRequiredService<DatasetStore>().Load(record);
    }

    [Fact]
    public async Task BatchesSentAsFilePartsBecomeOneTrainSplitWithTheirNames()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        using MultipartFormDataContent form = Form("cifar", [],
            ("images", "data_batch_1.bin", Cifar10(5)),
            ("images", "data_batch_2.bin", Cifar10(4, first: 5)),
            ("testImages", "test_batch.bin", Cifar10(3, first: 7)),
            ("classNames", "batches.meta.txt", Meta(s_names)));

        JsonElement view = await CreatedAsync(await client.PostAsync(new Uri("/datasets", UriKind.Relative), form));

        Assert.Equal("cifar", view.GetProperty("source").GetString());
        Assert.Equal("[3,32,32]", view.GetProperty("shape").GetRawText());
        Assert.Equal((10, 9, 3), (view.GetProperty("classes").GetInt32(), view.GetProperty("trainCount").GetInt32(), view.GetProperty("testCount").GetInt32()));
        Assert.Equal(s_names, view.GetProperty("classNames").EnumerateArray().Select(n => n.GetString()));
        Assert.Equal("[1,1,1,1,1,1,1,1,1,0]", view.GetProperty("classCounts").GetRawText());
        ImageDataset data = await LoadAsync(factory);
        Assert.Equal(Pixels(0), data.Train.Images[..CifarPixels]);
        Assert.Equal(Pixels(0), data.Train.Images[(5 * CifarPixels)..(6 * CifarPixels)]); // the second file's first record, after the first file's five
        Assert.Equal([0, 1, 2, 3, 4, 5, 6, 7, 8], data.Train.Labels);
        Assert.Equal([7, 8, 9], data.Test!.Labels);
        Assert.Equal(s_names, data.ClassNames);
    }

    [Fact]
    public async Task TheCifar10TarGzIsReadByFileNameAndTrainsAJob()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        byte[] archive = Tar(gzip: true,
            ("cifar-10-batches-bin", null),
            ("cifar-10-batches-bin/data_batch_2.bin", Cifar10(40, first: 3)),
            ("cifar-10-batches-bin/data_batch_1.bin", Cifar10(40)),
            ("cifar-10-batches-bin/test_batch.bin", Cifar10(20)),
            ("cifar-10-batches-bin/batches.meta.txt", Meta(s_names)),
            ("cifar-10-batches-bin/readme.html", Encoding.UTF8.GetBytes("<p>CIFAR-10</p>")));

        JsonElement view = await CreatedAsync(await client.PostAsync(
            new Uri("/datasets", UriKind.Relative), Form("cifar", [], ("archive", "cifar-10-binary.tar.gz", archive))));

        Assert.Equal((80, 20), (view.GetProperty("trainCount").GetInt32(), view.GetProperty("testCount").GetInt32()));
        Assert.Equal(s_names, view.GetProperty("classNames").EnumerateArray().Select(n => n.GetString()));
        Assert.Equal(0, (await LoadAsync(factory)).Train.Labels[0]); // data_batch_1 first, whatever the order in the tar
        Guid datasetId = view.GetProperty("id").GetGuid();
        Assert.Equal(s_names, (await client.GetFromJsonAsync<JsonElement>($"/datasets/{datasetId}")).GetProperty("classNames").EnumerateArray().Select(n => n.GetString()));

        (HttpResponseMessage response, JsonElement job) = await JobHarness.PostJobAsync(client,
            $$"""{ "datasetId": "{{datasetId}}", "model": {{TinyCifarSpec}}, "hyperparameters": { "epochs": 1, "batchSize": 16 } }""");
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, job.ToString());
        await JobHarness.WaitForStateAsync(client, job.GetProperty("id").GetGuid(), "Succeeded");
    }

    [Theory]
    [InlineData(null, 100)]
    [InlineData("cifar100", 100)]
    [InlineData("cifar100-coarse", 20)]
    public async Task TheCifar100TarTakesTheFineLabelUnlessAskedForTheCoarse(string? variant, int classes)
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        string[] fine = [.. Enumerable.Range(0, 100).Select(i => $"fine{i}")], coarse = [.. Enumerable.Range(0, 20).Select(i => $"coarse{i}")];
        byte[] archive = Tar(gzip: false,
            ("cifar-100-binary/train.bin", Cifar([3, 77], [19, 99], [0, 5])),
            ("cifar-100-binary/test.bin", Cifar([1, 42])),
            ("cifar-100-binary/fine_label_names.txt", Meta(fine)),
            ("cifar-100-binary/coarse_label_names.txt", Meta(coarse)));

        JsonElement view = await CreatedAsync(await client.PostAsync(new Uri("/datasets", UriKind.Relative),
            Form("cifar", variant is null ? [] : [("variant", variant)], ("archive", "cifar-100-binary.tar", archive))));

        Assert.Equal(classes, view.GetProperty("classes").GetInt32());
        Assert.Equal(classes == 100 ? fine : coarse, view.GetProperty("classNames").EnumerateArray().Select(n => n.GetString()));
        ImageDataset data = await LoadAsync(factory);
        Assert.Equal(classes == 100 ? [77, 99, 5] : new byte[] { 3, 19, 0 }, data.Train.Labels);
        Assert.Equal(classes == 100 ? [42] : new byte[] { 1 }, data.Test!.Labels);
        Assert.Equal(Pixels(1), data.Train.Images[CifarPixels..(2 * CifarPixels)]);
        Assert.Equal(classes, data.Classes); // as kept: the record's count, though the labels use few of them
    }

    [Fact]
    public async Task TheClassCountAndNamesOutliveARestartThoughTheLabelsUseFewClasses()
    {
        string dataFolder = Directory.CreateTempSubdirectory("trainingservice-tests-").FullName;
        try
        {
            Guid id;
            await using (var first = new TrainingServiceFactory(dataFolder: dataFolder))
            {
                using HttpClient client = first.CreateClient();
                id = (await CreatedAsync(await client.PostAsync(new Uri("/datasets", UriKind.Relative), Form("cifar", [],
                    ("images", "data_batch_1.bin", Cifar10(3)), ("classNames", "batches.meta.txt", Meta(s_names)))))).GetProperty("id").GetGuid();
            }

            await using var restarted = new TrainingServiceFactory(dataFolder: dataFolder);
            using HttpClient again = restarted.CreateClient();
            JsonElement view = await again.GetFromJsonAsync<JsonElement>($"/datasets/{id}");
            ImageDataset data = await LoadAsync(restarted); // from the IDX files: their largest label is 2

            Assert.Equal(10, view.GetProperty("classes").GetInt32());
            Assert.Equal("[1,1,1,0,0,0,0,0,0,0]", view.GetProperty("classCounts").GetRawText());
            Assert.Equal(s_names, view.GetProperty("classNames").EnumerateArray().Select(n => n.GetString()));
            Assert.Equal((10, 3), (data.Classes, data.Train.Count));
            Assert.Equal(s_names, data.ClassNames);
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(dataFolder, recursive: true);
        }
    }

    public static TheoryData<string, string, string> Rejected => new()
    {
        // case, field at fault, part of the detail
        { "truncated record", "images", "images: data_batch_1.bin: 10,219 bytes are not a whole number of 3,073-byte CIFAR-10 records: record 4 is truncated (1,000 of its 3,073 bytes)" },
        { "truncated record in the archive", "archive", "archive: cifar-10-batches-bin/data_batch_2.bin: 4,073 bytes are not a whole number of 3,073-byte CIFAR-10 records: record 2 is truncated" },
        { "label out of range", "images", "images: data_batch_1.bin: record 2: label 10 is outside 0..9 (CIFAR-10 has 10 classes)" },
        { "coarse label out of range", "images", "images: train.bin: record 1: coarse label 20 is outside 0..19 (CIFAR-100 has 20 superclasses)" },
        { "CIFAR-100 sent as CIFAR-10", "images", "images: train.bin: 9,222 bytes are not a whole number of 3,073-byte CIFAR-10 records: record 4 is truncated (3 of its 3,073 bytes); it is a whole number of 3,074-byte records, as CIFAR-100 has: send variant cifar100" },
        { "empty test file", "testImages", "testImages: test_batch.bin: the file is empty" },
        { "wrong number of class names", "classNames", "classNames: batches.meta.txt: 9 class names, but CIFAR-10 has 10 classes" },
        { "no train file in the archive", "archive", "archive: no CIFAR train file in the archive: expected data_batch_1.bin" },
        { "variant the archive lacks", "archive", "archive: variant cifar100 needs CIFAR-100's train.bin, and the archive has none; it has CIFAR-10's data_batch_*.bin" },
        { "two members of one name", "archive", "archive: two entries are named data_batch_1.bin (\"a/data_batch_1.bin\" and \"b/data_batch_1.bin\")" },
        { "entry escaping the folder", "archive", "archive: the entry \"../data_batch_1.bin\" escapes the archive's folder" },
        { "not a tar", "archive", "archive: not a valid tar (nor a gzip) file" },
        { "corrupt gzip", "archive", "archive: not a valid tar.gz file" },
        { "too many entries", "archive", "archive: too large: the archive has more than 3 entries (files and folders) (configuration Uploads:MaxArchiveEntries)" },
        { "too many bytes", "archive", "archive: too large: the upload's compressed files expand to more than 20,000 bytes (configuration Uploads:MaxUncompressedBytes)" },
        { "compression ratio", "archive", "archive: too large: the archive expands more than 100:1" },
        { "archive and images", "images", "The CIFAR files come either in archive (a .tar.gz) or as images, testImages and classNames, not both" },
        { "image size", "imageSize", "CIFAR images are 3×32×32: imageSize is not for format cifar." },
        { "unknown variant", "variant", "Unknown variant \"cifar1000\"" },
        { "no files", "images", "The file images is required with format cifar" },
        { "two archives", "archive", "archive is given twice." },
    };

    [Theory]
    [MemberData(nameof(Rejected))]
    public async Task ABrokenCifarUploadIsRefusedNamingTheFieldFileAndRecordAndKeepsNothing(string rejection, string field, string detail)
    {
        Dictionary<string, string?> settings = rejection switch
        {
            "too many entries" => new() { ["Uploads:MaxArchiveEntries"] = "3" },
            "too many bytes" => new() { ["Uploads:MaxUncompressedBytes"] = "20000" },
            _ => [],
        };
        await using var factory = new TrainingServiceFactory(settings);
        using HttpClient client = factory.CreateClient();
        byte[] good = Cifar10(3);
        using MultipartFormDataContent form = rejection switch
        {
            "truncated record" => Form("cifar", [], ("images", "data_batch_1.bin", [.. good, .. new byte[1000]])),
            "truncated record in the archive" => Form("cifar", [], ("archive", "c.tar.gz", Tar(true,
                ("cifar-10-batches-bin/data_batch_1.bin", good), ("cifar-10-batches-bin/data_batch_2.bin", [.. Cifar10(1), .. new byte[1000]])))),
            "label out of range" => Form("cifar", [], ("images", "data_batch_1.bin", Cifar([1], [10], [2]))),
            "coarse label out of range" => Form("cifar", [("variant", "cifar100")], ("images", "train.bin", Cifar([20, 1]))),
            "CIFAR-100 sent as CIFAR-10" => Form("cifar", [], ("images", "train.bin", Cifar([1, 1], [2, 2], [3, 3]))),
            "empty test file" => Form("cifar", [], ("images", "data_batch_1.bin", good), ("testImages", "test_batch.bin", [])),
            "wrong number of class names" => Form("cifar", [], ("images", "data_batch_1.bin", good), ("classNames", "batches.meta.txt", Meta(s_names[..9]))),
            "no train file in the archive" => Form("cifar", [], ("archive", "c.tar.gz", Tar(true, ("cifar-10-batches-bin/test_batch.bin", good)))),
            "variant the archive lacks" => Form("cifar", [("variant", "cifar100")], ("archive", "c.tar.gz", Tar(true, ("data_batch_1.bin", good)))),
            "two members of one name" => Form("cifar", [], ("archive", "c.tar.gz", Tar(true, ("a/data_batch_1.bin", good), ("b/data_batch_1.bin", good)))),
            "entry escaping the folder" => Form("cifar", [], ("archive", "c.tar.gz", Tar(true, ("../data_batch_1.bin", good)))),
            "not a tar" => Form("cifar", [], ("archive", "c.tar", Encoding.UTF8.GetBytes(new string('x', 2000)))),
            // A gzip header, then a deflate block of the reserved type 3.
            "corrupt gzip" => Form("cifar", [], ("archive", "c.tar.gz", [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xFF, 0xFF, 0xFF])),
            "too many entries" => Form("cifar", [], ("archive", "c.tar.gz", Tar(true,
                ("d", null), ("d/data_batch_1.bin", good), ("d/data_batch_2.bin", good), ("d/test_batch.bin", good)))),
            "too many bytes" => Form("cifar", [], ("archive", "c.tar.gz", Tar(true, ("data_batch_1.bin", Cifar10(7))))),
            "compression ratio" => Form("cifar", [], ("archive", "c.tar.gz", Tar(true, ("data_batch_1.bin", new byte[3073 * 1000])))),
            "archive and images" => Form("cifar", [], ("archive", "c.tar.gz", Tar(true, ("data_batch_1.bin", good))), ("images", "data_batch_1.bin", good)),
            "image size" => Form("cifar", [("imageSize", "32")], ("images", "data_batch_1.bin", good)),
            "unknown variant" => Form("cifar", [("variant", "cifar1000")], ("images", "data_batch_1.bin", good)),
            "no files" => Form("cifar", []),
            "two archives" => Form("cifar", [], ("archive", "a.tar.gz", Tar(true, ("data_batch_1.bin", good))), ("archive", "b.tar.gz", Tar(true, ("data_batch_1.bin", good)))),
            _ => throw new ArgumentOutOfRangeException(nameof(rejection)),
        };

        JsonElement problem = await ServiceHarness.AssertProblemAsync(await client.PostAsync(new Uri("/datasets", UriKind.Relative), form), DatasetFiles.StatusFor(detail));

        Assert.Equal(field, problem.GetProperty("field").GetString());
        Assert.Contains(detail, problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        await DatasetFiles.AssertNothingKeptAsync(factory);
    }
}
