using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.OpenApi;
using Swashbuckle.AspNetCore.SwaggerGen;
using TrainingService.Training.Specs;

namespace TrainingService.Api.Infrastructure;

/// <summary>Working request examples, so "Try it out" in Swagger UI succeeds as it stands.</summary>
internal sealed class ExamplesOperationFilter : IOperationFilter
{
    private static readonly JsonSerializerOptions s_json = CreateJsonOptions();

    // No datasetId: the newest dataset, e.g. the one just made with POST /datasets/builtin.
    private const string CreateJobExample = """
        { "hyperparameters": { "epochs": 3, "batchSize": 64, "optimizer": "sgd", "learningRate": 0.05, "momentum": 0.9, "schedule": "cosine" },
          "monitoring": { "statsEvery": 10 } }
        """;

    // On the newest dataset with the default LeNet-5: learning rate × conv2's width, asha stopping the worse at epochs 1 and 3.
    private const string CreateSweepExample = """
        { "name": "lr x width",
          "base": { "hyperparameters": { "epochs": 9, "batchSize": 64, "momentum": 0.9, "schedule": "cosine" } },
          "searchSpace": [ { "path": "hyperparameters.learningRate", "choice": [0.005, 0.01, 0.02, 0.05] },
                           { "path": "layers.conv2.filters", "choice": [8, 16, 32] } ],
          "strategy": "asha", "parallelism": 2, "asha": { "minEpochs": 1, "reductionFactor": 3, "sampler": "grid" } }
        """;

    public void Apply(OpenApiOperation operation, OperationFilterContext context)
    {
        JsonNode? example = operation.OperationId switch
        {
            "CreateJob" => JsonNode.Parse(CreateJobExample),
            Sweeps.SweepsApi.CreateOperation => JsonNode.Parse(CreateSweepExample),
            "ChangeJobHyperparameters" => JsonNode.Parse("""{ "learningRate": 0.005, "reason": "the loss is noisy: a tenth of the rate" }"""),
            _ => null,
        };
        if (operation.RequestBody?.Content is not { } content || !content.TryGetValue("application/json", out OpenApiMediaType? media))
        {
            return;
        }

        if (operation.OperationId is "ValidateModel" or "CreateModel")
        {
            // Every preset as a named example (Swagger UI's "Examples" menu), for the built-in 28×28 shapes.
            media.Examples = ModelPresets.All(channels: 1, height: 28, width: 28, classes: 4).ToDictionary(
                p => p.Name,
                p => (IOpenApiExample)new OpenApiExample
                {
                    Summary = p.Description,
                    Value = operation.OperationId == "ValidateModel"
                        ? JsonSerializer.SerializeToNode(p.Spec, s_json)
                        : JsonSerializer.SerializeToNode(new { name = p.Name, spec = p.Spec }, s_json),
                });
            return;
        }

        if (example is not null)
        {
            media.Example = example;
        }
    }

    private static JsonSerializerOptions CreateJsonOptions()
    {
        var options = new JsonSerializerOptions { DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull };
        ApiBasics.Configure(options);
        return options;
    }
}
