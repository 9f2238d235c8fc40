using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using SkiaSharp;
using TrainingService.Api.Tests.Jobs;
using TrainingService.Api.Tests.Service;
using TrainingService.Contracts.Specs;
using TrainingService.Training.Export;
using TrainingService.Training.Models;
using TrainingService.Training.Specs;

namespace TrainingService.Api.Tests.Outputs;

/// <summary>GET /jobs/{id}/export: the model as safetensors (PyTorch names), in TorchSharp's format or as ONNX.</summary>
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
        Assert.Equal("""["circle","square"]""", metadata.GetProperty("class_names").GetString());
        ModelSpec spec = JsonSerializer.Deserialize<ModelSpec>(metadata.GetProperty("spec").GetString()!, JsonSerializerOptions.Web)!;

        // The same numbers TorchSharp loads: the torchsharp export into a model built from the spec in the metadata.
        byte[] torchsharp = await client.GetByteArrayAsync($"/jobs/{id}/export?format=torchsharp");
        using var model = new SpecModel(SpecAnalyzer.Analyze(spec), seed: 1);
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

        using (var session = new InferenceSession(await client.GetByteArrayAsync($"/jobs/{id}/export?format=onnx")))
        {
            Dictionary<string, string> onnxMetadata = session.ModelMetadata.CustomMetadataMap;
            Assert.Equal(("checkpoint", header["__metadata__"]!["step"]!.GetValue<string>()), (onnxMetadata["source"], onnxMetadata["step"]));
        }

        // Resumed and training: every format still answers from the last checkpoint, while steps go on.
        await ServiceHarness.PostAsync(client, $"/jobs/{id}/resume");
        await JobHarness.WaitForStateAsync(client, id, "Running");
        foreach (string format in new[] { "safetensors", "torchsharp", "onnx" })
        {
            using HttpResponseMessage running = await client.GetAsync(new Uri($"/jobs/{id}/export?format={format}", UriKind.Relative));
            Assert.Equal(HttpStatusCode.OK, running.StatusCode);
            Assert.True((await running.Content.ReadAsByteArrayAsync()).Length > 1000, format);
        }

        using (var session = new InferenceSession(await client.GetByteArrayAsync($"/jobs/{id}/export?format=onnx")))
        {
            Assert.Equal("checkpoint", session.ModelMetadata.CustomMetadataMap["source"]);
        }

        Assert.Equal("Running", (await client.GetFromJsonAsync<JsonElement>($"/jobs/{id}")).GetProperty("state").GetString());

        JsonElement problem = await ServiceHarness.AssertProblemAsync(await client.GetAsync(new Uri($"/jobs/{id}/export?format=pt", UriKind.Relative)), HttpStatusCode.BadRequest);
        Assert.Contains("format", ServiceHarness.FieldsOf(problem));
        await ServiceHarness.AssertProblemAsync(await client.GetAsync(new Uri($"/jobs/{Guid.NewGuid()}/export", UriKind.Relative)), HttpStatusCode.NotFound);
        await ServiceHarness.PostAsync(client, $"/jobs/{id}/cancel");
        await JobHarness.WaitForStateAsync(client, id, "Cancelled");
    }

    [Fact]
    public async Task TheOnnxExportNamesTheClassesAndPredictsWhatTheServicePredicts()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        Guid dataset = await JobHarness.CreateShapesAsync(client, classes: 4, samples: 512);
        (_, JsonElement job) = await JobHarness.PostJobAsync(client, $$"""
            { "datasetId": "{{dataset}}", "hyperparameters": { "epochs": 2, "optimizer": "adam", "learningRate": 0.003 },
              "model": { "input": { "channels": 1, "height": 16, "width": 16 }, "layers": [
                { "kind": "conv2d", "filters": 8, "kernel": 3, "padding": "same" }, { "kind": "batchnorm2d" }, { "kind": "relu" },
                { "kind": "maxpool2d", "kernel": 2 }, { "kind": "dropout", "p": 0.2 }, { "kind": "globalavgpool" }, { "kind": "linear", "units": 4 } ] } }
            """);
        Guid id = job.GetProperty("id").GetGuid();
        JsonElement done = await JobHarness.WaitForStateAsync(client, id, "Succeeded", TimeSpan.FromMinutes(2));

        HttpResponseMessage response = await client.GetAsync(new Uri($"/jobs/{id}/export?format=onnx", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal($"job-{id:N}-step{done.GetProperty("step").GetInt64()}.onnx", response.Content.Headers.ContentDisposition?.FileName?.Trim('"'));
        using var session = new InferenceSession(await response.Content.ReadAsByteArrayAsync());
        Dictionary<string, string> metadata = session.ModelMetadata.CustomMetadataMap;
        string[] names = [.. (await client.GetFromJsonAsync<JsonElement>($"/datasets/{dataset}")).GetProperty("classNames").EnumerateArray().Select(n => n.GetString()!)];
        Assert.Equal(names, JsonSerializer.Deserialize<string[]>(metadata["classes"]));
        Assert.Equal("final", metadata["source"]);
        Assert.Equal("TrainingService", session.ModelMetadata.ProducerName);

        // Eight training samples by their pixels: the ONNX model's top class and its probability are the service's.
        var pixels = new List<float[]>();
        for (int i = 0; i < 8; i++)
        {
            using SKBitmap bitmap = SKBitmap.Decode(await client.GetByteArrayAsync($"/datasets/{dataset}/samples/{i}.png?scale=1"));
            pixels.Add([.. Enumerable.Range(0, 256).Select(p => (float)bitmap.GetPixel(p % 16, p / 16).Red)]);
        }

        JsonElement predicted = await (await client.PostAsJsonAsync($"/jobs/{id}/predict", new { images = pixels, top = 1 })).Content.ReadFromJsonAsync<JsonElement>();
        using var input = OrtValue.CreateTensorValueFromMemory(pixels.SelectMany(p => p).ToArray(), [pixels.Count, 1, 16, 16]);
        using var runOptions = new RunOptions();
        using IDisposableReadOnlyCollection<OrtValue> outputs = session.Run(runOptions, ["pixels"], [input], ["probabilities"]);
        float[] probabilities = outputs[0].GetTensorDataAsSpan<float>().ToArray();
        for (int i = 0; i < pixels.Count; i++)
        {
            float[] row = probabilities[(i * 4)..((i + 1) * 4)];
            int top = Array.IndexOf(row, row.Max());
            JsonElement best = predicted.GetProperty("predictions")[i].GetProperty("top")[0];
            Assert.Equal(best.GetProperty("class").GetInt32(), top);
            Assert.Equal(best.GetProperty("name").GetString(), names[top]);
            Assert.Equal(best.GetProperty("probability").GetDouble(), row[top], 1e-4);
        }

        // The mean and std go with the dataset: without it there is no ONNX model, but the weights still export.
        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync(new Uri($"/datasets/{dataset}", UriKind.Relative))).StatusCode);
        await ServiceHarness.AssertProblemAsync(await client.GetAsync(new Uri($"/jobs/{id}/export?format=onnx", UriKind.Relative)), HttpStatusCode.Conflict);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(new Uri($"/jobs/{id}/export", UriKind.Relative))).StatusCode);
    }
}
