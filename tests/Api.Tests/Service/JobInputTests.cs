using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using TrainingService.Api.Tests.Jobs;

namespace TrainingService.Api.Tests.Service;

public sealed class JobInputTests
{
    /// <summary>{dataset} is a real 16×16 two-class dataset's id, {tiny} a model that fits it.</summary>
    [Theory]
    [InlineData("hyperparameters.epochs", 400, """{ "datasetId": "{dataset}", "model": {tiny}, "hyperparameters": { "epochs": 0 } }""")]
    [InlineData("hyperparameters.batchSize", 400, """{ "datasetId": "{dataset}", "model": {tiny}, "hyperparameters": { "batchSize": 0 } }""")]
    [InlineData("hyperparameters.learningRate", 400, """{ "datasetId": "{dataset}", "model": {tiny}, "hyperparameters": { "learningRate": -1 } }""")]
    [InlineData("hyperparameters.learningRate", 400, """{ "datasetId": "{dataset}", "model": {tiny}, "hyperparameters": { "learningRate": "NaN" } }""")]
    [InlineData("hyperparameters.optimizer", 400, """{ "datasetId": "{dataset}", "model": {tiny}, "hyperparameters": { "optimizer": "foo" } }""")]
    [InlineData("hyperparameters.validationFraction", 400, """{ "datasetId": "{dataset}", "model": {tiny}, "hyperparameters": { "validationFraction": 0.95 } }""")]
    [InlineData("hyperparameters.epochs", 400, """{ "datasetId": "{dataset}", "model": {tiny}, "hyperparameters": { "epochs": "ten" } }""")]
    [InlineData("hyperparameters.epochs", 400, """{ "datasetId": "{dataset}", "model": {tiny}, "hyperparameters": { "epochs": 1e12 } }""")]
    [InlineData("hyperparameters", 400, """{ "datasetId": "{dataset}", "model": {tiny}, "hyperparameters": 5 }""")]
    [InlineData("hyperparameters.augmentation.randomCrop.padding", 400, """{ "datasetId": "{dataset}", "model": {tiny}, "hyperparameters": { "augmentation": { "randomCrop": { "padding": 9 } } } }""")]
    [InlineData("hyperparameters.augmentation.randomCrop.padding", 400, """{ "datasetId": "{dataset}", "model": {tiny}, "hyperparameters": { "augmentation": { "randomCrop": { "padding": "4px" } } } }""")]
    [InlineData("hyperparameters.augmentation.randomCrop", 400, """{ "datasetId": "{dataset}", "model": {tiny}, "hyperparameters": { "augmentation": { "randomCrop": { } } } }""")]
    [InlineData("hyperparameters.augmentation.translate", 400, """{ "datasetId": "{dataset}", "model": {tiny}, "hyperparameters": { "augmentation": { "translate": 5 } } }""")]
    [InlineData("hyperparameters.augmentation.translate", 400, """{ "datasetId": "{dataset}", "model": {tiny}, "hyperparameters": { "augmentation": { "translate": 0, "horizontalFlip": true } } }""")]
    [InlineData("hyperparameters.augmentation.horizontalFlip", 400, """{ "datasetId": "{dataset}", "model": {tiny}, "hyperparameters": { "augmentation": { "horizontalFlip": "yes" } } }""")]
    [InlineData("hyperparameters.augmentation", 400, """{ "datasetId": "{dataset}", "model": {tiny}, "hyperparameters": { "augmentation": true } }""")]
    [InlineData("monitoring.statsEvery", 400, """{ "datasetId": "{dataset}", "model": {tiny}, "monitoring": { "statsEvery": -1 } }""")]
    [InlineData("model", 400, """{ "datasetId": "{dataset}", "model": 5 }""")]
    [InlineData("model", 400, """{ "datasetId": "{dataset}", "model": "lenet" }""")]
    [InlineData("model", 400, """{ "datasetId": "{dataset}", "model": [] }""")]
    [InlineData("datasetId", 404, """{ "datasetId": "00000000-0000-0000-0000-000000000002", "model": {tiny} }""")]
    [InlineData("datasetId", 400, """{ "datasetId": "not-a-guid", "model": {tiny} }""")]
    [InlineData("spec", 400, """{ "datasetId": "{dataset}", "spec": {tiny} }""")]
    [InlineData("hyperparameters.learningrate2", 400, """{ "datasetId": "{dataset}", "model": {tiny}, "hyperparameters": { "learningrate2": 0.1 } }""")]
    [InlineData("modelId", 404, """{ "datasetId": "{dataset}", "modelId": "00000000-0000-0000-0000-000000000003" }""")]
    public async Task BadJobRequestIsAProblemNamingTheFieldNeverA500(string field, int status, string template)
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        Guid datasetId = await JobHarness.CreateShapesAsync(client, samples: 64);
        string json = template.Replace("{dataset}", datasetId.ToString(), StringComparison.Ordinal).Replace("{tiny}", JobHarness.TinySpec, StringComparison.Ordinal);

        using HttpResponseMessage response = await client.PostAsync(new Uri("/jobs", UriKind.Relative), new StringContent(json, System.Text.Encoding.UTF8, "application/json"));

        JsonElement problem = await ServiceHarness.AssertProblemAsync(response, (HttpStatusCode)status);
        Assert.True(ServiceHarness.FieldsOf(problem).Contains(field), $"expected field {field}: {problem}");
        Assert.Empty((await client.GetFromJsonAsync<JsonElement>("/jobs")).GetProperty("items").EnumerateArray());
    }

    [Fact]
    public async Task AMisspeltFieldIsAnErrorListingTheFieldsNotADefaultTakenInSilence()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        Guid datasetId = await JobHarness.CreateShapesAsync(client, samples: 64);

        using HttpResponseMessage response = await client.PostAsync(
            new Uri("/jobs", UriKind.Relative),
            new StringContent($$"""{ "datasetId": "{{datasetId}}", "spec": {{JobHarness.TinySpec}} }""", System.Text.Encoding.UTF8, "application/json"));

        JsonElement problem = await ServiceHarness.AssertProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Equal("spec: unknown field; the fields are datasetId, model, modelId, hyperparameters, monitoring, sanity", problem.GetProperty("detail").GetString());
    }
}
