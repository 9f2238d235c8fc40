using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using TrainingService.Api.Tests.Jobs;

namespace TrainingService.Api.Tests.Sweeps;

/// <summary>
/// A sweep on three nodes (an api node and two workers, real processes on one data folder): every node runs a sweep
/// controller and none leads, yet each trial gets one job and no more than the parallelism train at once; a worker
/// killed with SIGKILL mid-trial costs its trial nothing but the lease (another worker resumes it from its checkpoint).
/// </summary>
public sealed class SweepScaleOutTests
{
    private const int LeaseSeconds = 6;

    [Fact]
    public async Task EveryNodeRunsAControllerYetEachTrialHasOneJobAndAKilledWorkersTrialIsResumed()
    {
        string folder = Directory.CreateTempSubdirectory("trainingservice-sweep-scale-").FullName;
        try
        {
            using ServiceProcess api = await ServiceProcess.StartAsync(folder, "--Role", "api", "--Telemetry:Node", "api-1", "--Sweeps:PollMilliseconds", "100");
            Task<ServiceProcess> starting = WorkerAsync(folder, "worker-2");
            using ServiceProcess first = await WorkerAsync(folder, "worker-1");
            using ServiceProcess second = await starting;
            Guid dataset = await JobHarness.CreateShapesAsync(api.Client, samples: 256);
            (HttpResponseMessage response, JsonElement created) = await SweepTests.PostAsync(api.Client, $$"""
                { "base": { "datasetId": "{{dataset}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 30, "batchSize": 16 } },
                  "searchSpace": [ { "path": "hyperparameters.learningRate", "choice": [0.01, 0.02, 0.03, 0.04, 0.05, 0.06] } ], "parallelism": 2 }
                """);
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            Guid sweepId = created.GetProperty("id").GetGuid();

            // Kill the worker training the first trial as soon as the trial has written its first checkpoint (at the end of
            // its first epoch, step 16), which it resumes from. The file appears as the trainer takes that step, whereas the
            // job's step as the api reads it is up to ~150 ms old: about what a fast worker takes for a whole trial (480
            // steps, 30 epochs of 16). Hence the short polls too.
            Guid firstTrial = Guid.Empty;
            string checkpoint = "";
            for (DateTime deadline = DateTime.UtcNow.AddSeconds(60); checkpoint.Length == 0 || !File.Exists(checkpoint); await Task.Delay(5))
            {
                Assert.True(DateTime.UtcNow < deadline, $"the first trial ({firstTrial}) has written no checkpoint");
                if (checkpoint.Length == 0
                    && (await api.Client.GetFromJsonAsync<JsonElement>($"/sweeps/{sweepId}")).GetProperty("trialList")[0].GetProperty("jobId") is { ValueKind: JsonValueKind.String } jobId)
                {
                    firstTrial = jobId.GetGuid();
                    checkpoint = Path.Combine(folder, "jobs", firstTrial.ToString("N"), "checkpoint.bin");
                }
            }

            JsonElement running = await api.Client.GetFromJsonAsync<JsonElement>($"/jobs/{firstTrial}");
            (running.GetProperty("worker").GetString() == "worker-1" ? first : second).Kill();
            JsonElement done;
            try
            {
                done = await SweepTests.WaitForSweepAsync(api.Client, sweepId, "Succeeded", TimeSpan.FromSeconds(240));
            }
            catch (Exception ex)
            {
                throw new InvalidOperationException($"api:\n{api.RecentLog}\nworker-1:\n{first.RecentLog}\nworker-2:\n{second.RecentLog}", ex);
            }

            Assert.All(done.GetProperty("trialList").EnumerateArray(), t => Assert.Equal("Completed", t.GetProperty("status").GetString()));
            JsonElement[] jobs = [.. (await api.Client.GetFromJsonAsync<JsonElement>($"/jobs?sweepId={sweepId}")).GetProperty("items").EnumerateArray()];
            Assert.Equal([0, 1, 2, 3, 4, 5], jobs.Select(j => j.GetProperty("sweepTrial").GetInt32()).Order()); // one job per trial, whichever node made it
            JsonElement resumed = await api.Client.GetFromJsonAsync<JsonElement>($"/jobs/{firstTrial}");
            Assert.True(resumed.GetProperty("attempt").GetInt32() >= 2, resumed.ToString());
            Assert.Equal(resumed.GetProperty("totalSteps").GetInt64(), resumed.GetProperty("step").GetInt64());

            var spans = jobs.Select(j => (Start: j.GetProperty("createdAt").GetDateTime(), End: j.GetProperty("finishedAt").GetDateTime())).ToList();
            foreach ((DateTime start, _) in spans)
            {
                int active = spans.Count(s => s.Start <= start && start < s.End);
                Assert.True(active <= 2, $"{active} trials were active at {start:O} with parallelism 2: {string.Join(", ", spans)}");
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>
    /// asha's promotion form on the same three nodes: trials pause at rungs on one worker and are promoted by whichever
    /// node's controller gets there first, then resumed by either worker from the shared checkpoint; the outcome is the
    /// single-process one, step for step (<see cref="SweepTests.RunAshaPromotionAsync"/>).
    /// </summary>
    [Fact]
    public async Task AshaPromotesAcrossNodesAsInOneProcess()
    {
        string folder = Directory.CreateTempSubdirectory("trainingservice-sweep-scale-").FullName;
        try
        {
            using ServiceProcess api = await ServiceProcess.StartAsync(folder, "--Role", "api", "--Telemetry:Node", "api-1", "--Sweeps:PollMilliseconds", "100", "--Jobs:MaxActiveJobsPerOwner", "1");
            // Nothing here is killed, so the service's own lease (30 s), not the kill test's 6 s: in one CI run (2 cores,
            // three service processes beside the tests) a worker went 6 s without renewing its lease, the other worker
            // took its trial over, as it should, and that trial's states then differed from the single-process run's.
            Task<ServiceProcess> starting = WorkerAsync(folder, "worker-2", "--Jobs:MaxActiveJobsPerOwner", "1", "--Jobs:LeaseSeconds", "30");
            using ServiceProcess first = await WorkerAsync(folder, "worker-1", "--Jobs:MaxActiveJobsPerOwner", "1", "--Jobs:LeaseSeconds", "30");
            using ServiceProcess second = await starting;
            try
            {
                await SweepTests.RunAshaPromotionAsync(api.Client);
            }
            catch (Exception ex)
            {
                throw new InvalidOperationException($"api:\n{api.RecentLog}\nworker-1:\n{first.RecentLog}\nworker-2:\n{second.RecentLog}", ex);
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static Task<ServiceProcess> WorkerAsync(string folder, string node, params string[] more) =>
        ServiceProcess.StartAsync(folder, ["--Role", "worker", "--Telemetry:Node", node, "--Sweeps:PollMilliseconds", "100",
            "--Jobs:LeaseSeconds", LeaseSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture), .. more]);
}
