using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using TrainingService.Api.Tests.Jobs;

namespace TrainingService.Api.Tests.Service;

public sealed class JobInputTests
{
    /// <summary>{dataset} is a real 16×16 two-class dataset's id, {tiny} a model that fits it.</summary>
    [Theory]
    [InlineData("""{ "datasetId": "{dataset}", "model": {tiny}, "hyperparameters": { "epochs": 0 } }""", 400, "hyperparameters.epochs")]
    [InlineData("""{ "datasetId": "{dataset}", "model": {tiny}, "hyperparameters": { "batchSize": 0 } }""", 400, "hyperparameters.batchSize")]
    [InlineData("""{ "datasetId": "{dataset}", "model": {tiny}, "hyperparameters": { "learningRate": -1 } }""", 400, "hyperparameters.learningRate")]
    [InlineData("""{ "datasetId": "{dataset}", "model": {tiny}, "hyperparameters": { "learningRate": "NaN" } }""", 400, "hyperparameters.learningRate")]
    [InlineData("""{ "datasetId": "{dataset}", "model": {tiny}, "hyperparameters": { "optimizer": "foo" } }""", 400, "hyperparameters.optimizer")]
    [InlineData("""{ "datasetId": "{dataset}", "model": {tiny}, "hyperparameters": { "validationFraction": 0.95 } }""", 400, "hyperparameters.validationFraction")]
    [InlineData("""{ "datasetId": "{dataset}", "model": {tiny}, "hyperparameters": { "epochs": "ten" } }""", 400, "hyperparameters.epochs")]
    [InlineData("""{ "datasetId": "{dataset}", "model": {tiny}, "hyperparameters": { "epochs": 1e12 } }""", 400, "hyperparameters.epochs")]
    [InlineData("""{ "datasetId": "{dataset}", "model": {tiny}, "hyperparameters": 5 }""", 400, "hyperparameters")]
    [InlineData("""{ "datasetId": "{dataset}", "model": {tiny}, "monitoring": { "statsEvery": -1 } }""", 400, "monitoring.statsEvery")]
    [InlineData("""{ "datasetId": "{dataset}", "model": 5 }""", 400, "model")]
    [InlineData("""{ "datasetId": "{dataset}", "model": "lenet" }""", 400, "model")]
    [InlineData("""{ "datasetId": "{dataset}", "model": [] }""", 400, "model")]
    [InlineData("""{ "datasetId": "00000000-0000-0000-0000-000000000002", "model": {tiny} }""", 404, "datasetId")]
    [InlineData("""{ "datasetId": "not-a-guid", "model": {tiny} }""", 400, "datasetId")]
    [InlineData("""{ "datasetId": "{dataset}", "modelId": "00000000-0000-0000-0000-000000000003" }""", 404, "modelId")]
    public async Task BadJobRequestIsAProblemNamingTheFieldNeverA500(string template, int status, string field)
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        Guid datasetId = await JobHarness.CreateShapesAsync(client, samples: 64);
        string json = template.Replace("{dataset}", datasetId.ToString(), StringComparison.Ordinal).Replace("{tiny}", JobHarness.TinySpec, StringComparison.Ordinal);

        using HttpResponseMessage response = await client.PostAsync(new Uri("/jobs", UriKind.Relative), new StringContent(json, System.Text.Encoding.UTF8, "application/json"));

        JsonElement problem = await ServiceHarness.AssertProblemAsync(response, (HttpStatusCode)status);
        Assert.True(ServiceHarness.FieldsOf(problem).Contains(field), $"expected field {field}: {problem}");
        Assert.Empty((await client.GetFromJsonAsync<JsonElement>("/jobs")).EnumerateArray());
    }
}
