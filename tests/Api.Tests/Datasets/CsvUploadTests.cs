using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using TrainingService.Api.Datasets;
using TrainingService.Api.Persistence;
using TrainingService.Api.Tests.Service;
using TrainingService.Training.Data;

namespace TrainingService.Api.Tests.Datasets;

/// <summary>POST /datasets with format csv: the Kaggle MNIST layout, label first, then the pixels; with or without a header.</summary>
public sealed class CsvUploadTests
{
    private static string Csv(int images, bool header, Func<int, int, string>? cell = null)
    {
        var text = new StringBuilder();
        if (header)
        {
            text.Append("label,").AppendJoin(',', Enumerable.Range(0, 12).Select(i => $"pixel{i}")).Append('\n');
        }

        for (int n = 0; n < images; n++)
        {
            text.Append(n % 3).Append(',').AppendJoin(',', Enumerable.Range(0, 12).Select(i => cell?.Invoke(n, i) ?? ((n * 12) + i).ToString(System.Globalization.CultureInfo.InvariantCulture))).Append('\n');
        }

        return text.ToString();
    }

    private static MultipartFormDataContent Form(string? images, string? test = null, (string Field, string Value)[]? fields = null)
    {
        var form = new MultipartFormDataContent { { new StringContent("digits"), "name" }, { new StringContent("csv"), "format" } };
        foreach ((string field, string value) in fields ?? [("channels", "3"), ("height", "2"), ("width", "2")])
        {
            form.Add(new StringContent(value), field);
        }

        if (images is not null)
        {
            form.Add(new ByteArrayContent(Encoding.UTF8.GetBytes(images)), "images", "train.csv");
        }

        if (test is not null)
        {
            form.Add(new ByteArrayContent(Encoding.UTF8.GetBytes(test)), "testImages", "test.csv");
        }

        return form;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ACsvWithOrWithoutHeaderBecomesADatasetChannelByChannel(bool header)
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        HttpResponseMessage response = await client.PostAsync(new Uri("/datasets", UriKind.Relative), Form(Csv(9, header), Csv(3, header: false)));
        JsonElement view = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(response.StatusCode == HttpStatusCode.Created, view.ToString());
        Assert.Equal("csv", view.GetProperty("source").GetString());
        Assert.Equal([3, 2, 2], view.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()));
        Assert.Equal((9, 3, 3), (view.GetProperty("trainCount").GetInt32(), view.GetProperty("testCount").GetInt32(), view.GetProperty("classes").GetInt32()));

        await using AsyncServiceScope scope = factory.Services.CreateAsyncScope();
        DatasetRecord record = scope.ServiceProvider.GetRequiredService<TrainingDb>().Datasets.Single();
        ImageDataset data = scope.ServiceProvider.GetRequiredService<DatasetStore>().Load(record);
        Assert.Equal([.. Enumerable.Range(12, 12).Select(v => (byte)v)], data.Train.Images[12..24]); // image 1, as written
        Assert.Equal((byte)1, data.Train.Labels[1]);
    }

    public static TheoryData<string, string, string> Rejected => new()
    {
        // case, field at fault, part of the detail
        { "wrong column count", "images", "images: line 3: 12 columns, but 3×2×2 images need 13" },
        { "non-numeric pixel", "images", "images: line 2, column 5: \"x\" is not a number" },
        { "pixel out of range", "images", "images: line 1, column 2: 300 is outside the pixel range 0..255" },
        { "bad label", "images", "images: line 2, column 1: the label \"-1\" is not a class index" },
        { "header only", "images", "images: no images" },
        { "one class", "images", "every label is 0" },
        { "test columns", "testImages", "testImages: line 1: 5 columns" },
        { "missing height", "height", "height is required with format csv" },
        { "height not a number", "height", "height must be a whole number 1..1024" },
        { "labels file", "labels", "A CSV has its labels in its first column" },
    };

    [Theory]
    [MemberData(nameof(Rejected))]
    public async Task ABrokenCsvGets400NamingTheFieldTheLineAndTheColumn(string rejection, string field, string detail)
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        string good = Csv(4, header: false);
        MultipartFormDataContent form = rejection switch
        {
            "wrong column count" => Form(string.Join('\n', good.Split('\n').Select((l, i) => i == 2 ? l[..l.LastIndexOf(',')] : l))),
            "non-numeric pixel" => Form(Csv(4, false, (n, i) => n == 1 && i == 3 ? "x" : "7")),
            "pixel out of range" => Form(Csv(4, false, (n, i) => n == 0 && i == 0 ? "300" : "7")),
            "bad label" => Form(good.Replace("\n1,", "\n-1,", StringComparison.Ordinal)),
            "header only" => Form(Csv(0, header: true)),
            "one class" => Form("0," + string.Join(',', Enumerable.Repeat("1", 12)) + "\n"),
            "test columns" => Form(good, "1,2,3,4,5\n"),
            "missing height" => Form(good, fields: [("channels", "3"), ("width", "2")]),
            "height not a number" => Form(good, fields: [("channels", "3"), ("height", "two"), ("width", "2")]),
            "labels file" => AddLabels(Form(good)),
            _ => throw new ArgumentOutOfRangeException(nameof(rejection)),
        };
        using (form)
        {
            JsonElement problem = await ServiceHarness.AssertProblemAsync(await client.PostAsync(new Uri("/datasets", UriKind.Relative), form), HttpStatusCode.BadRequest);
            Assert.Equal(field, problem.GetProperty("field").GetString());
            Assert.Contains(detail, problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }

        await DatasetFiles.AssertNothingKeptAsync(factory);
    }

    private static MultipartFormDataContent AddLabels(MultipartFormDataContent form)
    {
        form.Add(new ByteArrayContent([1, 2, 3]), "labels", "labels.idx");
        return form;
    }
}
