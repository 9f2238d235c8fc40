using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using TrainingService.Api.Tests.Jobs;

namespace TrainingService.Api.Tests.Service;

public sealed class SavedModelTests
{
    private const string LeNet = """
        { "input": { "channels": 1, "height": 28, "width": 28 },
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
    public async Task SavedModelIsCreatedListedAndFetchedById()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();

        using HttpResponseMessage created = await PostModelAsync(client, "  lenet-28  ", LeNet);

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        JsonElement view = await created.Content.ReadFromJsonAsync<JsonElement>();
        Guid id = view.GetProperty("id").GetGuid();
        Assert.Equal("lenet-28", view.GetProperty("name").GetString());
        Assert.Equal(61_706, view.GetProperty("parameters").GetInt64());
        Assert.Equal(12, view.GetProperty("spec").GetProperty("layers").GetArrayLength());
        Assert.Equal($"/models/{id}", created.Headers.Location?.AbsolutePath);

        JsonElement listed = Assert.Single((await client.GetFromJsonAsync<JsonElement>("/models")).GetProperty("items").EnumerateArray());
        JsonElement fetched = await client.GetFromJsonAsync<JsonElement>(created.Headers.Location);
        foreach (JsonElement again in new[] { listed, fetched })
        {
            Assert.Equal(id, again.GetProperty("id").GetGuid());
            Assert.Equal("lenet-28", again.GetProperty("name").GetString());
            Assert.Equal(61_706, again.GetProperty("parameters").GetInt64());
            Assert.Equal(view.GetProperty("createdAt").GetDateTime(), again.GetProperty("createdAt").GetDateTime());
        }

        Assert.False(listed.TryGetProperty("spec", out _), "a listing carries no specs");
        Assert.Equal(view.GetProperty("spec").GetRawText(), fetched.GetProperty("spec").GetRawText());
    }

    [Fact]
    public async Task ModelsAreListedInPagesNewestFirstByCursor()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        var ids = new List<Guid>();
        foreach (string name in new[] { "one", "two", "three" })
        {
            using HttpResponseMessage created = await PostModelAsync(client, name, JobHarness.TinySpec);
            ids.Insert(0, (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid());
        }

        JsonElement first = await client.GetFromJsonAsync<JsonElement>("/models?limit=2");
        JsonElement second = await client.GetFromJsonAsync<JsonElement>($"/models?limit=2&after={first.GetProperty("next").GetGuid()}");

        Assert.Equal(ids.Take(2), first.GetProperty("items").EnumerateArray().Select(m => m.GetProperty("id").GetGuid()));
        Assert.Equal(ids[1], first.GetProperty("next").GetGuid());
        Assert.Equal(ids.Skip(2), second.GetProperty("items").EnumerateArray().Select(m => m.GetProperty("id").GetGuid()));
        Assert.Equal(JsonValueKind.Null, second.GetProperty("next").ValueKind);
        foreach ((string query, string field) in new[] { ("limit=0", "limit"), ("limit=201", "limit"), ($"after={Guid.NewGuid()}", "after") })
        {
            using HttpResponseMessage refused = await client.GetAsync(new Uri($"/models?{query}", UriKind.Relative));
            Assert.Equal([field], ServiceHarness.FieldsOf(await ServiceHarness.AssertProblemAsync(refused, HttpStatusCode.BadRequest)));
        }
    }

    [Fact]
    public async Task UnknownModelIdIsA404ProblemNamingTheId()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();

        using HttpResponseMessage response = await client.GetAsync(new Uri($"/models/{Guid.NewGuid()}", UriKind.Relative));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        JsonElement problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(404, problem.GetProperty("status").GetInt32());
        Assert.Equal("id", problem.GetProperty("field").GetString());
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType); // as every other 404 of the API
    }

    [Fact]
    public async Task InvalidSpecIsA400KeyedByTheSpecField()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        const string tooSmall = """
            { "input": { "channels": 1, "height": 4, "width": 4 },
              "layers": [ { "kind": "conv2d", "filters": 8, "kernel": 5 }, { "kind": "flatten" }, { "kind": "linear", "units": 3 } ] }
            """;

        using HttpResponseMessage response = await PostModelAsync(client, "too small", tooSmall);

        JsonElement problem = await ServiceHarness.AssertProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Equal(["spec.layers[0].kernel"], ServiceHarness.FieldsOf(problem));
        Assert.Empty((await client.GetFromJsonAsync<JsonElement>("/models")).GetProperty("items").EnumerateArray());
    }

    [Theory]
    [InlineData("\"\"")]
    [InlineData("\"   \"")]
    [InlineData("null")]
    public async Task EmptyNameIsA400KeyedByName(string name)
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();

        using HttpResponseMessage response = await client.PostAsync(new Uri("/models", UriKind.Relative),
            new StringContent($$"""{ "name": {{name}}, "spec": {{LeNet}} }""", Encoding.UTF8, "application/json"));

        JsonElement problem = await ServiceHarness.AssertProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Equal(["name"], ServiceHarness.FieldsOf(problem));
    }

    [Fact]
    public async Task JobFromASavedModelTrainsToSucceeded()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        Guid datasetId = await JobHarness.CreateShapesAsync(client, samples: 64);
        using HttpResponseMessage created = await PostModelAsync(client, "tiny", JobHarness.TinySpec);
        Guid modelId = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();

        (HttpResponseMessage response, JsonElement job) = await JobHarness.PostJobAsync(client,
            $$"""{ "datasetId": "{{datasetId}}", "modelId": "{{modelId}}", "hyperparameters": { "epochs": 1, "batchSize": 16 } }""");
        using (response)
        {
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        }

        Assert.Equal(modelId, job.GetProperty("modelId").GetGuid());
        Assert.Equal(5, job.GetProperty("model").GetProperty("layers").GetArrayLength());
        JsonElement done = await JobHarness.WaitForStateAsync(client, job.GetProperty("id").GetGuid(), "Succeeded");
        Assert.Equal(modelId, done.GetProperty("modelId").GetGuid());
    }

    [Fact]
    public async Task JobWithBothModelAndModelIdIsA400()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        Guid datasetId = await JobHarness.CreateShapesAsync(client, samples: 64);
        using HttpResponseMessage created = await PostModelAsync(client, "tiny", JobHarness.TinySpec);
        Guid modelId = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();

        (HttpResponseMessage response, _) = await JobHarness.PostJobAsync(client,
            $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.TinySpec}}, "modelId": "{{modelId}}" }""");
        using (response)
        {
            JsonElement problem = await ServiceHarness.AssertProblemAsync(response, HttpStatusCode.BadRequest);
            Assert.Contains("model", ServiceHarness.FieldsOf(problem));
        }

        Assert.Empty((await client.GetFromJsonAsync<JsonElement>("/jobs")).GetProperty("items").EnumerateArray());
    }

    private static Task<HttpResponseMessage> PostModelAsync(HttpClient client, string name, string spec) =>
        client.PostAsync(new Uri("/models", UriKind.Relative), new StringContent(
            $$"""{ "name": {{JsonSerializer.Serialize(name)}}, "spec": {{spec}} }""", Encoding.UTF8, "application/json"));
}
