using System.Net.Http.Json;
using System.Text.Json;
using TrainingService.Contracts.Streaming;

namespace TrainingService.Api.Tests.Jobs;

/// <summary>Jobs trained side by side on one node (Jobs:Concurrency) train exactly as each would alone (issue 15).</summary>
public sealed class ConcurrentJobTests
{
    // Dropout and augmentation draw from the job's generators every step: a generator shared between jobs shows at once.
    private const string Spec = """
        { "input": { "channels": 1, "height": 16, "width": 16 },
          "layers": [ { "kind": "conv2d", "filters": 4, "kernel": 3 }, { "kind": "relu" }, { "kind": "maxpool2d", "kernel": 2 },
                      { "kind": "flatten" }, { "kind": "dropout", "p": 0.3 }, { "kind": "linear", "units": 3 } ] }
        """;

    private const int Epochs = 16;

    [Fact]
    public async Task TwoJobsTrainedAtOnceHaveTheStepLossesOfEachTrainedAlone()
    {
        // A short claim poll: the second job starts while the first trains, not up to a second later.
        await using TrainingServiceFactory factory = new(new() { ["Jobs:Concurrency"] = "2", ["Jobs:ClaimPollMilliseconds"] = "50" });
        using HttpClient client = factory.CreateClient();
        Guid datasetId = await JobHarness.CreateShapesAsync(client, classes: 3, samples: 512);

        Guid first = await StartAsync(client, datasetId, seed: 3);
        double?[] alone3 = await LossesAsync(client, first);
        Guid second = await StartAsync(client, datasetId, seed: 4);
        double?[] alone4 = await LossesAsync(client, second);
        // Once both slots are free, the two are created back to back: each slot claims one at once, milliseconds apart,
        // and each trains 512 steps, so they overlap even on a machine that trains thousands of steps a second. (Waiting
        // for the first to be Running, a state written about every 100 ms, before creating the second let a fast machine
        // finish the first, then 256 steps, before the second was claimed.)
        await LetGoAsync(client, first, second);
        Guid together3 = await StartAsync(client, datasetId, seed: 3);
        Guid together4 = await StartAsync(client, datasetId, seed: 4);
        double?[] losses3 = await LossesAsync(client, together3);
        double?[] losses4 = await LossesAsync(client, together4);

        (DateTime First, DateTime Last) span3 = await StepSpanAsync(client, together3);
        (DateTime First, DateTime Last) span4 = await StepSpanAsync(client, together4);
        Assert.True(span3.First < span4.Last && span4.First < span3.Last, $"the jobs did not overlap: {span3} and {span4}");
        Assert.Equal(Epochs * 32, alone3.Length);
        Assert.NotEqual(alone3, alone4);
        Assert.Equal(alone3, losses3);
        Assert.Equal(alone4, losses4);
    }

    private static async Task<Guid> StartAsync(HttpClient client, Guid datasetId, int seed)
    {
        (_, JsonElement job) = await JobHarness.PostJobAsync(client, $$"""
            { "datasetId": "{{datasetId}}", "model": {{Spec}},
              "hyperparameters": { "epochs": {{Epochs}}, "batchSize": 16, "learningRate": 0.05, "seed": {{seed}}, "validationFraction": 0,
                                   "augmentation": { "randomCrop": { "padding": 2 }, "horizontalFlip": true } },
              "monitoring": { "statsEvery": 5 } }
            """);
        return job.GetProperty("id").GetGuid();
    }

    private static async Task<double?[]> LossesAsync(HttpClient client, Guid jobId)
    {
        await JobHarness.WaitForStateAsync(client, jobId, "Succeeded");
        return [.. (await JobHarness.HistoryAsync(client, jobId)).Where(e => e.Kind == "step").Select(e => e.Loss)];
    }

    /// <summary>Waits until no worker holds the jobs: a run lets its job go just after its last events are stored.</summary>
    private static async Task LetGoAsync(HttpClient client, params Guid[] jobIds)
    {
        foreach (Guid jobId in jobIds)
        {
            for (int i = 0; i < 100 && (await client.GetFromJsonAsync<JsonElement>($"/jobs/{jobId}")).GetProperty("worker").ValueKind != JsonValueKind.Null; i++)
            {
                await Task.Delay(20);
            }
        }
    }

    private static async Task<(DateTime First, DateTime Last)> StepSpanAsync(HttpClient client, Guid jobId)
    {
        List<StreamEvent> steps = [.. (await JobHarness.HistoryAsync(client, jobId)).Where(e => e.Kind == "step")];
        return (steps[0].Time, steps[^1].Time);
    }
}
