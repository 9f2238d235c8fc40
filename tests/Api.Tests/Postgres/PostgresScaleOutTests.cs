using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR.Client;
using TrainingService.Api.Tests.Jobs;
using TrainingService.Api.Tests.Redis;
using TrainingService.Api.Tests.Service;
using TrainingService.Contracts.Streaming;
using TrainingService.Contracts.Training;
using Xunit.Abstractions;

namespace TrainingService.Api.Tests.Postgres;

/// <summary>
/// The scaled-out shape as compose runs it, each node a real process: PostgreSQL, Redis, two api nodes and three worker
/// nodes on one data folder. Six jobs of the same seed spread over the workers; one worker is killed with SIGKILL
/// mid-job, and another resumes its job; others are steered, paused and cancelled through the api nodes. Jobs nobody
/// touched, the resumed one and the paused one train identically; a viewer on the second api node (WebSockets, no
/// negotiation: what the dashboard does behind a load balancer) gets every seq of the killed worker's job once.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresScaleOutTests(PostgresServer server, ITestOutputHelper output)
{
    private const int LeaseSeconds = 6;
    private static readonly string[] s_workers = ["worker-1", "worker-2", "worker-3"];

    [Fact]
    public async Task SixJobsOnThreeWorkersSurviveAKilledWorkerAndObeyCommandsGivenToEitherApiNode()
    {
        string database = await server.NewDatabaseAsync();
        await using RedisServer redis = await RedisServer.StartNewAsync();
        string folder = Directory.CreateTempSubdirectory("trainingservice-pgscale-").FullName;
        string[] shared = ["--Database:Provider", "postgres", "--ConnectionStrings:Postgres", database, "--ConnectionStrings:Redis", redis.ConnectionString];
        // Every node is disposed (killed) at the end, also those that started while another failed to.
        List<Task<ServiceProcess>> starting =
        [
            ServiceProcess.StartAsync(folder, [.. shared, "--Role", "api", "--Telemetry:Node", "api-1"]),
            ServiceProcess.StartAsync(folder, [.. shared, "--Role", "api", "--Telemetry:Node", "api-2"]),
            .. s_workers.Select(name => ServiceProcess.StartAsync(folder, [.. shared, "--Role", "worker", "--Telemetry:Node", name,
                "--Serilog:MinimumLevel:Default", "Information", "--Jobs:LeaseSeconds", LeaseSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture)])),
        ];
        try
        {
            ServiceProcess[] nodes = await Task.WhenAll(starting);
            (ServiceProcess api, ServiceProcess viewerApi, ServiceProcess[] workers) = (nodes[0], nodes[1], nodes[2..]);

            Guid datasetId = await JobHarness.CreateShapesAsync(api.Client, samples: 512);
            string body = $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 120, "batchSize": 16, "seed": 11 }, "monitoring": { "statsEvery": 5 } }""";
            var jobs = new Guid[6];
            for (int i = 0; i < jobs.Length; i++)
            {
                // The fourth is cancelled once it runs; it may start as soon as the paused job frees its worker, so it is
                // made too long to end before then (its losses are not compared).
                (HttpResponseMessage posted, JsonElement job) = await JobHarness.PostJobAsync(api.Client, i == 3 ? body.Replace("\"epochs\": 120", "\"epochs\": 500", StringComparison.Ordinal) : body);
                Assert.Equal(HttpStatusCode.Accepted, posted.StatusCode);
                jobs[i] = job.GetProperty("id").GetGuid();
            }

            // Roles: killed (its worker dies), steered, paused (and resumed), cancelled, and two nobody touches.
            (Guid killed, Guid steered, Guid paused, Guid cancelled, Guid untouched, Guid alsoUntouched) = (jobs[0], jobs[1], jobs[2], jobs[3], jobs[4], jobs[5]);

            // Who holds each job, as the api node sees it, sampled until every job has ended.
            var holders = new ConcurrentDictionary<Guid, ConcurrentDictionary<string, bool>>(jobs.Select(j => KeyValuePair.Create(j, new ConcurrentDictionary<string, bool>())));
            using var watching = new CancellationTokenSource();
            Task watcher = Task.Run(async () =>
            {
                while (!watching.IsCancellationRequested)
                {
                    foreach (Guid job in jobs)
                    {
                        if ((await JobAsync(api, job)).GetProperty("worker").GetString() is { } holder)
                        {
                            holders[job][holder] = true;
                        }
                    }

                    await Task.Delay(50);
                }
            });

            // The first three jobs run at once, one on each worker (each trains one job at a time). Watched as soon as they
            // are posted: connecting the viewer below first once took longer than a job of 45 epochs (CI, 97f5e32). Jobs of
            // 120 epochs (3,840 steps): at 45 one also ended before a steering command given at step 100 reached it (b5d4363).
            string[] first = await Task.WhenAll(jobs.Take(3).Select(async j =>
                (await JobHarness.WaitForStateAsync(api.Client, j, "Running", TimeSpan.FromSeconds(60))).GetProperty("worker").GetString()!));
            Assert.Equal(s_workers, first.Order());

            // A viewer on the other api node follows the job whose worker will be killed (from seq 0: all of it, before the
            // kill at step 300). It keeps what it is sent and drops what it is told a later run replaced (Rewind): the
            // events the dead worker wrote after its last checkpoint.
            var held = new HeldEvents();
            await using HubConnection viewer = held.Connect(viewerApi.Client.BaseAddress!);
            await viewer.StartAsync();
            await viewer.InvokeAsync("Subscribe", killed, 0L);

            // Steering given to api-2 reaches the worker that runs the job.
            await StepAsync(api, steered, 100);
            long steeredFrom = (await JobAsync(api, steered)).GetProperty("lastSeq").GetInt64();
            var clock = Stopwatch.StartNew();
            using (HttpResponseMessage patch = await viewerApi.Client.PatchAsync(new Uri($"/jobs/{steered}/hyperparameters", UriKind.Relative),
                new StringContent("""{ "learningRate": 0.002, "reason": "from the other api node" }""", System.Text.Encoding.UTF8, "application/json")))
            {
                Assert.True(patch.StatusCode == HttpStatusCode.Accepted, await patch.Content.ReadAsStringAsync());
            }

            StreamEvent change = await EventAsync(api, steered, steeredFrom, e => e.Kind == "hyperparameters", TimeSpan.FromSeconds(10));
            TimeSpan toSteer = clock.Elapsed;
            Assert.Equal((0.002, "from the other api node"), (change.LearningRate, change.Reason));

            // Pause given to api-1: the worker checkpoints and lets the job go; resumed, it goes back to the queue.
            await StepAsync(api, paused, 100);
            clock.Restart();
            Assert.Equal(HttpStatusCode.Accepted, (await ServiceHarness.PostAsync(api.Client, $"/jobs/{paused}/pause")).StatusCode);
            await JobHarness.WaitForStateAsync(api.Client, paused, "Paused", TimeSpan.FromSeconds(10));
            TimeSpan toPause = clock.Elapsed;
            await ReleasedAsync(api, paused);
            Assert.Equal(HttpStatusCode.Accepted, (await ServiceHarness.PostAsync(api.Client, $"/jobs/{paused}/resume")).StatusCode);

            // SIGKILL the worker of the first job once it is past a checkpoint or two.
            await StepAsync(api, killed, 300);
            string victim = await JobHarness.HolderAsync(api.Client, killed, s_workers, TimeSpan.FromSeconds(LeaseSeconds * 2));
            workers[Array.IndexOf(s_workers, victim)].Kill();
            clock.Restart();
            long heldAtKill = held.LastSeq;

            // The dead worker's lease lapses (its last renewal was at most a third of it ago); the job waits for a
            // worker, and the two left are busy: it is taken over when one of them is free.
            while ((await JobAsync(api, killed)).GetProperty("worker").GetString() == victim)
            {
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(LeaseSeconds * 2), $"the dead worker still held its job after {LeaseSeconds * 2} s");
                await Task.Delay(100);
            }

            TimeSpan toLapse = clock.Elapsed;
            Assert.True(toLapse >= TimeSpan.FromSeconds(LeaseSeconds / 2.0), $"the lease lapsed after {toLapse}: before it could have run out");

            // Cancel given to api-2 once the fourth job runs (on a surviving worker).
            await JobHarness.WaitForStateAsync(api.Client, cancelled, "Running", TimeSpan.FromSeconds(90));
            clock.Restart();
            Assert.Equal(HttpStatusCode.Accepted, (await ServiceHarness.PostAsync(viewerApi.Client, $"/jobs/{cancelled}/cancel")).StatusCode);
            await JobHarness.WaitForStateAsync(api.Client, cancelled, "Cancelled", TimeSpan.FromSeconds(10));
            TimeSpan toCancel = clock.Elapsed;

            var histories = new Dictionary<Guid, List<StreamEvent>>();
            foreach (Guid job in jobs.Where(j => j != cancelled))
            {
                JsonElement done;
                try
                {
                    done = await JobHarness.WaitForStateAsync(api.Client, job, "Succeeded", TimeSpan.FromMinutes(3));
                }
                catch (Exception ex)
                {
                    throw new InvalidOperationException($"{ex.Message}\n{string.Join("\n", nodes.Select((n, i) => $"node {i}'s log:\n{n.RecentLog}"))}", ex);
                }

                histories[job] = await JobHarness.HistoryAsync(viewerApi.Client, job);
                JobHarness.AssertConsecutive(histories[job]);
                long total = done.GetProperty("totalSteps").GetInt64();
                Assert.Equal(Enumerable.Range(1, (int)total).Select(i => (long)i), histories[job].Where(e => e.Kind == "step").Select(e => e.Step!.Value));
                await ReleasedAsync(api, job);
            }

            await watching.CancelAsync();
            await watcher;

            // Spread: all three workers trained; the killed job was held by two.
            Assert.Equal(s_workers, holders.Values.SelectMany(h => h.Keys).Distinct().Order());
            Assert.Contains(victim, holders[killed].Keys);
            Assert.True(holders[killed].Count >= 2, $"the killed job was held by {string.Join(", ", holders[killed].Keys)}");

            // Same seed, same run: nobody's commands, a worker's death or a pause on one worker and a resume on another
            // change no loss; the steered job's losses change from its change on.
            double[] reference = Losses(histories[untouched]);
            Assert.Equal(reference, Losses(histories[alsoUntouched]));
            Assert.Equal(reference, Losses(histories[killed]));
            Assert.Equal(reference, Losses(histories[paused]));
            long changedAt = histories[steered].First(e => e.Kind == "hyperparameters").Seq;
            double[] steeredLosses = Losses(histories[steered]);
            int stepsBefore = histories[steered].Count(e => e.Kind == "step" && e.Seq < changedAt);
            Assert.Equal(reference.Take(stepsBefore), steeredLosses.Take(stepsBefore));
            Assert.NotEqual(reference.Skip(stepsBefore), steeredLosses.Skip(stepsBefore));
            Assert.Equal(
                [RunState.Running, RunState.Running, RunState.Succeeded],
                histories[killed].Where(e => e.Kind == "state").Select(e => e.State!.Value));
            Assert.Equal(2, (await JobAsync(api, killed)).GetProperty("attempt").GetInt32());

            // The viewer on api-2: every seq of the killed job once, in order, the same steps as the history.
            long lastSeq = histories[killed][^1].Seq;
            await held.WaitForSeqAsync(lastSeq, TimeSpan.FromSeconds(15));
            List<StreamEvent> seen = held.Events;
            List<(long AfterSeq, long Held)> rewinds = held.Rewinds;

            // What the viewer holds is the history: each seq once, and the same event under it (the replaced ones dropped).
            Assert.Equal(Enumerable.Range(1, (int)lastSeq).Select(i => (long)i), seen.Select(e => e.Seq));
            Assert.Equal(histories[killed].Select(e => (e.Kind, e.Step, e.State, e.Loss)), seen.Select(e => (e.Kind, e.Step, e.State, e.Loss)));
            long resumedAt = histories[killed].Where(e => e.State == RunState.Running).Select(e => e.Seq).Last();
            Assert.All(rewinds, r => Assert.Equal(resumedAt - 1, r.AfterSeq));
            if (heldAtKill >= resumedAt)
            {
                Assert.NotEmpty(rewinds); // it held events of the dead run that the resumed run replaced
            }


            output.WriteLine($"first claims: {string.Join(", ", jobs.Take(3).Zip(first).Select(p => p.Second))}; holders: "
                + string.Join("; ", jobs.Select((j, i) => $"job {i + 1}: {string.Join("+", holders[j].Keys.Order())}")));
            output.WriteLine($"steering given to api-2 was in the history {toSteer.TotalMilliseconds:F0} ms later; pause given to api-1 stored in {toPause.TotalMilliseconds:F0} ms; "
                + $"cancel given to api-2 stored in {toCancel.TotalMilliseconds:F0} ms; {victim} killed at step ≥ 300, its lease lapsed {toLapse.TotalSeconds:F1} s later (lease {LeaseSeconds} s)");
            output.WriteLine($"the viewer on api-2 holds {seen.Count} events, seqs 1..{lastSeq} once each; rewinds: "
                + (rewinds.Count == 0 ? "none (the dead worker had stored nothing after its last checkpoint)" : string.Join(", ", rewinds.Select(r => $"to {r.AfterSeq} when holding {r.Held}")))
                + $"; {reference.Length} losses identical across 4 jobs");
        }
        finally
        {
            foreach (Task<ServiceProcess> node in starting)
            {
                try
                {
                    (await node).Dispose();
                }
                catch (Exception) when (!node.IsCompletedSuccessfully)
                {
                    // it did not start; StartAsync has already disposed of it
                }
            }

            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task AWorkerThatCannotReachTheDatabaseIsNotReadyUntilItCanClaimAgain()
    {
        string database = await server.NewDatabaseAsync();
        string folder = Directory.CreateTempSubdirectory("trainingservice-pgscale-").FullName;
        try
        {
            using ServiceProcess worker = await ServiceProcess.StartAsync(folder, "--Database:Provider", "postgres", "--ConnectionStrings:Postgres", database,
                "--Role", "worker", "--Telemetry:Node", "worker-1", "--Jobs:ClaimPollMilliseconds", "200");
            Assert.Equal("Healthy", (await ReadyAsync(worker)).Claiming);

            await server.StopAsync();
            (int Status, string Claiming, string Description) down;
            try
            {
                // A load balancer or Kubernetes takes a worker that cannot claim out of rotation: 503, claiming Unhealthy.
                var clock = Stopwatch.StartNew();
                while ((down = await ReadyAsync(worker)).Claiming != "Unhealthy")
                {
                    Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"still {down} 30 s after the database stopped");
                    await Task.Delay(100);
                }

                Assert.Equal(503, down.Status);
                output.WriteLine($"not ready {clock.ElapsedMilliseconds} ms after the database stopped: {down.Description}");
            }
            finally
            {
                await server.StartAsync();
            }

            var again = Stopwatch.StartNew();
            while ((await ReadyAsync(worker)) is var up && (up.Status != 200 || up.Claiming != "Healthy"))
            {
                Assert.True(again.Elapsed < TimeSpan.FromSeconds(60), $"still {up} 60 s after the database started");
                await Task.Delay(100);
            }

            output.WriteLine($"ready again {again.ElapsedMilliseconds} ms after the database started");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static async Task<(int Status, string Claiming, string Description)> ReadyAsync(ServiceProcess node)
    {
        // Anonymous, as a load balancer asks: a key would be looked up in the database.
        using var anonymous = new HttpClient { BaseAddress = node.Client.BaseAddress };
        using HttpResponseMessage ready = await anonymous.GetAsync(new Uri("/health/ready", UriKind.Relative));
        string body = await ready.Content.ReadAsStringAsync();
        JsonElement check = default;
        Assert.True(JsonDocument.Parse(body).RootElement.TryGetProperty("checks", out JsonElement checks) && checks.TryGetProperty("claiming", out check),
            $"{(int)ready.StatusCode}: {body}");
        return ((int)ready.StatusCode, check.GetProperty("status").GetString()!, check.GetProperty("description").GetString() ?? "");
    }

    private static double[] Losses(List<StreamEvent> history) => [.. history.Where(e => e.Kind == "step").Select(e => e.Loss!.Value)];

    private static async Task<JsonElement> JobAsync(ServiceProcess node, Guid jobId) =>
        await node.Client.GetFromJsonAsync<JsonElement>($"/jobs/{jobId}");

    private static async Task StepAsync(ServiceProcess node, Guid jobId, long step)
    {
        for (var waited = Stopwatch.StartNew(); (await JobAsync(node, jobId)).GetProperty("step").GetInt64() < step; await Task.Delay(20))
        {
            Assert.True(waited.Elapsed < TimeSpan.FromSeconds(60), $"job {jobId} did not reach step {step} in a minute");
        }
    }

    /// <summary>The first stored event after <paramref name="afterSeq"/> that matches, read as it is stored.</summary>
    private static async Task<StreamEvent> EventAsync(ServiceProcess node, Guid jobId, long afterSeq, Func<StreamEvent, bool> match, TimeSpan timeout)
    {
        for (var waited = Stopwatch.StartNew(); ; await Task.Delay(20))
        {
            List<StreamEvent> page = (await node.Client.GetFromJsonAsync<List<StreamEvent>>($"/jobs/{jobId}/events?afterSeq={afterSeq}&limit=500", JobHarness.Json))!;
            if (page.FirstOrDefault(match) is { } found)
            {
                return found;
            }

            afterSeq = page.Count == 0 ? afterSeq : page[^1].Seq;
            Assert.True(waited.Elapsed < timeout, $"no such event in job {jobId}'s history after {timeout}");
        }
    }

    /// <summary>The job once no worker holds it (a run releases its lease right after its last events are stored).</summary>
    private static async Task ReleasedAsync(ServiceProcess node, Guid jobId)
    {
        for (var waited = Stopwatch.StartNew(); (await JobAsync(node, jobId)).GetProperty("worker").ValueKind != JsonValueKind.Null; await Task.Delay(50))
        {
            Assert.True(waited.Elapsed < TimeSpan.FromSeconds(10), $"job {jobId} still held 10 s after it stopped");
        }
    }
}
