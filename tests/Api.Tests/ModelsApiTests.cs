using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace TrainingService.Api.Tests;

public sealed class ModelsApiTests
{
    private const string LeNet = """
        { "name": "lenet5",
          "input": { "channels": 1, "height": 28, "width": 28 },
          "layers": [
            { "kind": "conv2d", "name": "conv1", "filters": 6, "kernel": 5, "stride": 1, "padding": 2 },
            { "kind": "relu" },
            { "kind": "maxpool2d", "kernel": 2, "stride": 2 },
            { "kind": "conv2d", "filters": 16, "kernel": 5 },
            { "kind": "relu" }, { "kind": "maxpool2d", "kernel": 2 },
            { "kind": "flatten" },
            { "kind": "linear", "units": 120 }, { "kind": "relu" },
            { "kind": "linear", "units": 84 }, { "kind": "relu" },
            { "kind": "linear", "units": 10 } ] }
        """;

    [Fact]
    public async Task ValidLeNetGetsItsPerLayerTable()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();

        using HttpResponseMessage response = await PostJson(client, LeNet);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        JsonElement body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(body.GetProperty("valid").GetBoolean());
        Assert.Equal("[10]", body.GetProperty("outputShape").GetRawText());
        Assert.Equal(61_706, body.GetProperty("totalParameters").GetInt64());
        JsonElement[] layers = [.. body.GetProperty("layers").EnumerateArray()];
        Assert.Equal(12, layers.Length);
        Assert.Equal(
            ["conv1", "relu1", "maxpool1", "conv2", "relu2", "maxpool2", "flatten1", "linear1", "relu3", "linear2", "relu4", "linear3"],
            layers.Select(l => l.GetProperty("name").GetString()));
        JsonElement conv2 = layers[3];
        Assert.Equal("[16,10,10]", conv2.GetProperty("outputShape").GetRawText());
        Assert.Equal(2_416, conv2.GetProperty("parameters").GetInt64());
        Assert.Equal(240_000, conv2.GetProperty("multiplyAdds").GetInt64());
        Assert.Equal("[14,14]", conv2.GetProperty("receptiveField").GetRawText());
        Assert.Equal("[2,2]", conv2.GetProperty("jump").GetRawText());
        Assert.Equal(JsonValueKind.Null, layers[7].GetProperty("receptiveField").ValueKind);
        Assert.Empty(body.GetProperty("errors").EnumerateArray());
    }

    [Fact]
    public async Task ImpossibleSpecGetsErrorsPinnedToLayerAndField()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        const string spec = """
            { "input": { "channels": 1, "height": 4, "width": 4 },
              "layers": [ { "kind": "conv2d", "filters": 8, "kernel": 5 }, { "kind": "flatten" }, { "kind": "linear", "units": 3 } ] }
            """;

        using HttpResponseMessage response = await PostJson(client, spec);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        JsonElement body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.False(body.GetProperty("valid").GetBoolean());
        JsonElement error = Assert.Single(body.GetProperty("errors").EnumerateArray());
        Assert.Equal(0, error.GetProperty("layerIndex").GetInt32());
        Assert.Equal("conv1", error.GetProperty("layerName").GetString());
        Assert.Equal("layers[0].kernel", error.GetProperty("field").GetString());
        Assert.Equal("conv1: output height ⌊(4 − 5 + 2·0)/1⌋ + 1 = 0 — the kernel is larger than its 4×4 input", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task WrongTypesAreReportedPerFieldWithAutomaticLayerNames()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        const string spec = """
            { "input": { "channels": 1, "height": 28, "width": 28 },
              "layers": [ { "kind": "conv2d", "filters": "six", "kernel": 5 }, { "kind": "flatten" }, { "kind": "linear", "units": 3, "bias": "yes" } ] }
            """;

        using HttpResponseMessage response = await PostJson(client, spec);

        JsonElement body = await response.Content.ReadFromJsonAsync<JsonElement>();
        JsonElement[] errors = [.. body.GetProperty("errors").EnumerateArray()];
        Assert.Equal(["layers[0].filters", "layers[2].bias"], errors.Select(e => e.GetProperty("field").GetString()));
        Assert.Equal("conv1", errors[0].GetProperty("layerName").GetString());
        Assert.Equal("conv1: filters must be an integer, got the string \"six\"", errors[0].GetProperty("message").GetString());
        Assert.Equal("linear1", errors[1].GetProperty("layerName").GetString());
    }

    [Theory]
    [InlineData("{not json", "not valid JSON")]
    [InlineData("[1, 2]", "JSON array")]
    [InlineData("\"lenet\"", "JSON string")]
    [InlineData("{ \"foo\": 1 }", "without \"input\" or \"layers\"")]
    public async Task BodyThatIsNotASpecGetsProblemDetails(string body, string expected)
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();

        using HttpResponseMessage response = await PostJson(client, body);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        JsonElement problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(400, problem.GetProperty("status").GetInt32());
        Assert.Equal("body", problem.GetProperty("field").GetString());
        Assert.Contains(expected, problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task NonJsonContentTypeGets415ProblemDetails()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();

        using HttpResponseMessage response = await client.PostAsync(new Uri("/models/validate", UriKind.Relative), new StringContent(LeNet, Encoding.UTF8, "text/plain"));

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task ParameterCapComesFromConfiguration()
    {
        await using var factory = new TrainingServiceFactory(new() { ["Specs:MaxParameters"] = "1000" });
        using HttpClient client = factory.CreateClient();

        using HttpResponseMessage response = await PostJson(client, LeNet);

        JsonElement body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.False(body.GetProperty("valid").GetBoolean());
        JsonElement error = Assert.Single(body.GetProperty("errors").EnumerateArray());
        Assert.Equal("the model has 61,706 parameters, over the cap of 1,000", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task SwaggerOffersEveryPresetAsAWorkingExample()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();

        JsonElement document = await client.GetFromJsonAsync<JsonElement>("/swagger/v1/swagger.json");
        JsonElement post = document.GetProperty("paths").GetProperty("/models/validate").GetProperty("post");
        JsonElement examples = post.GetProperty("requestBody").GetProperty("content").GetProperty("application/json").GetProperty("examples");
        Assert.Equal(["tiny", "lenet5", "vgg", "alexnet", "resnet8", "inception"], examples.EnumerateObject().Select(e => e.Name));
        foreach (JsonProperty example in examples.EnumerateObject())
        {
            JsonElement spec = example.Value.GetProperty("value");
            using HttpResponseMessage response = await PostJson(client, spec.GetRawText());
            JsonElement result = await response.Content.ReadFromJsonAsync<JsonElement>();
            Assert.True(result.GetProperty("valid").GetBoolean(), example.Name + ": " + result.GetRawText());
            Assert.False(string.IsNullOrWhiteSpace(example.Value.GetProperty("summary").GetString()));
        }

        JsonElement create = document.GetProperty("paths").GetProperty("/models").GetProperty("post").GetProperty("requestBody")
            .GetProperty("content").GetProperty("application/json").GetProperty("examples");
        using HttpResponseMessage saved = await client.PostAsync(
            new Uri("/models", UriKind.Relative),
            new StringContent(create.GetProperty("resnet8").GetProperty("value").GetRawText(), System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Created, saved.StatusCode);
        using HttpResponseMessage ui = await client.GetAsync(new Uri("/swagger/index.html", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, ui.StatusCode);
    }

    [Theory]
    [InlineData("/health/live")]
    [InlineData("/health/ready")]
    public async Task HealthEndpointsAnswer(string path)
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();

        string body = await client.GetStringAsync(new Uri(path, UriKind.Relative));
        Assert.Equal("Healthy", path.EndsWith("ready", StringComparison.Ordinal)
            ? JsonDocument.Parse(body).RootElement.GetProperty("status").GetString()
            : body);
    }

    [Fact]
    public async Task ReadinessReportsMemoryAgainstItsBudgetAndDegradesOverIt()
    {
        await using var within = new TrainingServiceFactory(new() { ["Health:MemoryBudgetBytes"] = (64L << 30).ToString(System.Globalization.CultureInfo.InvariantCulture) });
        using HttpClient client = within.CreateClient();
        JsonElement healthy = (await client.GetFromJsonAsync<JsonElement>("/health/ready")).GetProperty("checks").GetProperty("memory");
        Assert.Equal("Healthy", healthy.GetProperty("status").GetString());
        Assert.Matches(@"^resident \d+ MiB, peak \d+ MiB, budget 65536 MiB \(Health:MemoryBudgetBytes\)$", healthy.GetProperty("description").GetString());

        await using var over = new TrainingServiceFactory(new() { ["Health:MemoryBudgetBytes"] = "1048576" });
        using HttpClient overClient = over.CreateClient();
        using HttpResponseMessage response = await overClient.GetAsync(new Uri("/health/ready", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode); // degraded, still serving
        JsonElement report = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("Degraded", report.GetProperty("status").GetString());
        JsonElement memory = report.GetProperty("checks").GetProperty("memory");
        Assert.Equal("Degraded", memory.GetProperty("status").GetString());
        Assert.StartsWith("over the memory budget: resident ", memory.GetProperty("description").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task LivenessRunsNoCheckSoAnUnhealthyDependencyFailsOnlyReadiness()
    {
        await using var factory = new TrainingServiceFactory
        {
            ConfigureServices = services => services.AddHealthChecks().AddCheck("database outage", () => HealthCheckResult.Unhealthy("down")),
        };
        using HttpClient client = factory.CreateClient();

        using HttpResponseMessage live = await client.GetAsync(new Uri("/health/live", UriKind.Relative));
        using HttpResponseMessage ready = await client.GetAsync(new Uri("/health/ready", UriKind.Relative));

        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        Assert.Equal("Healthy", await live.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
    }

    [Fact]
    public async Task UnknownRouteGetsProblemDetails()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();

        using HttpResponseMessage response = await client.GetAsync(new Uri("/no-such-thing", UriKind.Relative));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task PresetsAreSizedToTheInputAndEachValidatesWithOneOutputPerClass()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        JsonElement presets = await client.GetFromJsonAsync<JsonElement>("/models/presets?channels=3&height=32&width=32&classes=7");
        Assert.Equal(["tiny", "lenet5", "vgg", "alexnet", "resnet8", "inception"], presets.EnumerateArray().Select(p => p.GetProperty("name").GetString()));
        JsonElement resnet = presets.EnumerateArray().Single(p => p.GetProperty("name").GetString() == "resnet8").GetProperty("spec");
        JsonElement add = resnet.GetProperty("layers").EnumerateArray().First(l => l.GetProperty("kind").GetString() == "add");
        Assert.Equal(["block1_bn2", "stem_relu"], add.GetProperty("inputs").EnumerateArray().Select(i => i.GetString()));
        foreach (JsonElement preset in presets.EnumerateArray())
        {
            JsonElement spec = preset.GetProperty("spec");
            Assert.Equal(3, spec.GetProperty("input").GetProperty("channels").GetInt32());
            Assert.False(spec.GetProperty("layers")[0].TryGetProperty("units", out _), "unset layer fields are left out of a spec's JSON");
            JsonElement result = await (await PostJson(client, spec.GetRawText())).Content.ReadFromJsonAsync<JsonElement>();
            Assert.True(result.GetProperty("valid").GetBoolean(), $"{preset.GetProperty("name")}: {result}");
            Assert.Equal([7], result.GetProperty("outputShape").EnumerateArray().Select(d => d.GetInt32()));
        }
    }

    [Theory]
    [InlineData("?height=8", "height")]
    [InlineData("?width=2000", "width")]
    [InlineData("?channels=0", "channels")]
    [InlineData("?classes=1", "classes")]
    public async Task PresetsForAnImpossibleInputAreA400NamingTheField(string query, string field)
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        HttpResponseMessage response = await client.GetAsync(new Uri($"/models/presets{query}", UriKind.Relative));
        JsonElement problem = await Service.ServiceHarness.AssertProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Contains(field, Service.ServiceHarness.FieldsOf(problem));
    }

    private static Task<HttpResponseMessage> PostJson(HttpClient client, string json) =>
        client.PostAsync(new Uri("/models/validate", UriKind.Relative), new StringContent(json, Encoding.UTF8, "application/json"));
}
