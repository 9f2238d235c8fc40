using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using TrainingService.Api.Persistence;
using TrainingService.Api.Tests.Service;
using TrainingService.Contracts.Streaming;

namespace TrainingService.Api.Tests.Jobs;

/// <summary>Steering a running job over REST and the hub: new hyperparameters from the next step, and finishing early.</summary>
public sealed class SteeringApiTests
{
    private static async Task<(TrainingServiceFactory Factory, HttpClient Client, Guid Job)> RunningJobAsync(
        string optimizer = "sgd", Dictionary<string, string?>? settings = null)
    {
        TrainingServiceFactory factory = ServiceHarness.Factory(settings);
        HttpClient client = factory.CreateClient();
        Guid dataset = await JobHarness.CreateShapesAsync(client, samples: 512);
        (_, JsonElement job) = await JobHarness.PostJobAsync(client,
            $$"""{ "datasetId": "{{dataset}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 300, "batchSize": 16, "optimizer": "{{optimizer}}", "learningRate": 0.01 } }""");
        Guid id = job.GetProperty("id").GetGuid();
        await JobHarness.WaitForStateAsync(client, id, "Running");
        return (factory, client, id);
    }

    private static Task<HttpResponseMessage> PatchAsync(HttpClient client, Guid id, string json) =>
        client.PatchAsync(new Uri($"/jobs/{id}/hyperparameters", UriKind.Relative), new StringContent(json, System.Text.Encoding.UTF8, "application/json"));

    [Fact]
    public async Task ANewLearningRateIsRecordedAndUsedFromTheNextStep()
    {
        (TrainingServiceFactory factory, HttpClient client, Guid id) = await RunningJobAsync();
        await using (factory)
        using (client)
        {
            HttpResponseMessage response = await PatchAsync(client, id, """{ "learningRate": 0.003, "momentum": 0.5, "reason": "loss is noisy" }""");
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            JsonElement view = await response.Content.ReadFromJsonAsync<JsonElement>();
            Assert.Equal(0.003, view.GetProperty("hyperparameters").GetProperty("learningRate").GetDouble());
            Assert.Equal(0.5, view.GetProperty("hyperparameters").GetProperty("momentum").GetDouble());

            List<StreamEvent> history = [];
            for (int i = 0; i < 200 && !history.Any(e => e.Kind == "hyperparameters"); i++)
            {
                await Task.Delay(50);
                history = await JobHarness.HistoryAsync(client, id);
            }

            StreamEvent change = Assert.Single(history, e => e.Kind == "hyperparameters");
            Assert.Equal((0.003, 0.5, 0.0, "loss is noisy"), (change.LearningRate, change.Momentum, change.WeightDecay, change.Reason));
            await client.PostAsync(new Uri($"/jobs/{id}/cancel", UriKind.Relative), null);
            await JobHarness.WaitForStateAsync(client, id, "Cancelled");
            history = await JobHarness.HistoryAsync(client, id);
            Assert.All(history.Where(e => e.Kind == "step" && e.Step <= change.Step), e => Assert.Equal(0.01, e.LearningRate!.Value, 12));
            Assert.All(history.Where(e => e.Kind == "step" && e.Step > change.Step), e => Assert.Equal(0.003, e.LearningRate!.Value, 12));
            Assert.Contains(history, e => e.Kind == "step" && e.Step > change.Step);
        }
    }

