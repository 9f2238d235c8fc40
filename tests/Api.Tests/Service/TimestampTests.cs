using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using TrainingService.Api.Tests.Jobs;

namespace TrainingService.Api.Tests.Service;

public sealed class TimestampTests
{
    [Fact]
    public async Task EveryTimestampIsMarkedUtcWhetherJustCreatedOrReadBack()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        Guid datasetId = await JobHarness.CreateShapesAsync(client, samples: 64);
        using HttpResponseMessage created = await client.PostAsync(new Uri("/models", UriKind.Relative),
            new StringContent($$"""{ "name": "tiny", "spec": {{JobHarness.TinySpec}} }""", Encoding.UTF8, "application/json"));
        JsonElement model = await created.Content.ReadFromJsonAsync<JsonElement>();
        (HttpResponseMessage response, JsonElement job) = await JobHarness.PostJobAsync(client,
            $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 1, "batchSize": 16 } }""");
        response.Dispose();
        Guid jobId = job.GetProperty("id").GetGuid();
        JsonElement done = await JobHarness.WaitForStateAsync(client, jobId, "Succeeded");

        var stamps = new Dictionary<string, string?>
        {
            ["GET /datasets/{id} createdAt"] = (await client.GetFromJsonAsync<JsonElement>($"/datasets/{datasetId}")).GetProperty("createdAt").GetString(),
            ["POST /models createdAt"] = model.GetProperty("createdAt").GetString(),
            ["GET /models/{id} createdAt"] = (await client.GetFromJsonAsync<JsonElement>($"/models/{model.GetProperty("id").GetGuid()}")).GetProperty("createdAt").GetString(),
            ["GET /models createdAt"] = (await client.GetFromJsonAsync<JsonElement>("/models")).GetProperty("items")[0].GetProperty("createdAt").GetString(),
            ["POST /jobs createdAt"] = job.GetProperty("createdAt").GetString(),
            ["GET /jobs/{id} createdAt"] = done.GetProperty("createdAt").GetString(),
            ["GET /jobs/{id} startedAt"] = done.GetProperty("startedAt").GetString(),
            ["GET /jobs/{id} finishedAt"] = done.GetProperty("finishedAt").GetString(),
            ["GET /jobs createdAt"] = (await client.GetFromJsonAsync<JsonElement>("/jobs")).GetProperty("items")[0].GetProperty("createdAt").GetString(),
        };

        string[] local = [.. stamps.Where(s => s.Value is null || !(s.Value.EndsWith('Z') || s.Value.EndsWith("+00:00", StringComparison.Ordinal))).Select(s => $"{s.Key} = {s.Value}")];
        Assert.True(local.Length == 0, "timestamps without a UTC designator: " + string.Join("; ", local));
    }
}
