using System.Net.Http.Json;
using System.Text.Json;
using TrainingService.Contracts.Streaming;
using TrainingService.Contracts.Training;

namespace TrainingService.Api.Tests.Jobs;

public sealed class RestartTests
{
    [Fact]
    public async Task JobStoppedWithTheHostResumesInANewHostWithContinuousSeqs()
    {
        string folder = Directory.CreateTempSubdirectory("trainingservice-restart-").FullName;
        try
        {
            Guid jobId;
            long stepAtStop;
            await using (var first = new TrainingServiceFactory(dataFolder: folder))
            {
                using HttpClient client = first.CreateClient();
                Guid datasetId = await JobHarness.CreateShapesAsync(client, samples: 512);
                // 2,560 steps: the step read below is up to ~150 ms old, and a machine training 5,000 steps a second still
                // has half a second of them left when the host stops.
                (_, JsonElement job) = await JobHarness.PostJobAsync(client,
                    $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 80, "batchSize": 16 }, "monitoring": { "statsEvery": 3 } }""");
                jobId = job.GetProperty("id").GetGuid();
                while ((await client.GetFromJsonAsync<JsonElement>($"/jobs/{jobId}")).GetProperty("step").GetInt64() < 40)
                {
                    await Task.Delay(20);
                }
            }

            await using (var second = new TrainingServiceFactory(dataFolder: folder))
            {
                using HttpClient client = second.CreateClient();
                JsonElement done = await JobHarness.WaitForStateAsync(client, jobId, "Succeeded");

                List<StreamEvent> history = await JobHarness.HistoryAsync(client, jobId);
                JobHarness.AssertConsecutive(history);
                Assert.Equal(done.GetProperty("totalSteps").GetInt64(), history.Count(e => e.Kind == "step"));
                Assert.Equal(Enumerable.Range(1, (int)done.GetProperty("totalSteps").GetInt64()).Select(i => (long)i), history.Where(e => e.Kind == "step").Select(e => e.Step!.Value));
                Assert.Equal([RunState.Running, RunState.Queued, RunState.Running, RunState.Succeeded], history.Where(e => e.Kind == "state").Select(e => e.State!.Value));
                StreamEvent stopped = history.First(e => e.State == RunState.Queued);
                stepAtStop = history.Last(e => e.Kind == "step" && e.Seq < stopped.Seq).Step!.Value;
                Assert.True(stepAtStop >= 40, $"stopped at step {stepAtStop}");
                Assert.Equal($"stopped with the service at step {stepAtStop}; it resumes from its checkpoint", stopped.Reason);
                Assert.Equal($"resumed at step {stepAtStop}", history.Where(e => e.Kind == "state").ElementAt(2).Reason);
            }
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(folder, recursive: true);
        }
    }
}
