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
                (_, JsonElement job) = await JobHarness.PostJobAsync(client,
                    $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 40, "batchSize": 16 }, "monitoring": { "statsEvery": 3 } }""");
                jobId = job.GetProperty("id").GetGuid();
                while ((await client.GetFromJsonAsync<JsonElement>($"/jobs/{jobId}")).GetProperty("step").GetInt64() < 40)
                {
                    await Task.Delay(20);
                }
            }

            await using (var second = new TrainingServiceFactory(dataFolder: folder))
            {
                using HttpClient client = second.CreateClient();
                JsonElement stopped = await client.GetFromJsonAsync<JsonElement>($"/jobs/{jobId}");
                stepAtStop = stopped.GetProperty("step").GetInt64();
                JsonElement done = await JobHarness.WaitForStateAsync(client, jobId, "Succeeded");

                List<StreamEvent> history = await JobHarness.HistoryAsync(client, jobId);
                JobHarness.AssertConsecutive(history);
                Assert.Equal(done.GetProperty("totalSteps").GetInt64(), history.Count(e => e.Kind == "step"));
                Assert.Equal(Enumerable.Range(1, (int)done.GetProperty("totalSteps").GetInt64()).Select(i => (long)i), history.Where(e => e.Kind == "step").Select(e => e.Step!.Value));
                Assert.Equal([RunState.Running, RunState.Queued, RunState.Running, RunState.Succeeded], history.Where(e => e.Kind == "state").Select(e => e.State!.Value));
                Assert.StartsWith($"resumed at step {stepAtStop}", history.Where(e => e.Kind == "state").ElementAt(2).Reason, StringComparison.Ordinal);
            }
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(folder, recursive: true);
        }
    }
}
