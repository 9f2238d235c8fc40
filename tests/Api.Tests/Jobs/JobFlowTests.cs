using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using TrainingService.Api.Jobs;
using TrainingService.Contracts.Streaming;
using TrainingService.Contracts.Training;

namespace TrainingService.Api.Tests.Jobs;

public sealed class JobFlowTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task BuiltinDatasetToSucceededJobStreamsEveryEventLiveAndHistoryMatches(bool messagePack)
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        Guid datasetId = await JobHarness.CreateShapesAsync(client);
        await using HubConnection hub = JobHarness.Hub(factory, messagePack);
        var recorder = new StreamRecorder(hub);
        await hub.StartAsync();

        (HttpResponseMessage response, JsonElement job) = await JobHarness.PostJobAsync(client,
            $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 2, "batchSize": 32 }, "monitoring": { "statsEvery": 2 } }""");
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Guid jobId = job.GetProperty("id").GetGuid();
        Assert.Equal($"/jobs/{jobId}", response.Headers.Location?.OriginalString.Replace("http://localhost", "", StringComparison.Ordinal));
        await hub.InvokeAsync("Subscribe", jobId, 0L);
        try
        {
            await recorder.WaitForAsync(events => events.Any(e => e.Kind == "state" && e.State == RunState.Succeeded));
        }
        catch (Xunit.Sdk.TrueException timedOut)
        {
            // Once in CI (at 1a09227) the stream stopped after the last epoch's event for a minute: say whether the job
            // stopped too (its state and stored history) or only the stream.
            JsonElement now = await client.GetFromJsonAsync<JsonElement>($"/jobs/{jobId}");
            Assert.Fail($"{timedOut.Message}; the job now: {now}");
        }

        JsonElement done = await JobHarness.WaitForStateAsync(client, jobId, "Succeeded");

        List<StreamEvent> streamed = recorder.Events;
        JobHarness.AssertConsecutive(streamed);
        List<StreamEvent> history = await JobHarness.HistoryAsync(client, jobId);
        Assert.Equal(JsonSerializer.Serialize(history, JobHarness.Json), JsonSerializer.Serialize(streamed, JobHarness.Json));
        Assert.Equal(RunState.Running, streamed[0].State);
        Assert.Equal(16, done.GetProperty("totalSteps").GetInt64()); // 256 training samples (validation on the test split) / 32 × 2 epochs
        Assert.Equal(16, streamed.Count(e => e.Kind == "step"));
        Assert.Contains(streamed, e => e.Kind == "layers" && e.Layers!.Count == 5 && e.Parameters!.Count == 4);
        Assert.Equal(2, streamed.Count(e => e.Kind == "epoch"));
        Assert.Equal(1.0, done.GetProperty("progress").GetDouble());
        Assert.Equal(streamed[^1].Seq, done.GetProperty("lastSeq").GetInt64());
        Assert.True(done.GetProperty("bestValidationAccuracy").GetDouble() > 0);
        using HttpResponseMessage weights = await client.GetAsync(new Uri($"/jobs/{jobId}/weights", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, weights.StatusCode);
        Assert.True((await weights.Content.ReadAsByteArrayAsync()).Length > 100);
    }

    [Fact]
    public async Task OnlyADatasetIdTrainsTheDefaultModel()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        Guid datasetId = await JobHarness.CreateShapesAsync(client, classes: 3, samples: 96);

        (HttpResponseMessage response, JsonElement job) = await JobHarness.PostJobAsync(client, $$"""{ "datasetId": "{{datasetId}}", "hyperparameters": { "epochs": 1 } }""");

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Equal("lenet5", job.GetProperty("model").GetProperty("name").GetString());
        await JobHarness.WaitForStateAsync(client, job.GetProperty("id").GetGuid(), "Succeeded");
    }

    [Fact]
    public async Task ClassCountMismatchIsAClear400()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        Guid datasetId = await JobHarness.CreateShapesAsync(client, classes: 3);

        (HttpResponseMessage response, JsonElement problem) = await JobHarness.PostJobAsync(client, $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.TinySpec}} }""");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        string message = problem.GetProperty("errors").GetProperty("model.layers")[0].GetString()!;
        Assert.Contains("scores 2 classes", message, StringComparison.Ordinal);
        Assert.Contains("has 3", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BadSpecInAJobIsA400NamingTheLayerField()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        Guid datasetId = await JobHarness.CreateShapesAsync(client);
        string spec = JobHarness.TinySpec.Replace("\"kernel\": 3", "\"kernel\": 30", StringComparison.Ordinal);

        (HttpResponseMessage response, JsonElement problem) = await JobHarness.PostJobAsync(client, $$"""{ "datasetId": "{{datasetId}}", "model": {{spec}} }""");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.StartsWith("conv1: output height", problem.GetProperty("errors").GetProperty("model.layers[0].kernel")[0].GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/jobs/00000000-0000-0000-0000-000000000001", "GET")]
    [InlineData("/jobs/00000000-0000-0000-0000-000000000001/events", "GET")]
    [InlineData("/jobs/00000000-0000-0000-0000-000000000001/cancel", "POST")]
    [InlineData("/jobs/00000000-0000-0000-0000-000000000001/weights", "GET")]
    public async Task UnknownJobIsA404ProblemDetails(string path, string method)
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();

        using HttpResponseMessage response = await client.SendAsync(new HttpRequestMessage(new HttpMethod(method), path));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task UnknownDatasetIsA404NamingTheField()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();

        (HttpResponseMessage response, JsonElement problem) = await JobHarness.PostJobAsync(client, """{ "datasetId": "00000000-0000-0000-0000-000000000002" }""");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("datasetId", problem.GetProperty("field").GetString());
    }

    [Fact]
    public async Task PauseResumeAndCancelWorkAndCancellingAFinishedJobIsA409()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        Guid datasetId = await JobHarness.CreateShapesAsync(client, samples: 2000);
        (_, JsonElement job) = await JobHarness.PostJobAsync(client,
            $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 200, "batchSize": 16 } }""");
        Guid jobId = job.GetProperty("id").GetGuid();
        await JobHarness.WaitForStateAsync(client, jobId, "Running");

        Assert.Equal(HttpStatusCode.Accepted, (await client.PostAsync(new Uri($"/jobs/{jobId}/pause", UriKind.Relative), null)).StatusCode);
        JsonElement paused = await JobHarness.WaitForStateAsync(client, jobId, "Paused");
        await Task.Delay(300);
        Assert.Equal(paused.GetProperty("step").GetInt64(), (await client.GetFromJsonAsync<JsonElement>($"/jobs/{jobId}")).GetProperty("step").GetInt64());
        Assert.Equal(HttpStatusCode.Conflict, (await client.PostAsync(new Uri($"/jobs/{jobId}/pause", UriKind.Relative), null)).StatusCode);

        Assert.Equal(HttpStatusCode.Accepted, (await client.PostAsync(new Uri($"/jobs/{jobId}/resume", UriKind.Relative), null)).StatusCode);
        await JobHarness.WaitForStateAsync(client, jobId, "Running");
        Assert.Equal(HttpStatusCode.Accepted, (await client.PostAsync(new Uri($"/jobs/{jobId}/cancel", UriKind.Relative), null)).StatusCode);
        await JobHarness.WaitForStateAsync(client, jobId, "Cancelled");

        using HttpResponseMessage again = await client.PostAsync(new Uri($"/jobs/{jobId}/cancel", UriKind.Relative), null);
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        Assert.Equal("application/problem+json", again.Content.Headers.ContentType?.MediaType);
        List<StreamEvent> history = await JobHarness.HistoryAsync(client, jobId);
        JobHarness.AssertConsecutive(history);
        Assert.Equal([RunState.Running, RunState.Paused, RunState.Running, RunState.Cancelled], history.Where(e => e.Kind == "state").Select(e => e.State!.Value));
    }

    /// <summary>
    /// A paused job whose earlier run on this node lost its lease (so this node's pump refuses that run's events) is
    /// still cancelled with its state event: the cancel writes at the job's current attempt, not as the old run.
    /// </summary>
    [Fact]
    public async Task APausedJobWhoseEarlierRunHereLostItsLeaseIsCancelledWithItsEvent()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        Guid datasetId = await JobHarness.CreateShapesAsync(client, samples: 2000);
        (_, JsonElement job) = await JobHarness.PostJobAsync(client,
            $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 200, "batchSize": 16 } }""");
        Guid jobId = job.GetProperty("id").GetGuid();
        await JobHarness.WaitForStateAsync(client, jobId, "Running");
        Assert.Equal(HttpStatusCode.Accepted, (await client.PostAsync(new Uri($"/jobs/{jobId}/pause", UriKind.Relative), null)).StatusCode);
        JsonElement paused = await JobHarness.WaitForStateAsync(client, jobId, "Paused");
        await Task.Delay(300); // the run has handed the job back

        int attempt = paused.GetProperty("attempt").GetInt32();
        factory.Services.GetRequiredService<TrainingService.Api.Streaming.EventPump>().Fence(jobId, new LeaseLostException(jobId, attempt - 1, attempt));
        Assert.Equal(HttpStatusCode.Accepted, (await client.PostAsync(new Uri($"/jobs/{jobId}/cancel", UriKind.Relative), null)).StatusCode);
        await JobHarness.WaitForStateAsync(client, jobId, "Cancelled");
        List<StreamEvent> history = await JobHarness.HistoryAsync(client, jobId);
        JobHarness.AssertConsecutive(history);
        StreamEvent last = history.Last(e => e.Kind == "state");
        Assert.Equal(RunState.Cancelled, last.State);
        Assert.Equal("cancelled while paused", last.Reason);
    }
}
