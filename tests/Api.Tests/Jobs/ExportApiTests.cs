using System.Net;
using System.Text.Json;
using TrainingService.Api.Tests.Service;
using TrainingService.Contracts.Specs;
using TrainingService.Training.Export;
using TrainingService.Training.Models;
using TrainingService.Training.Specs;

namespace TrainingService.Api.Tests.Jobs;

/// <summary>GET /jobs/{id}/export: the model as safetensors (PyTorch names) or in TorchSharp's format.</summary>
public sealed class ExportApiTests
{
    [Fact]
    public async Task AFinishedJobExportsItsFinalWeightsInBothFormats()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        Guid dataset = await JobHarness.CreateShapesAsync(client);
        (_, JsonElement job) = await JobHarness.PostJobAsync(client, $$"""{ "datasetId": "{{dataset}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 2 } }""");
        Guid id = job.GetProperty("id").GetGuid();
        JsonElement done = await JobHarness.WaitForStateAsync(client, id, "Succeeded");

        HttpResponseMessage response = await client.GetAsync(new Uri($"/jobs/{id}/export", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.EndsWith(".safetensors", response.Content.Headers.ContentDisposition?.FileName?.Trim('"'), StringComparison.Ordinal);
        (var header, Dictionary<string, byte[]> data) = SafeTensors.Read(await response.Content.ReadAsStreamAsync());
        Assert.Equal(["conv1.bias", "conv1.weight", "linear1.bias", "linear1.weight"], data.Keys.Order());
        Assert.Equal("[4,1,3,3]", header["conv1.weight"]!["shape"]!.ToJsonString());
        JsonElement metadata = JsonSerializer.Deserialize<JsonElement>(header["__metadata__"]!.ToJsonString());
        Assert.Equal(("final", done.GetProperty("step").GetInt64().ToString(System.Globalization.CultureInfo.InvariantCulture)),
            (metadata.GetProperty("source").GetString(), metadata.GetProperty("step").GetString()));
        Assert.Equal("2", metadata.GetProperty("classes").GetString());
        ModelSpec spec = JsonSerializer.Deserialize<ModelSpec>(metadata.GetProperty("spec").GetString()!, JsonSerializerOptions.Web)!;

        // The same numbers TorchSharp loads: the torchsharp export into a model built from the spec in the metadata.
        byte[] torchsharp = await client.GetByteArrayAsync($"/jobs/{id}/export?format=torchsharp");
        using var model = new SpecModel(SpecAnalyzer.Analyze(spec));
        model.load(new BinaryReader(new MemoryStream(torchsharp)));
        foreach ((string name, TorchSharp.torch.Tensor value) in model.state_dict())
        {
            Assert.Equal(value.bytes.ToArray(), data[name]);
        }
    }

    [Fact]
    public async Task AJobStillTrainingExportsItsLastCheckpoint()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        Guid dataset = await JobHarness.CreateShapesAsync(client, samples: 512);
        (_, JsonElement job) = await JobHarness.PostJobAsync(client,
            $$"""{ "datasetId": "{{dataset}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 300, "batchSize": 16 } }""");
        Guid id = job.GetProperty("id").GetGuid();
        await JobHarness.WaitForStateAsync(client, id, "Running");
        await ServiceHarness.PostAsync(client, $"/jobs/{id}/pause");
        JsonElement paused = await JobHarness.WaitForStateAsync(client, id, "Paused");

        HttpResponseMessage response = await client.GetAsync(new Uri($"/jobs/{id}/export", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        (var header, _) = SafeTensors.Read(await response.Content.ReadAsStreamAsync());
        Assert.Equal("checkpoint", header["__metadata__"]!["source"]!.GetValue<string>());
        Assert.Equal(paused.GetProperty("step").GetInt64().ToString(System.Globalization.CultureInfo.InvariantCulture), header["__metadata__"]!["step"]!.GetValue<string>());

        JsonElement problem = await ServiceHarness.AssertProblemAsync(await client.GetAsync(new Uri($"/jobs/{id}/export?format=onnx", UriKind.Relative)), HttpStatusCode.BadRequest);
        Assert.Contains("format", ServiceHarness.FieldsOf(problem));
        await ServiceHarness.AssertProblemAsync(await client.GetAsync(new Uri($"/jobs/{Guid.NewGuid()}/export", UriKind.Relative)), HttpStatusCode.NotFound);
        await ServiceHarness.PostAsync(client, $"/jobs/{id}/cancel");
        await JobHarness.WaitForStateAsync(client, id, "Cancelled");
    }
}