    [Theory]
    [InlineData("sgd", """{ "learningRate": 0 }""", "learningRate")]
    [InlineData("sgd", """{ "momentum": 1 }""", "momentum")]
    [InlineData("adam", """{ "momentum": 0.5 }""", "momentum")]
    [InlineData("sgd", """{ "weightDecay": -1 }""", "weightDecay")]
    [InlineData("sgd", """{ "reason": "no values" }""", "body")]
    [InlineData("sgd", """{ "learningRate": 0.01, "reason": "{201 characters}" }""", "reason")]
    [InlineData("sgd", """{ "learningRate": "fast" }""", "learningRate")]
    public async Task BadChangesAreA400NamingTheField(string optimizer, string json, string field)
    {
        (TrainingServiceFactory factory, HttpClient client, Guid id) = await RunningJobAsync(optimizer);
        await using (factory)
        using (client)
        {
            json = json.Replace("{201 characters}", new string('x', 201), StringComparison.Ordinal);
            JsonElement problem = await ServiceHarness.AssertProblemAsync(await PatchAsync(client, id, json), HttpStatusCode.BadRequest);
            Assert.Contains(field, ServiceHarness.FieldsOf(problem));
            await client.PostAsync(new Uri($"/jobs/{id}/cancel", UriKind.Relative), null);
            await JobHarness.WaitForStateAsync(client, id, "Cancelled");
            await ServiceHarness.AssertProblemAsync(await PatchAsync(client, id, """{ "learningRate": 0.1 }"""), HttpStatusCode.Conflict);
            await ServiceHarness.AssertProblemAsync(await PatchAsync(client, Guid.NewGuid(), """{ "learningRate": 0.1 }"""), HttpStatusCode.NotFound);
        }
    }

