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

    public void Apply(OpenApiOperation operation, OperationFilterContext context)
    {
        JsonNode? example = operation.OperationId switch
        {
            "ValidateModel" => JsonSerializer.SerializeToNode(ModelPresets.LeNet5(), s_json),
            "CreateModel" => JsonSerializer.SerializeToNode(new { name = "lenet5", spec = ModelPresets.LeNet5() }, s_json),
            "CreateJob" => JsonNode.Parse(CreateJobExample),
            "ChangeJobHyperparameters" => JsonNode.Parse("""{ "learningRate": 0.005, "reason": "the loss is noisy: a tenth of the rate" }"""),
            _ => null,
        };
        if (example is not null && operation.RequestBody?.Content is { } content && content.TryGetValue("application/json", out OpenApiMediaType? media))
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
