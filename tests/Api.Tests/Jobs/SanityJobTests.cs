using System.Net;
using System.Text.Json;
using TrainingService.Api.Tests.Service;
using TrainingService.Contracts.Streaming;

namespace TrainingService.Api.Tests.Jobs;

/// <summary>POST /jobs with "sanity": overfit a tiny subset, or run a learning-rate range test, instead of training.</summary>
public sealed class SanityJobTests
{
    [Fact]
    public async Task OverfitSubsetReportsThatTheLossReachedZero()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        Guid dataset = await JobHarness.CreateShapesAsync(client, samples: 256);
        (HttpResponseMessage response, JsonElement job) = await JobHarness.PostJobAsync(client,
            $$"""{ "datasetId": "{{dataset}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "optimizer": "adam", "learningRate": 0.01 }, "sanity": { "check": "overfitSubset", "samples": 20 } }""");
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Equal("overfitSubset", job.GetProperty("sanity").GetProperty("check").GetString());
        Assert.Equal(300, job.GetProperty("totalSteps").GetInt64());
        Guid id = job.GetProperty("id").GetGuid();
        await JobHarness.WaitForStateAsync(client, id, "Succeeded");

        StreamEvent verdict = Assert.Single(await JobHarness.HistoryAsync(client, id), e => e.Kind == "sanity");
        Assert.True(verdict.Passed, verdict.Message);
        Assert.Equal(Contracts.Training.SanityCheck.OverfitSubset, verdict.Check);
        Assert.Contains("by heart", verdict.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ARangeTestSuggestsALearningRateAndKeepsNoModel()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        Guid dataset = await JobHarness.CreateShapesAsync(client, samples: 512);
        (_, JsonElement job) = await JobHarness.PostJobAsync(client,
            $$"""{ "datasetId": "{{dataset}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "batchSize": 16 }, "sanity": { "check": "learningRateRangeTest", "minLearningRate": 0.0001, "maxLearningRate": 10, "steps": 150 } }""");
        Guid id = job.GetProperty("id").GetGuid();
        await JobHarness.WaitForStateAsync(client, id, "Succeeded");

        List<StreamEvent> history = await JobHarness.HistoryAsync(client, id);
        StreamEvent verdict = Assert.Single(history, e => e.Kind == "sanity");
        Assert.Equal(history[^2], verdict); // the verdict, then Succeeded
        Assert.True(verdict.Passed == verdict.SuggestedLearningRate is not null, verdict.Message);
        double[] rates = [.. history.Where(e => e.Kind == "step").Select(e => e.LearningRate!.Value)];
        Assert.Equal(0.0001, rates[0], 12);
        Assert.True(rates.Zip(rates.Skip(1)).All(p => p.Second > p.First), "the rate grows every step");
        JsonElement problem = await ServiceHarness.AssertProblemAsync(await client.GetAsync(new Uri($"/jobs/{id}/weights", UriKind.Relative)), HttpStatusCode.Conflict);
        Assert.Contains("range test", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("sgd", 0.001, 0.1)]
    [InlineData("adam", 0.0001, 0.01)]
    public async Task TheRangeTestWithItsDefaultsSuggestsARateOnTheDefaultDatasetAndModel(string optimizer, double low, double high)
    {
        // The first check a person runs, on the first data they have: nothing but the check named.
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        using HttpResponseMessage dataset = await client.PostAsync(new Uri("/datasets/builtin", UriKind.Relative),
            new StringContent("{}", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Created, dataset.StatusCode);
        (HttpResponseMessage response, JsonElement job) = await JobHarness.PostJobAsync(client,
            $$"""{ "hyperparameters": { "optimizer": "{{optimizer}}" }, "sanity": { "check": "learningRateRangeTest" } }""");
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Guid id = job.GetProperty("id").GetGuid();
        await JobHarness.WaitForStateAsync(client, id, "Succeeded", TimeSpan.FromMinutes(3));

        StreamEvent verdict = Assert.Single(await JobHarness.HistoryAsync(client, id), e => e.Kind == "sanity");
        Assert.True(verdict.Passed, verdict.Message);
        Assert.InRange(verdict.SuggestedLearningRate!.Value, low, high);
    }

    [Theory]
    [InlineData("""{ "check": "overfitSubset", "samples": 1 }""", "sanity.samples")]
    [InlineData("""{ "check": "learningRateRangeTest", "minLearningRate": 1, "maxLearningRate": 0.1 }""", "sanity.maxLearningRate")]
    [InlineData("""{ "check": "learningRateRangeTest", "steps": 2 }""", "sanity.steps")]
    [InlineData("""{ "check": "guessTheRate" }""", "sanity.check")]
    public async Task BadSanityOptionsAreA400NamingTheField(string sanity, string field)
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        await JobHarness.CreateShapesAsync(client);
        (HttpResponseMessage response, _) = await JobHarness.PostJobAsync(client, $$"""{ "sanity": {{sanity}} }""");
        JsonElement problem = await ServiceHarness.AssertProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Contains(field, ServiceHarness.FieldsOf(problem));
    }
}
