using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using TrainingService.Api.Tests.Service;

namespace TrainingService.Api.Tests.Jobs;

/// <summary>GET /jobs/compare: jobs side by side, with the settings in which they differ.</summary>
public sealed class CompareTests
{
    [Fact]
    public async Task TheSettingsThatDifferComeWithEveryJobsValueAndNothingElse()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        Guid dataset = await JobHarness.CreateShapesAsync(client, samples: 64);
        string wide = JobHarness.TinySpec.Replace("\"filters\": 4", "\"filters\": 8", StringComparison.Ordinal);
        Guid[] jobs =
        [
            await StartAsync(client, dataset, JobHarness.TinySpec, """{ "epochs": 1, "learningRate": 0.01 }"""),
            await StartAsync(client, dataset, wide, """{ "epochs": 1, "learningRate": 0.1 }"""),
            await StartAsync(client, dataset, JobHarness.TinySpec, """{ "epochs": 1, "learningRate": 0.01, "augmentation": { "horizontalFlip": true } }"""),
        ];

        HttpResponseMessage response = await client.GetAsync(new Uri($"/jobs/compare?ids={string.Join(',', jobs)}", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        JsonElement comparison = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(jobs, comparison.GetProperty("jobs").EnumerateArray().Select(j => j.GetProperty("id").GetGuid()));
        Assert.Equal(0.1, comparison.GetProperty("jobs")[1].GetProperty("hyperparameters").GetProperty("learningRate").GetDouble()); // each job's whole view
        Dictionary<string, string> differences = comparison.GetProperty("differences").EnumerateArray()
            .ToDictionary(d => d.GetProperty("path").GetString()!, d => d.GetProperty("values").GetRawText());
        Assert.Equal("[0.01,0.1,0.01]", differences["hyperparameters.learningRate"]);
        Assert.Equal("[4,8,4]", differences["layers.conv1.filters"]);
        Assert.Contains("true", differences.Single(d => d.Key.StartsWith("hyperparameters.augmentation", StringComparison.Ordinal)).Value, StringComparison.Ordinal);
        Assert.DoesNotContain("hyperparameters.batchSize", differences.Keys);
        Assert.DoesNotContain("datasetId", differences.Keys);
        Assert.DoesNotContain("layers.linear1.units", differences.Keys);
    }

    [Theory]
    [InlineData("", "give 2 to 20")]
    [InlineData("01a2223f-0000-0000-0000-000000000000", "got 1")]
    [InlineData("01a2223f-0000-0000-0000-000000000000,01a2223f-0000-0000-0000-000000000000", "got 1")]
    [InlineData("01a2223f-0000-0000-0000-000000000000,not-an-id", "\"not-an-id\" is not a job id")]
    public async Task BadIdsAreA400NamingThem(string ids, string reason)
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        JsonElement problem = await ServiceHarness.AssertProblemAsync(await client.GetAsync(new Uri($"/jobs/compare?ids={ids}", UriKind.Relative)), HttpStatusCode.BadRequest);
        Assert.Contains(reason, problem.GetProperty("errors").GetProperty("ids")[0].GetString(), StringComparison.Ordinal);

        string many = string.Join(',', Enumerable.Range(0, 21).Select(_ => Guid.NewGuid()));
        JsonElement tooMany = await ServiceHarness.AssertProblemAsync(await client.GetAsync(new Uri($"/jobs/compare?ids={many}", UriKind.Relative)), HttpStatusCode.BadRequest);
        Assert.Contains("at most 20", tooMany.GetProperty("errors").GetProperty("ids")[0].GetString(), StringComparison.Ordinal);

        Guid nobody = Guid.NewGuid();
        JsonElement missing = await ServiceHarness.AssertProblemAsync(
            await client.GetAsync(new Uri($"/jobs/compare?ids={Guid.NewGuid()},{nobody}", UriKind.Relative)), HttpStatusCode.NotFound);
        Assert.Contains("There is no job", missing.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    private static async Task<Guid> StartAsync(HttpClient client, Guid dataset, string spec, string hyperparameters)
    {
        (HttpResponseMessage response, JsonElement job) = await JobHarness.PostJobAsync(client,
            $$"""{ "datasetId": "{{dataset}}", "model": {{spec}}, "hyperparameters": {{hyperparameters}} }""");
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        return job.GetProperty("id").GetGuid();
    }
}
