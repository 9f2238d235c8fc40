using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using TrainingService.Api.Tests.Jobs;
using TrainingService.Api.Tests.Redis;
using TrainingService.Contracts.Streaming;
using TrainingService.Contracts.Training;
using Xunit.Abstractions;

namespace TrainingService.Api.Tests.Postgres;

/// <summary>
/// The scaled-out shape as compose runs it, each node a real process: PostgreSQL, Redis, one api node and two worker
/// nodes on one data folder. A viewer connected to the api node (WebSockets, no negotiation: what the dashboard does
/// behind a load balancer) follows a job trained on a worker, the worker is killed with SIGKILL, and the other worker
/// resumes the job: the viewer gets every seq once and in order, and the history has every step once.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresScaleOutTests(PostgresServer server, ITestOutputHelper output)
{
    private const int LeaseSeconds = 6;

    [Fact]
    public async Task AViewerOnTheApiNodeFollowsAJobAcrossTheDeathOfItsWorker()
    {
        string database = await server.NewDatabaseAsync();
        await using RedisServer redis = await RedisServer.StartNewAsync();
        string folder = Directory.CreateTempSubdirectory("trainingservice-pgscale-").FullName;
        string[] shared = ["--Database:Provider", "postgres", "--ConnectionStrings:Postgres", database, "--ConnectionStrings:Redis", redis.ConnectionString];
        try
        {
            using ServiceProcess api = await ServiceProcess.StartAsync(folder, [.. shared, "--Role", "api", "--Telemetry:Node", "api-1"]);
            Task<ServiceProcess> starting = WorkerAsync(folder, shared, "worker-2");
            using ServiceProcess first = await WorkerAsync(folder, shared, "worker-1");
            using ServiceProcess second = await starting;

            Guid datasetId = await JobHarness.CreateShapesAsync(api.Client, samples: 512);
            (_, JsonElement posted) = await JobHarness.PostJobAsync(api.Client,
                $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 200, "batchSize": 16 }, "monitoring": { "statsEvery": 5 } }""");
            Guid jobId = posted.GetProperty("id").GetGuid();

            var received = new ConcurrentQueue<StreamEvent>();
            await using HubConnection viewer = new HubConnectionBuilder()
                .WithUrl(new Uri(api.Client.BaseAddress!, "/hubs/training"), o =>
                {
                    o.Transports = HttpTransportType.WebSockets;
                    o.SkipNegotiation = true;
                    o.AccessTokenProvider = () => Task.FromResult<string?>(TrainingServiceFactory.AdminKey);
                })
                .AddJsonProtocol(o => o.PayloadSerializerOptions = JobHarness.Json)
                .Build();
            viewer.On<Guid, List<StreamEvent>>("Events", (_, events) => events.ForEach(received.Enqueue));
            await viewer.StartAsync();
            await viewer.InvokeAsync("Subscribe", jobId, 0L);

            JsonElement running = await JobHarness.WaitForStateAsync(api.Client, jobId, "Running", TimeSpan.FromSeconds(60));
            string holder = running.GetProperty("worker").GetString()!;
            for (var waited = Stopwatch.StartNew(); !received.Any(e => e.Kind == "step" && e.Step >= 100); await Task.Delay(50))
            {
                Assert.True(waited.Elapsed < TimeSpan.FromSeconds(60), $"the viewer on the api node got {received.Count} events in a minute");
            }

            (holder == "worker-1" ? first : second).Kill();
            var clock = Stopwatch.StartNew();
            while ((await api.Client.GetFromJsonAsync<JsonElement>($"/jobs/{jobId}")).GetProperty("worker").GetString() is not { } now || now == holder)
            {
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(LeaseSeconds * 4), $"the job was not taken over within {LeaseSeconds * 4} s");
                await Task.Delay(100);
            }

            TimeSpan toTakeOver = clock.Elapsed;
            JsonElement done = await JobHarness.WaitForStateAsync(api.Client, jobId, "Succeeded", TimeSpan.FromMinutes(3));
            long lastSeq = done.GetProperty("lastSeq").GetInt64();
            for (var waited = Stopwatch.StartNew(); !received.Any(e => e.Seq == lastSeq); await Task.Delay(50))
            {
                Assert.True(waited.Elapsed < TimeSpan.FromSeconds(15), $"the viewer stopped at seq {received.LastOrDefault()?.Seq} of {lastSeq}");
            }

            List<StreamEvent> history = await JobHarness.HistoryAsync(api.Client, jobId);
            JobHarness.AssertConsecutive(history);
            long total = done.GetProperty("totalSteps").GetInt64();
            Assert.Equal(Enumerable.Range(1, (int)total).Select(i => (long)i), history.Where(e => e.Kind == "step").Select(e => e.Step!.Value));
            Assert.Equal([RunState.Running, RunState.Running, RunState.Succeeded], history.Where(e => e.Kind == "state").Select(e => e.State!.Value));
            Assert.Equal(2, done.GetProperty("attempt").GetInt32());

            // The viewer: every seq once, in order, and the same step in each as the history. The steps the dead worker
            // trained after its last checkpoint were trained again under the same seqs; the viewer keeps what it saw.
            List<StreamEvent> seen = [.. received];
            Assert.Equal(Enumerable.Range(1, (int)lastSeq).Select(i => (long)i), seen.Select(e => e.Seq));
            Assert.Equal(history.Select(e => (e.Kind, e.Step)), seen.Select(e => (e.Kind, e.Step)));
            int sameLoss = seen.Zip(history).Count(p => p.First.Kind == "step" && p.First.Loss == p.Second.Loss);
            output.WriteLine($"worker {holder} killed at step ≥ 100; the other worker held the job {toTakeOver.TotalSeconds:F1} s later (lease {LeaseSeconds} s); "
                + $"the viewer on the api node got {seen.Count} events, seqs 1..{lastSeq} once each; {sameLoss} of {total} step losses identical to the history's");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static Task<ServiceProcess> WorkerAsync(string folder, string[] shared, string node) =>
        ServiceProcess.StartAsync(folder, [.. shared, "--Role", "worker", "--Telemetry:Node", node,
            "--Jobs:LeaseSeconds", LeaseSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
}
