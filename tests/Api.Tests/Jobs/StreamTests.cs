using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using TrainingService.Api.Streaming;
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
        // 64,000 steps, finished by the test once the resubscribed client has had live events: it runs through every
        // subscription however fast the machine trains.
        (_, JsonElement job) = await JobHarness.PostJobAsync(client,
            $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 1000, "batchSize": 16 }, "monitoring": { "statsEvery": 5 } }""");
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
        await afterDrop.WaitForAsync(events => events.Count > 0 && events[^1].Seq > 150);
        await client.PostAsync(new Uri($"/jobs/{jobId}/finish", UriKind.Relative), null);
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

    // Issue 15's fan-out: hundreds of viewers of one job must not mean hundreds of serialisations of each frame.
    [Fact]
    public async Task ViewersAtTheLiveEdgeShareEachFrameAndEachGetsEveryEventOnce()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        LiveEvents live = factory.Services.GetRequiredService<LiveEvents>();
        Guid datasetId = await JobHarness.CreateShapesAsync(client, samples: 1024);
        // 64,000 steps, finished by the test once every viewer has followed it live for a while: it is still running when
        // they join however fast the machine trains.
        (_, JsonElement job) = await JobHarness.PostJobAsync(client,
            $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 1000, "batchSize": 16 }, "monitoring": { "statsEvery": 5 } }""");
        Guid jobId = job.GetProperty("id").GetGuid();
        while ((await client.GetFromJsonAsync<JsonElement>($"/jobs/{jobId}")).GetProperty("step").GetInt64() < 20)
        {
            await Task.Delay(10);
        }

        var viewers = new List<(HubConnection Connection, StreamRecorder Recorder, long From)>();
        for (int i = 0; i < 6; i++)
        {
            HubConnection connection = JobHarness.Hub(factory, messagePack: i % 2 == 1);
            var recorder = new StreamRecorder(connection);
            await connection.StartAsync();
            long from = (await client.GetFromJsonAsync<JsonElement>($"/jobs/{jobId}")).GetProperty("lastSeq").GetInt64();
            await connection.InvokeAsync("Subscribe", jobId, from);
            viewers.Add((connection, recorder, from));
        }

        long framesBefore = live.FramesMade;
        foreach ((_, StreamRecorder recorder, _) in viewers)
        {
            await recorder.WaitForAsync(_ => recorder.Messages >= 10); // about a second of live events
        }

        await client.PostAsync(new Uri($"/jobs/{jobId}/finish", UriKind.Relative), null);
        foreach ((_, StreamRecorder recorder, _) in viewers)
        {
            await recorder.WaitForAsync(events => events.Any(e => e.State == RunState.Succeeded));
        }

        List<StreamEvent> history = await JobHarness.HistoryAsync(client, jobId);
        foreach ((HubConnection connection, StreamRecorder recorder, long from) in viewers)
        {
            Assert.Equal(JsonSerializer.Serialize(history.Where(e => e.Seq > from), JobHarness.Json), JsonSerializer.Serialize(recorder.Events, JobHarness.Json));
            await connection.DisposeAsync();
        }

        // The six got mostly the same frames (each joined at its own seq, and one running late makes a frame of its own
        // when it catches up). Unshared, about as many frames are made as messages come from memory (about 0.6 of them
        // here, the rest from the history); shared, 0.1–0.15 of them (measured).
        long made = live.FramesMade - framesBefore;
        int most = viewers.Max(v => v.Recorder.Messages), total = viewers.Sum(v => v.Recorder.Messages);
        Assert.True(most >= 5, $"the viewers got {most} messages at most: too few to tell");
        Assert.True(made * 3 < total, $"{made} frames made for 6 viewers who got {total} messages in all ({most} at most)");
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
