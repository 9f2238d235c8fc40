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

    // CI at df750d0: a viewer reconnecting to a resumed run was never told (no Rewind) that its events were replaced.
    // The resumed run's truncation is committed before its first event; a viewer arriving between the two, or while its
    // subscription is set up, must still be told.
    [Fact]
    public async Task AReconnectingViewerIsToldOfATruncationBeforeTheNewRunsFirstEventOrDuringItsSubscription()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        LiveEvents live = factory.Services.GetRequiredService<LiveEvents>();
        Guid datasetId = await JobHarness.CreateShapesAsync(client, samples: 512);
        (_, JsonElement job) = await JobHarness.PostJobAsync(client,
            $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 1, "batchSize": 16 } }""");
        Guid jobId = job.GetProperty("id").GetGuid();
        long lastSeq = (await JobHarness.WaitForStateAsync(client, jobId, "Succeeded", TimeSpan.FromMinutes(1))).GetProperty("lastSeq").GetInt64();
        Assert.True(lastSeq > 20, $"the job has {lastSeq} events");

        // Between the two: the history ends at lastSeq, the viewer holds 50 events more of the run it replaced.
        await using HubConnection between = JobHarness.Hub(factory);
        Func<List<string>> betweenGot = Record(between);
        await between.StartAsync();
        await between.InvokeAsync("SubscribeAfter", jobId, lastSeq + 50, 1);
        await WaitAsync(betweenGot, 1);
        Assert.Equal($"rewind {lastSeq}", betweenGot()[0]);

        // During: the viewer holds every event, and the "resumed run" replaces those after seq 10 while the subscription
        // is set up (inside the read of where its events were replaced; read before the subscription, that went unsaid).
        await using HubConnection during = JobHarness.Hub(factory);
        Func<List<string>> duringGot = Record(during);
        await during.StartAsync();
        await live.SubscribeAsync(during.ConnectionId!, jobId, afterSeq: lastSeq, persistedSeq: lastSeq, attempt: 1, replacedAfter: () =>
        {
            live.Truncate(jobId, 10);
            return Task.FromResult<long?>(null); // what the history said just before the truncation's commit
        });
        live.Advance(jobId, lastSeq); // the new run's events, here the same seqs over again
        await WaitAsync(duringGot, 2);
        Assert.Equal("rewind 10", duringGot()[0]);
        Assert.Equal("events 11", duringGot()[1].Split('-')[0]);

        static Func<List<string>> Record(HubConnection viewer)
        {
            var received = new List<string>(); // in order: "rewind N", "events A-B"
            viewer.On<Guid, long>(nameof(ITrainingClient.Rewind), (_, afterSeq) => { lock (received) { received.Add($"rewind {afterSeq}"); } });
            viewer.On<Guid, List<StreamEvent>>(nameof(ITrainingClient.Events), (_, events) => { lock (received) { received.Add($"events {events[0].Seq}-{events[^1].Seq}"); } });
            return () => { lock (received) { return [.. received]; } };
        }

        static async Task WaitAsync(Func<List<string>> received, int count)
        {
            for (DateTime deadline = DateTime.UtcNow.AddSeconds(30); received().Count < count; await Task.Delay(20))
            {
                Assert.True(DateTime.UtcNow < deadline, $"the viewer got [{string.Join(", ", received())}]");
            }
        }
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
