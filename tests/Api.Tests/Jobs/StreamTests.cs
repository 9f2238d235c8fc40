using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using TrainingService.Contracts.Streaming;
using TrainingService.Contracts.Training;

namespace TrainingService.Api.Tests.Jobs;

public sealed class StreamTests
{
    [Fact]
    public async Task SubscriberJoiningMidRunAndOneThatDropsAndResubscribesMissNoEventAndGetNoDuplicate()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        Guid datasetId = await JobHarness.CreateShapesAsync(client, samples: 1024);
        (_, JsonElement job) = await JobHarness.PostJobAsync(client,
            $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 6, "batchSize": 16 }, "monitoring": { "statsEvery": 5 } }""");
        Guid jobId = job.GetProperty("id").GetGuid();
        while ((await client.GetFromJsonAsync<JsonElement>($"/jobs/{jobId}")).GetProperty("step").GetInt64() < 30)
        {
            await Task.Delay(10);
        }

        await using HubConnection late = JobHarness.Hub(factory);
        var lateEvents = new StreamRecorder(late);
        await late.StartAsync();
        await late.InvokeAsync("Subscribe", jobId, 0L);
        await using HubConnection dropping = JobHarness.Hub(factory, messagePack: true);
        var beforeDrop = new StreamRecorder(dropping);
        await dropping.StartAsync();
        await dropping.InvokeAsync("Subscribe", jobId, 0L);
        await beforeDrop.WaitForAsync(events => events.Count > 0 && events[^1].Seq >= 60);
        await dropping.StopAsync();
        // What the client had when it dropped: the SignalR client may still run handlers for messages it had received
        // after StopAsync returns (it does not wait for them, aspnetcore#20104), and a client resubscribing ignores those.
        List<StreamEvent> seenBeforeDrop = beforeDrop.Events;
        long lastSeen = seenBeforeDrop[^1].Seq;

        await using HubConnection again = JobHarness.Hub(factory, messagePack: true);
        var afterDrop = new StreamRecorder(again);
        await again.StartAsync();
        await again.InvokeAsync("Subscribe", jobId, lastSeen);
        await lateEvents.WaitForAsync(events => events.Any(e => e.State == RunState.Succeeded));
        await afterDrop.WaitForAsync(events => events.Any(e => e.State == RunState.Succeeded));

        List<StreamEvent> history = await JobHarness.HistoryAsync(client, jobId);
        JobHarness.AssertConsecutive(history);
        Assert.True(history.Count > 150, $"history has {history.Count} events");
        JobHarness.AssertConsecutive(lateEvents.Events);
        Assert.Equal(history.Count, lateEvents.Events.Count);
        List<StreamEvent> resumed = [.. seenBeforeDrop, .. afterDrop.Events];
        Assert.Equal(lastSeen + 1, afterDrop.Events[0].Seq);
        JobHarness.AssertConsecutive(resumed);
        Assert.Equal(history.Count, resumed.Count);
        Assert.Equal(JsonSerializer.Serialize(history, JobHarness.Json), JsonSerializer.Serialize(resumed, JobHarness.Json));
    }

    [Fact]
    public async Task SubscribingToAnUnknownJobIsAHubError()
    {
        await using var factory = new TrainingServiceFactory();
        await using HubConnection hub = JobHarness.Hub(factory);
        await hub.StartAsync();

        HubException error = await Assert.ThrowsAsync<HubException>(() => hub.InvokeAsync("Subscribe", Guid.NewGuid(), 0L));

        Assert.Contains("There is no job", error.Message, StringComparison.Ordinal);
    }
}