    [Fact]
    public async Task FinishingEarlyKeepsTheModel()
    {
        (TrainingServiceFactory factory, HttpClient client, Guid id) = await RunningJobAsync();
        await using (factory)
        using (client)
        {
            Assert.Equal(HttpStatusCode.Accepted, (await client.PostAsync(new Uri($"/jobs/{id}/finish", UriKind.Relative), null)).StatusCode);
            JsonElement done = await JobHarness.WaitForStateAsync(client, id, "Succeeded");
            Assert.True(done.GetProperty("step").GetInt64() < done.GetProperty("totalSteps").GetInt64());
            StreamEvent last = (await JobHarness.HistoryAsync(client, id))[^1];
            Assert.StartsWith("finished early at step", last.Reason, StringComparison.Ordinal);
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(new Uri($"/jobs/{id}/weights", UriKind.Relative))).StatusCode);
            await ServiceHarness.AssertProblemAsync(await client.PostAsync(new Uri($"/jobs/{id}/finish", UriKind.Relative), null), HttpStatusCode.Conflict);
        }
    }

    [Fact]
    public async Task TheHubSteersTooAndRefusesWithTheFieldAndReason()
    {
        (TrainingServiceFactory factory, HttpClient client, Guid id) = await RunningJobAsync();
        await using (factory)
        using (client)
        {
            await using HubConnection hub = JobHarness.Hub(factory);
            await hub.StartAsync();
            HubException refused = await Assert.ThrowsAsync<HubException>(() => hub.InvokeAsync("ChangeHyperparameters", id, new { learningRate = 50.0 }));
            Assert.Contains("learningRate: learningRate must be above 0 and at most 10, got 50", refused.Message, StringComparison.Ordinal);

            await hub.InvokeAsync("ChangeHyperparameters", id, new { weightDecay = 0.001, reason = "from the hub" });
            await hub.InvokeAsync("Finish", id);
            await JobHarness.WaitForStateAsync(client, id, "Succeeded");
            StreamEvent change = Assert.Single(await JobHarness.HistoryAsync(client, id), e => e.Kind == "hyperparameters");
            Assert.Equal((0.001, "from the hub"), (change.WeightDecay, change.Reason));
        }
    }

    [Fact]
    public async Task TheHubPausesResumesAndCancelsThroughTheSameCommandsAsRest()
    {
        (TrainingServiceFactory factory, HttpClient client, Guid id) = await RunningJobAsync();
        await using (factory)
        using (client)
        {
            await using HubConnection hub = JobHarness.Hub(factory);
            await hub.StartAsync();
            HubException notPaused = await Assert.ThrowsAsync<HubException>(() => hub.InvokeAsync("Resume", id));
            Assert.Contains("state: ", notPaused.Message, StringComparison.Ordinal);
            Assert.Contains("only a paused job can be resumed", notPaused.Message, StringComparison.Ordinal);

            await hub.InvokeAsync("Pause", id);
            await JobHarness.WaitForStateAsync(client, id, "Paused");
            await hub.InvokeAsync("Resume", id);
            await JobHarness.WaitForStateAsync(client, id, "Running");
            await hub.InvokeAsync("Cancel", id);
            await JobHarness.WaitForStateAsync(client, id, "Cancelled");

            HubException ended = await Assert.ThrowsAsync<HubException>(() => hub.InvokeAsync("Cancel", id));
            Assert.Contains("has already ended (Cancelled)", ended.Message, StringComparison.Ordinal);
            HubException missing = await Assert.ThrowsAsync<HubException>(() => hub.InvokeAsync("Pause", Guid.NewGuid()));
            Assert.Contains("id: There is no job", missing.Message, StringComparison.Ordinal);
            await ServiceHarness.AssertProblemAsync(await ServiceHarness.PostAsync(client, $"/jobs/{id}/pause"), HttpStatusCode.Conflict);
            List<StreamEvent> history = await JobHarness.HistoryAsync(client, id);
            Assert.Equal(
                ["Running", "Paused", "Running", "Cancelled"],
                history.Where(e => e.Kind == "state").Select(e => e.State!.Value.ToString()));
        }
    }

    [Fact]
    public async Task CommandsToAPausedJobWaitBoundedAndReachItsRunWhenItResumes()
    {
        (TrainingServiceFactory factory, HttpClient client, Guid id) = await RunningJobAsync(settings: new() { ["Jobs:MaxPendingCommands"] = "3" });
        await using (factory)
        using (client)
        {
            await ServiceHarness.PostAsync(client, $"/jobs/{id}/pause");
            await JobHarness.WaitForStateAsync(client, id, "Paused");
            for (int i = 0; i < 50 && (await client.GetFromJsonAsync<JsonElement>($"/jobs/{id}")).GetProperty("worker").ValueKind != JsonValueKind.Null; i++)
            {
                await Task.Delay(100); // the pause lets the job go just after its Paused event is stored
            }

            // A paused job has no run to read commands: changes wait, up to the cap, and then are refused naming it.
            double[] rates = [0.004, 0.005, 0.006];
            foreach (double rate in rates)
            {
                Assert.Equal(HttpStatusCode.Accepted, (await PatchAsync(client, id, $$"""{ "learningRate": {{rate}} }""")).StatusCode);
            }

            HttpResponseMessage refused = await PatchAsync(client, id, """{ "learningRate": 0.007 }""");
            JsonElement problem = await ServiceHarness.AssertProblemAsync(refused, HttpStatusCode.TooManyRequests);
            Assert.Equal("Jobs:MaxPendingCommands", problem.GetProperty("limit").GetString());
            Assert.Contains("3 changes of hyperparameters", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
            Assert.Equal(0.006, (await client.GetFromJsonAsync<JsonElement>($"/jobs/{id}")).GetProperty("hyperparameters").GetProperty("learningRate").GetDouble());

            // The same picture asked for twice while paused waits once.
            for (int i = 0; i < 3; i++)
            {
                Assert.Equal(HttpStatusCode.Accepted, (await ServiceHarness.PostAsync(client, $"/jobs/{id}/snapshot")).StatusCode);
            }

            using (IServiceScope scope = factory.Services.CreateScope())
            {
                TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
                List<JobCommandKind> waiting = await db.JobCommands.Where(c => c.JobId == id).OrderBy(c => c.Id).Select(c => c.Kind).ToListAsync();
                Assert.Equal([JobCommandKind.Change, JobCommandKind.Change, JobCommandKind.Change, JobCommandKind.Snapshot], waiting);
            }

            // Resumed, the run reads them all, in order, and the cap is free again.
            await ServiceHarness.PostAsync(client, $"/jobs/{id}/resume");
            List<StreamEvent> history = [];
            for (int i = 0; i < 200 && history.Count(e => e.Kind == "hyperparameters") < rates.Length; i++)
            {
                await Task.Delay(50);
                history = await JobHarness.HistoryAsync(client, id);
            }

            Assert.Equal(rates, history.Where(e => e.Kind == "hyperparameters").Select(e => e.LearningRate!.Value));
            Assert.Equal(HttpStatusCode.Accepted, (await PatchAsync(client, id, """{ "learningRate": 0.007 }""")).StatusCode);
            await ServiceHarness.PostAsync(client, $"/jobs/{id}/cancel");
            await JobHarness.WaitForStateAsync(client, id, "Cancelled");
        }
    }
}
