using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR.Client;
using TrainingService.Api.Tests.Jobs;
using TrainingService.Contracts.Streaming;
using TrainingService.Contracts.Training;
using Xunit.Abstractions;

namespace TrainingService.Api.Tests.Service;

/// <summary>Runs alone: it compares wall times, which other tests training at the same moment would distort.</summary>
[CollectionDefinition(nameof(StalledClientTests), DisableParallelization = true)]
public sealed class StalledClientCollection;

[Collection(nameof(StalledClientTests))]
public sealed class StalledClientTests(ITestOutputHelper output)
{
    [Fact]
    public async Task ClientWhoseHandlerBlocksSlowsNeitherTrainingNorOtherClientsAndLaterGetsEveryEvent()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        Guid datasetId = await JobHarness.CreateShapesAsync(client, samples: 512);
        // 32 steps an epoch, 320 steps, a layers event every 10: about 370 events.
        string request = $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 10, "batchSize": 16 }, "monitoring": { "statsEvery": 10 } }""";

        Guid baselineId = await StartAsync(client, request);
        await JobHarness.WaitForStateAsync(client, baselineId, "Succeeded");
        TimeSpan baseline = WallTime(await JobHarness.HistoryAsync(client, baselineId));

        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var stalledEvents = new ConcurrentQueue<StreamEvent>();
        int stalledFrames = 0;
        await using HubConnection stalled = JobHarness.Hub(factory);
        // A connection's handlers run one at a time: while this one waits no later frame reaches the test. (The client
        // still drains its transport into a queue, so the server never feels it; the next test stalls the transport.)
        stalled.On<Guid, List<StreamEvent>>(nameof(ITrainingClient.Events), async (_, events) =>
        {
            Interlocked.Increment(ref stalledFrames);
            await release.Task;
            foreach (StreamEvent e in events)
            {
                stalledEvents.Enqueue(e);
            }
        });
        await using HubConnection healthy = JobHarness.Hub(factory, messagePack: true);
        var healthyEvents = new StreamRecorder(healthy);
        await stalled.StartAsync();
        await healthy.StartAsync();

        Guid jobId = await StartAsync(client, request);
        await stalled.InvokeAsync("Subscribe", jobId, 0L);
        await healthy.InvokeAsync("Subscribe", jobId, 0L);
        await JobHarness.WaitForStateAsync(client, jobId, "Succeeded", TimeSpan.FromSeconds(30));
        await healthyEvents.WaitForAsync(events => events.Any(e => e.State == RunState.Succeeded), TimeSpan.FromSeconds(10));

        List<StreamEvent> history = await JobHarness.HistoryAsync(client, jobId);
        JobHarness.AssertConsecutive(history);
        Assert.Equal(history.Count, healthyEvents.Events.Count);
        JobHarness.AssertConsecutive(healthyEvents.Events);
        Assert.Equal(JsonSerializer.Serialize(history, JobHarness.Json), JsonSerializer.Serialize(healthyEvents.Events, JobHarness.Json));
        Assert.True(Volatile.Read(ref stalledFrames) >= 1, "the stalled connection never received a frame, so it was never stalled");
        Assert.Empty(stalledEvents);
        TimeSpan withStalledClient = WallTime(history);
        output.WriteLine($"{history.Count} events; wall time {withStalledClient.TotalMilliseconds:F0} ms with a stalled client, {baseline.TotalMilliseconds:F0} ms without subscribers");
        // Loose: a guard against training waiting for a client, not a benchmark; the allowance absorbs scheduler noise
        // on a shared machine when a run lasts well under a second.
        Assert.True(withStalledClient <= (2 * baseline) + TimeSpan.FromMilliseconds(250),
            $"with a stalled client the job ran {withStalledClient.TotalMilliseconds:F0} ms, without subscribers {baseline.TotalMilliseconds:F0} ms");

        release.SetResult();
        DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!stalledEvents.Any(e => e.State == RunState.Succeeded))
        {
            Assert.True(DateTime.UtcNow < deadline, $"the released connection has {stalledEvents.Count} of {history.Count} events");
            await Task.Delay(20);
        }

        List<StreamEvent> caughtUp = [.. stalledEvents];
        JobHarness.AssertConsecutive(caughtUp);
        Assert.Equal(JsonSerializer.Serialize(history, JobHarness.Json), JsonSerializer.Serialize(caughtUp, JobHarness.Json));
    }

    [Fact]
    public async Task ClientThatStopsReadingItsTransportHoldsUpOnlyItsOwnSubscription()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        Guid datasetId = await JobHarness.CreateShapesAsync(client, samples: 512);
        // Layer statistics every step: about 0.7 MB of events, far more than the connection buffers on either side.
        string request = $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 10, "batchSize": 16 }, "monitoring": { "statsEvery": 1 } }""";

        Guid baselineId = await StartAsync(client, request);
        await JobHarness.WaitForStateAsync(client, baselineId, "Succeeded");
        TimeSpan baseline = WallTime(await JobHarness.HistoryAsync(client, baselineId));

        await using var stalled = new RawStreamClient(factory);
        await using HubConnection healthy = JobHarness.Hub(factory);
        var healthyEvents = new StreamRecorder(healthy);
        await stalled.StartAsync();
        await healthy.StartAsync();

        Guid jobId = await StartAsync(client, request);
        await stalled.SubscribeAsync(jobId, 0);
        await healthy.InvokeAsync("Subscribe", jobId, 0L);
        await stalled.ReadUntilAsync(events => events.Count > 0, TimeSpan.FromSeconds(10)); // then it reads nothing more
        await JobHarness.WaitForStateAsync(client, jobId, "Succeeded", TimeSpan.FromSeconds(30));
        await healthyEvents.WaitForAsync(events => events.Any(e => e.State == RunState.Succeeded), TimeSpan.FromSeconds(10));

        List<StreamEvent> history = await JobHarness.HistoryAsync(client, jobId);
        JobHarness.AssertConsecutive(history);
        int bytes = JsonSerializer.SerializeToUtf8Bytes(history, JobHarness.Json).Length;
        Assert.True(bytes > 256 * 1024, $"the events take only {bytes} bytes: the server may never have had to hold the stalled connection back");
        Assert.Equal(JsonSerializer.Serialize(history, JobHarness.Json), JsonSerializer.Serialize(healthyEvents.Events, JobHarness.Json));
        TimeSpan withStalledClient = WallTime(history);
        output.WriteLine($"{history.Count} events, {bytes / 1024} KiB; wall time {withStalledClient.TotalMilliseconds:F0} ms with a stalled transport, {baseline.TotalMilliseconds:F0} ms without subscribers");
        Assert.True(withStalledClient <= (2 * baseline) + TimeSpan.FromMilliseconds(250),
            $"with a stalled client the job ran {withStalledClient.TotalMilliseconds:F0} ms, without subscribers {baseline.TotalMilliseconds:F0} ms");

        await stalled.ReadUntilAsync(events => events.Any(e => e.State == RunState.Succeeded), TimeSpan.FromSeconds(20));
        JobHarness.AssertConsecutive(stalled.Events);
        Assert.Equal(JsonSerializer.Serialize(history, JobHarness.Json), JsonSerializer.Serialize(stalled.Events, JobHarness.Json));
    }

    private static async Task<Guid> StartAsync(HttpClient client, string request)
    {
        (HttpResponseMessage response, JsonElement job) = await JobHarness.PostJobAsync(client, request);
        using (response)
        {
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        }

        return job.GetProperty("id").GetGuid();
    }

    /// <summary>From the Running event to the Succeeded event, as the training thread stamped them.</summary>
    private static TimeSpan WallTime(List<StreamEvent> history) =>
        history.Single(e => e.State == RunState.Succeeded).Time - history.Single(e => e.State == RunState.Running).Time;
}
