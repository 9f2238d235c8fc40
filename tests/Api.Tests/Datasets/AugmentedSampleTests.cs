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

/// <summary>GET /datasets/{id}/samples/{index}.png with augmentation: what a job trains on, for the dashboard and curl.</summary>
public sealed class AugmentedSampleTests
{
    private const string Query = "randomCrop=4&horizontalFlip=true&translate=2&seed=7";

    [Fact]
    public async Task AnAugmentedSampleIsTheImageAsAJobWithThatSeedTrainsOnItInThatEpoch()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        Guid id = await CreateTinyAsync(client);
        ImageDataset dataset = await LoadAsync(factory, id);
        var options = new AugmentationOptions { RandomCrop = new RandomCropOptions { Padding = 4 }, HorizontalFlip = true, Translate = 2 };

        var variants = new List<byte[]>();
        for (int variant = 1; variant <= 8; variant++)
        {
            byte[] png = await client.GetByteArrayAsync($"/datasets/{id}/samples/5.png?{Query}&variant={variant}&scale=2");

            Assert.Equal((32, 32, (byte)0), PngHeader(png));
            var expected = new byte[dataset.SampleSize];
            Augmentation.Apply(dataset.Train.Images.AsSpan(5 * dataset.SampleSize, dataset.SampleSize), expected, 1, 16, 16, Augmentation.For(options, seed: 7, epoch: variant, index: 5));
            AssertGreyPixels(png, expected, width: 16, scale: 2);
            variants.Add(png);
        }

        Assert.True(variants.DistinctBy(Convert.ToBase64String).Count() >= 6, "the variants differ");
        Assert.Equal(variants[2], await client.GetByteArrayAsync($"/datasets/{id}/samples/5.png?{Query}&variant=3&scale=2")); // the same every time
        byte[] plain = await client.GetByteArrayAsync($"/datasets/{id}/samples/5.png");
        Assert.Equal(plain, await client.GetByteArrayAsync($"/datasets/{id}/samples/5.png?seed=7&variant=3&horizontalFlip=false")); // nothing asked for: the image itself
    }

    [Theory]
    [InlineData("randomCrop=0", "randomCrop", "randomCrop must be from 1 to 8")]
    [InlineData("randomCrop=9", "randomCrop", "got 9")]
    [InlineData("translate=5&horizontalFlip=true", "translate", "translate must be from 1 to 4 pixels")]
    [InlineData("translate=-1", "translate", "got -1")]
    [InlineData("randomCrop=2&variant=0", "variant", "variant must be an epoch")]
    [InlineData("randomCrop=2&variant=10001", "variant", "10001")]
    public async Task AnAugmentationOutOfRangeGets400NamingItsParameter(string query, string field, string says)
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        Guid id = await CreateTinyAsync(client);

        using HttpResponseMessage response = await client.GetAsync(new Uri($"/datasets/{id}/samples/0.png?{query}", UriKind.Relative));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        JsonElement errors = (await ReadJsonAsync(response)).GetProperty("errors");
        Assert.Equal([field], errors.EnumerateObject().Select(p => p.Name));
        Assert.Contains(says, errors.GetProperty(field)[0].GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("randomCrop=four", "randomCrop")]
    [InlineData("horizontalFlip=maybe", "horizontalFlip")]
    [InlineData("seed=1.5", "seed")]
    public async Task AValueOfTheWrongTypeGets400NamingItsParameter(string query, string field)
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        Guid id = await CreateTinyAsync(client);

        using HttpResponseMessage response = await client.GetAsync(new Uri($"/datasets/{id}/samples/0.png?{query}", UriKind.Relative));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        JsonElement problem = await ReadJsonAsync(response);
        Assert.Equal(field, problem.GetProperty("field").GetString());
        Assert.Contains(field, problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task SwaggerDescribesTheAugmentationParameters()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();

        JsonElement document = await client.GetFromJsonAsync<JsonElement>("/swagger/v1/swagger.json");

        JsonElement get = document.GetProperty("paths").GetProperty("/datasets/{id}/samples/{index}.png").GetProperty("get");
        Dictionary<string, string?> parameters = get.GetProperty("parameters").EnumerateArray()
            .ToDictionary(p => p.GetProperty("name").GetString()!, p => p.TryGetProperty("description", out JsonElement d) ? d.GetString() : null);
        Assert.Equal(["id", "index", "scale", "randomCrop", "horizontalFlip", "translate", "seed", "variant"], parameters.Keys);
        Assert.Contains("half the image's shorter side", parameters["randomCrop"], StringComparison.Ordinal);
        Assert.Contains("epoch", parameters["variant"], StringComparison.Ordinal);
        Assert.Contains("variant", get.GetProperty("description").GetString(), StringComparison.Ordinal);
    }

    private static async Task<Guid> CreateTinyAsync(HttpClient client)
    {
        using HttpResponseMessage response = await client.PostAsync(new Uri("/datasets/builtin", UriKind.Relative),
            new StringContent("""{ "kind": "shapes", "classes": 3, "samples": 60, "testSamples": 0, "imageSize": 16, "seed": 7 }""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await ReadJsonAsync(response)).GetProperty("id").GetGuid();
    }

    private static async Task<ImageDataset> LoadAsync(TrainingServiceFactory factory, Guid id)
    {
        await using AsyncServiceScope scope = factory.Services.CreateAsyncScope();
        DatasetRecord record = await scope.ServiceProvider.GetRequiredService<TrainingDb>().Datasets.AsNoTracking().SingleAsync(d => d.Id == id);
        return factory.Services.GetRequiredService<DatasetStore>().Load(record);
    }

    private static void AssertGreyPixels(byte[] png, byte[] expected, int width, int scale)
    {
        using SKBitmap bitmap = SKBitmap.Decode(png);
        for (int y = 0; y < bitmap.Height; y++)
        {
            for (int x = 0; x < bitmap.Width; x++)
            {
                byte value = expected[((y / scale) * width) + (x / scale)];
                Assert.Equal(new SKColor(value, value, value), bitmap.GetPixel(x, y));
            }
        }
    }
}
