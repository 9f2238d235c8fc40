using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using TrainingService.Api.Streaming;
using TrainingService.Api.Tests.Jobs;

namespace TrainingService.Api.Tests.Service;

/// <summary>The hub is bounded as REST is: connections per owner, jobs per connection, calls per connection; feeds go with their last subscriber.</summary>
public sealed class HubLimitTests
{
    [Fact]
    public async Task AConnectionFollowsAtMostItsCapOfJobsAndAJobsFeedGoesWithItsLastSubscriber()
    {
        await using var factory = new TrainingServiceFactory(new() { ["Streaming:MaxSubscriptionsPerConnection"] = "2" });
        using HttpClient client = factory.CreateClient();
        Guid[] jobs = await QueuedJobsAsync(client, 3);
        LiveEvents live = factory.Services.GetRequiredService<LiveEvents>();
        await using HubConnection hub = JobHarness.Hub(factory);
        await hub.StartAsync();

        await hub.InvokeAsync("Subscribe", jobs[0], 0L);
        await hub.InvokeAsync("Subscribe", jobs[1], 0L);
        await hub.InvokeAsync("Subscribe", jobs[1], 0L); // again: replaces, does not count twice
        HubException refused = await Assert.ThrowsAsync<HubException>(() => hub.InvokeAsync("Subscribe", jobs[2], 0L));
        Assert.Contains("id: This connection follows 2 jobs already, the most it may (configuration Streaming:MaxSubscriptionsPerConnection)", refused.Message, StringComparison.Ordinal);
        Assert.Equal(2, live.Feeds);

        await hub.InvokeAsync("Unsubscribe", jobs[0]);
        await hub.InvokeAsync("Subscribe", jobs[2], 0L); // room again
        Assert.Equal(2, live.Feeds);

        await hub.StopAsync();
        for (DateTime deadline = DateTime.UtcNow.AddSeconds(10); live.Feeds > 0; await Task.Delay(20))
        {
            Assert.True(DateTime.UtcNow < deadline, $"{live.Feeds} feeds left after the only subscriber left");
        }
    }

    [Fact]
    public async Task HubCallsOverTheBurstAreRefusedWithTheLimitAndWhenToRetry()
    {
        await using var factory = new TrainingServiceFactory(new() { ["RateLimits:HubCallsPerMinute"] = "6", ["RateLimits:HubBurst"] = "3" });
        using HttpClient client = factory.CreateClient();
        Guid job = (await QueuedJobsAsync(client, 1))[0];
        await using HubConnection hub = JobHarness.Hub(factory);
        await hub.StartAsync();

        for (int i = 0; i < 3; i++)
        {
            await hub.InvokeAsync("Subscribe", job, 0L);
        }

        HubException refused = await Assert.ThrowsAsync<HubException>(() => hub.InvokeAsync("Subscribe", job, 0L));
        Assert.Matches(@"HubException: Too many hub calls: over the limit of 6 per minute \(bursts of 3\) for a connection \(configuration RateLimits:HubCallsPerMinute\); retry in \d+ s\.$", refused.Message);
        await using HubConnection other = JobHarness.Hub(factory); // a connection of its own has its own bucket
        await other.StartAsync();
        await other.InvokeAsync("Subscribe", job, 0L);
    }

    [Fact]
    public async Task AnOwnerHoldsAtMostItsCapOfConnections()
    {
        await using var factory = new TrainingServiceFactory(new() { ["Streaming:MaxConnectionsPerOwner"] = "2" });
        using HttpClient client = factory.CreateClient();
        Guid job = (await QueuedJobsAsync(client, 1))[0];
        await using HubConnection first = JobHarness.Hub(factory), second = JobHarness.Hub(factory), third = JobHarness.Hub(factory);
        await first.StartAsync();
        await second.StartAsync();

        Exception refused = await RefusedAsync(third, job);
        Assert.Contains("Too many connections: 2 are open for this key or share link already, the most it may hold (configuration Streaming:MaxConnectionsPerOwner)",
            refused.Message, StringComparison.Ordinal);

        await first.StopAsync();
        await using HubConnection fourth = JobHarness.Hub(factory);
        for (DateTime deadline = DateTime.UtcNow.AddSeconds(10); ; await Task.Delay(100))
        {
            try
            {
                await fourth.StartAsync();
                await fourth.InvokeAsync("Subscribe", job, 0L); // room again once one closed
                break;
            }
            catch (Exception) when (DateTime.UtcNow < deadline)
            {
                await fourth.StopAsync();
            }
        }
    }

    // A connection refused in OnConnected is closed by the server: StartAsync fails, or the connection closes at once.
    private static async Task<Exception> RefusedAsync(HubConnection connection, Guid job)
    {
        var closed = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        connection.Closed += e =>
        {
            closed.TrySetResult(e);
            return Task.CompletedTask;
        };
        try
        {
            await connection.StartAsync();
            await connection.InvokeAsync("Subscribe", job, 0L);
        }
        catch (Exception e)
        {
            return (await closed.Task.WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(t => t.IsCompletedSuccessfully ? t.Result : null, TaskScheduler.Default)) ?? e;
        }

        return await closed.Task.WaitAsync(TimeSpan.FromSeconds(10)) ?? throw new InvalidOperationException("the connection was not refused");
    }

    private static async Task<Guid[]> QueuedJobsAsync(HttpClient client, int count)
    {
        Guid dataset = await JobHarness.CreateShapesAsync(client);
        var ids = new Guid[count];
        for (int i = 0; i < count; i++)
        {
            (HttpResponseMessage response, JsonElement job) = await JobHarness.PostJobAsync(client,
                $$"""{ "datasetId": "{{dataset}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 1 } }""");
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            ids[i] = job.GetProperty("id").GetGuid();
        }

        return ids;
    }
}
