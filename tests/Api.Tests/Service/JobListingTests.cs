using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using TrainingService.Api.Tests.Jobs;
using TrainingService.Contracts.Streaming;

namespace TrainingService.Api.Tests.Service;

public sealed class JobListingTests
{
    [Fact]
    public async Task ListingFiltersByStatePagesNewestFirstByCursorAndEventsPageExactly()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        Guid datasetId = await JobHarness.CreateShapesAsync(client, samples: 64);
        Guid first = await PostAsync(client, datasetId, epochs: 2);
        await JobHarness.WaitForStateAsync(client, first, "Succeeded");
        Guid second = await PostAsync(client, datasetId, epochs: 1);
        await JobHarness.WaitForStateAsync(client, second, "Succeeded");
        Guid third = await PostAsync(client, datasetId, epochs: 10_000);
        using (HttpResponseMessage cancelled = await ServiceHarness.PostAsync(client, $"/jobs/{third}/cancel"))
        {
            Assert.Equal(HttpStatusCode.Accepted, cancelled.StatusCode);
        }

        await JobHarness.WaitForStateAsync(client, third, "Cancelled");

        Assert.Equal([third, second, first], await ServiceHarness.ListIdsAsync(client, ""));
        Assert.Equal([second, first], await ServiceHarness.ListIdsAsync(client, "?state=Succeeded"));
        Assert.Equal([third], await ServiceHarness.ListIdsAsync(client, "?state=Cancelled"));
        Assert.Empty(await ServiceHarness.ListIdsAsync(client, "?state=Running"));
        Assert.Equal([second], await ServiceHarness.ListIdsAsync(client, $"?after={third}&limit=1"));
        Assert.Equal([second, first], await ServiceHarness.ListIdsAsync(client, $"?after={third}&limit=5"));
        Assert.Equal([first], await ServiceHarness.ListIdsAsync(client, $"?state=Succeeded&after={second}&limit=1"));
        Assert.Empty(await ServiceHarness.ListIdsAsync(client, $"?after={first}"));
        JsonElement firstPage = await client.GetFromJsonAsync<JsonElement>("/jobs?limit=2");
        Assert.Equal(second, firstPage.GetProperty("next").GetGuid());
        Assert.False(firstPage.GetProperty("items")[0].TryGetProperty("model", out _), "a listing carries no specs");
        Assert.Equal(JsonValueKind.Null, (await client.GetFromJsonAsync<JsonElement>("/jobs?limit=3")).GetProperty("next").ValueKind);

        long lastSeq = (await client.GetFromJsonAsync<JsonElement>($"/jobs/{first}")).GetProperty("lastSeq").GetInt64();
        Assert.True(lastSeq > 10, $"job {first} has only {lastSeq} events");
        List<StreamEvent> page = (await client.GetFromJsonAsync<List<StreamEvent>>($"/jobs/{first}/events?afterSeq=3&limit=4", JobHarness.Json))!;
        Assert.Equal([4L, 5L, 6L, 7L], page.Select(e => e.Seq));
        List<StreamEvent> tail = (await client.GetFromJsonAsync<List<StreamEvent>>($"/jobs/{first}/events?afterSeq={lastSeq - 2}&limit=10", JobHarness.Json))!;
        Assert.Equal([lastSeq - 1, lastSeq], tail.Select(e => e.Seq));
        Assert.Empty((await client.GetFromJsonAsync<List<StreamEvent>>($"/jobs/{first}/events?afterSeq={lastSeq}", JobHarness.Json))!);
    }

    [Fact]
    public async Task ControlsOutOfStateAndWeightsBeforeSuccessAre409Problems()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        Guid datasetId = await JobHarness.CreateShapesAsync(client, samples: 64);
        Guid finished = await PostAsync(client, datasetId, epochs: 1);
        await JobHarness.WaitForStateAsync(client, finished, "Succeeded");
        Guid running = await PostAsync(client, datasetId, epochs: 10_000);
        await JobHarness.WaitForStateAsync(client, running, "Running");
        Guid queued = await PostAsync(client, datasetId, epochs: 1); // one job trains at a time by default

        await AssertConflictAsync(client, HttpMethod.Post, $"/jobs/{queued}/pause");
        await AssertConflictAsync(client, HttpMethod.Post, $"/jobs/{finished}/pause");
        await AssertConflictAsync(client, HttpMethod.Post, $"/jobs/{running}/resume");
        await AssertConflictAsync(client, HttpMethod.Post, $"/jobs/{queued}/resume");
        await AssertConflictAsync(client, HttpMethod.Get, $"/jobs/{queued}/weights");
        await AssertConflictAsync(client, HttpMethod.Get, $"/jobs/{running}/weights");
        Assert.Equal("Queued", (await client.GetFromJsonAsync<JsonElement>($"/jobs/{queued}")).GetProperty("state").GetString());
        Assert.Equal("Running", (await client.GetFromJsonAsync<JsonElement>($"/jobs/{running}")).GetProperty("state").GetString());
        using (HttpResponseMessage weights = await client.GetAsync(new Uri($"/jobs/{finished}/weights", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.OK, weights.StatusCode);
        }

        using (HttpResponseMessage cancel = await ServiceHarness.PostAsync(client, $"/jobs/{running}/cancel"))
        {
            Assert.Equal(HttpStatusCode.Accepted, cancel.StatusCode);
        }

        await JobHarness.WaitForStateAsync(client, running, "Cancelled");
        await AssertConflictAsync(client, HttpMethod.Get, $"/jobs/{running}/weights");
        await AssertConflictAsync(client, HttpMethod.Post, $"/jobs/{running}/pause");
        await JobHarness.WaitForStateAsync(client, queued, "Succeeded");
    }

    private static async Task<Guid> PostAsync(HttpClient client, Guid datasetId, int epochs)
    {
        (HttpResponseMessage response, JsonElement job) = await JobHarness.PostJobAsync(client,
            $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": {{epochs}}, "batchSize": 16 }, "monitoring": { "statsEvery": 2 } }""");
        using (response)
        {
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        }

        return job.GetProperty("id").GetGuid();
    }

    private static async Task AssertConflictAsync(HttpClient client, HttpMethod method, string path)
    {
        using var request = new HttpRequestMessage(method, path);
        using HttpResponseMessage response = await client.SendAsync(request);
        JsonElement problem = await ServiceHarness.AssertProblemAsync(response, HttpStatusCode.Conflict);
        Assert.False(string.IsNullOrEmpty(problem.GetProperty("detail").GetString()), $"{method} {path}: a 409 without detail");
    }
}
