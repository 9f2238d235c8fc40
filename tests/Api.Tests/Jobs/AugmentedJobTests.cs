using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using TrainingService.Contracts.Streaming;

namespace TrainingService.Api.Tests.Jobs;

/// <summary>A job's augmentation is kept with its hyperparameters, shown with the job, and restored when it resumes after a restart.</summary>
public sealed class AugmentedJobTests
{
    private const string Augmentation = """{ "randomCrop": { "padding": 3 }, "horizontalFlip": true, "translate": 2 }""";

    [Fact]
    public async Task TheJobViewShowsTheAugmentationAsGivenAndNullWithoutOne()
    {
        await using TrainingServiceFactory factory = new();
        using HttpClient client = factory.CreateClient();
        Guid datasetId = await JobHarness.CreateShapesAsync(client, samples: 64);

        (HttpResponseMessage created, JsonElement job) = await JobHarness.PostJobAsync(client,
            $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 1, "augmentation": {{Augmentation}} } }""");
        (_, JsonElement plain) = await JobHarness.PostJobAsync(client, $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 1 } }""");

        Assert.Equal(HttpStatusCode.Accepted, created.StatusCode);
        JsonElement stored = (await client.GetFromJsonAsync<JsonElement>($"/jobs/{job.GetProperty("id").GetGuid()}")).GetProperty("hyperparameters").GetProperty("augmentation");
        Assert.Equal(JsonSerializer.Serialize(JsonDocument.Parse(Augmentation)), stored.GetRawText());
        Assert.Equal(JsonValueKind.Null, plain.GetProperty("hyperparameters").GetProperty("augmentation").ValueKind);
        await JobHarness.WaitForStateAsync(client, job.GetProperty("id").GetGuid(), "Succeeded");
    }

    [Fact]
    public async Task AnAugmentedJobResumedInANewHostTrainsAsAnUninterruptedOne()
    {
        string folder = Directory.CreateTempSubdirectory("trainingservice-augmented-").FullName;
        try
        {
            Guid datasetId, resumedId;
            // 2,560 steps: the step read below is up to ~150 ms old, and a machine training 5,000 steps a second still has
            // half a second of them left when the first host stops.
            string body(Guid dataset) =>
                $$"""{ "datasetId": "{{dataset}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 80, "batchSize": 16, "seed": 4, "augmentation": {{Augmentation}} }, "monitoring": { "statsEvery": 0 } }""";
            await using (var first = new TrainingServiceFactory(dataFolder: folder))
            {
                using HttpClient client = first.CreateClient();
                datasetId = await JobHarness.CreateShapesAsync(client, samples: 512);
                (_, JsonElement job) = await JobHarness.PostJobAsync(client, body(datasetId));
                resumedId = job.GetProperty("id").GetGuid();
                while ((await client.GetFromJsonAsync<JsonElement>($"/jobs/{resumedId}")).GetProperty("step").GetInt64() < 40)
                {
                    await Task.Delay(20);
                }
            }

            // The uninterrupted job trains beside the resumed one, which halves the wait (jobs trained at once train as each
            // would alone: ConcurrentJobTests).
            await using (var second = new TrainingServiceFactory(new() { ["Jobs:Concurrency"] = "2" }, dataFolder: folder))
            {
                using HttpClient client = second.CreateClient();
                (_, JsonElement job) = await JobHarness.PostJobAsync(client, body(datasetId));
                Guid uninterruptedId = job.GetProperty("id").GetGuid();
                await JobHarness.WaitForStateAsync(client, resumedId, "Succeeded", TimeSpan.FromMinutes(3));
                await JobHarness.WaitForStateAsync(client, uninterruptedId, "Succeeded", TimeSpan.FromMinutes(3));

                List<StreamEvent> resumed = await JobHarness.HistoryAsync(client, resumedId);
                List<StreamEvent> uninterrupted = await JobHarness.HistoryAsync(client, uninterruptedId);
                Assert.Contains(resumed, e => e.Kind == "state" && e.Reason?.StartsWith("resumed at step", StringComparison.Ordinal) == true);
                double?[] Losses(List<StreamEvent> history) => [.. history.Where(e => e.Kind == "step").Select(e => e.Loss)];
                Assert.Equal(Losses(uninterrupted), Losses(resumed));
            }
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(folder, recursive: true);
        }
    }
}
