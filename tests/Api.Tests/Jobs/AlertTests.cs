using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR.Client;
using TrainingService.Api.Tests.Service;
using TrainingService.Contracts.Streaming;

namespace TrainingService.Api.Tests.Jobs;

/// <summary>Diagnoses travel like every other event: stored in the history, streamed live, over both protocols.</summary>
public sealed class AlertTests
{
    // Biases of 30 before the classifier: the first scores are huge and the first loss far above ln 2.
    private const string HotScores = """
        { "input": { "channels": 1, "height": 16, "width": 16 },
          "layers": [ { "kind": "flatten" }, { "kind": "linear", "units": 32, "biasInit": 30 }, { "kind": "relu" }, { "kind": "linear", "units": 2 } ] }
        """;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AnAlertIsInTheHistoryAndOnTheStreamWithEveryField(bool messagePack)
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        Guid dataset = await JobHarness.CreateShapesAsync(client);
        await using HubConnection hub = JobHarness.Hub(factory, messagePack);
        var streamed = new List<StreamEvent>();
        var done = new TaskCompletionSource();
        hub.On<Guid, List<StreamEvent>>("Events", (_, events) =>
        {
            lock (streamed)
            {
                streamed.AddRange(events);
            }

            if (events.Any(e => e.Kind == "state" && e.State is Contracts.Training.RunState.Succeeded))
            {
                done.TrySetResult();
            }
        });
        await hub.StartAsync();

        (HttpResponseMessage response, JsonElement job) = await JobHarness.PostJobAsync(client,
            $$"""{ "datasetId": "{{dataset}}", "model": {{HotScores}}, "hyperparameters": { "epochs": 1, "learningRate": 0.0001 } }""");
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Guid jobId = job.GetProperty("id").GetGuid();
        await hub.InvokeAsync("Subscribe", jobId, 0L);
        await done.Task.WaitAsync(TimeSpan.FromMinutes(2));

        StreamEvent stored = Assert.Single(await JobHarness.HistoryAsync(client, jobId), e => e.Kind == "alert" && e.Code == "initial-loss");
        Assert.Equal(("warning", 1L), (stored.Severity, stored.Step));
        Assert.Contains("ln(2)", stored.Message, StringComparison.Ordinal);
        Assert.False(string.IsNullOrEmpty(stored.Suggestion));
        StreamEvent live;
        lock (streamed)
        {
            live = Assert.Single(streamed, e => e.Kind == "alert" && e.Code == "initial-loss");
        }

        Assert.Equal(stored, live with { Time = stored.Time }); // same seq, code, message, suggestion, step
    }

    [Theory]
    [InlineData("""{ "window": 0 }""", "monitoring.diagnostics.window")]
    [InlineData("""{ "updateRatioLow": 0.1, "updateRatioHigh": 0.01 }""", "monitoring.diagnostics.updateRatioHigh")]
    [InlineData("""{ "onNonFinite": "ignore" }""", "monitoring.diagnostics.onNonFinite")]
    public async Task BadDiagnosticsOptionsAreA400NamingTheField(string diagnostics, string field)
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        await JobHarness.CreateShapesAsync(client);
        (HttpResponseMessage response, _) = await JobHarness.PostJobAsync(client, $$"""{ "monitoring": { "diagnostics": {{diagnostics}} } }""");
        JsonElement problem = await ServiceHarness.AssertProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Contains(field, ServiceHarness.FieldsOf(problem));
    }
}
