using System.Text.Json.Nodes;
using Microsoft.OpenApi;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace TrainingService.Api.Datasets;

/// <summary>Describes the upload form (its handler reads the body itself) and gives "Try it out" a working builtin request.</summary>
internal sealed class DatasetsOperationFilter : IOperationFilter
{
    public const string UploadOperation = "UploadDataset";
    public const string BuiltinOperation = "CreateBuiltinDataset";

    public void Apply(OpenApiOperation operation, OperationFilterContext context)
    {
        switch (operation.OperationId)
        {
            case UploadOperation:
                operation.RequestBody = UploadForm();
                break;
            case BuiltinOperation when operation.RequestBody?.Content is { } content && content.TryGetValue("application/json", out OpenApiMediaType? media):
                media.Example = new JsonObject
                {
                    ["kind"] = "shapes",
                    ["classes"] = 4,
                    ["samples"] = 2000,
                    ["imageSize"] = 28,
                    ["channels"] = 1,
                    ["seed"] = 1,
                };
                break;
        }
    }

    private static OpenApiRequestBody UploadForm()
    {
        static OpenApiSchema Text(string description) => new() { Type = JsonSchemaType.String, Description = description };
        static OpenApiSchema File(string description) => new() { Type = JsonSchemaType.String, Format = "binary", Description = description };

        var schema = new OpenApiSchema
        {
            Type = JsonSchemaType.Object,
            Properties = new Dictionary<string, IOpenApiSchema>
            {
                [DatasetUpload.NameField] = Text($"The dataset's name, 1 to {DatasetUpload.MaxNameLength} characters."),
                [DatasetUpload.FormatField] = new OpenApiSchema
                {
                    Type = JsonSchemaType.String,
                    Description = "idx: MNIST's IDX files (images and labels). csv: one image per line, the label first, then the pixels 0–255 channel by channel, row by row, with or without a header row (give channels, height, width).",
                    Enum = [JsonValue.Create(DatasetUpload.IdxFormat), JsonValue.Create(DatasetUpload.CsvFormat)],
                    Default = JsonValue.Create(DatasetUpload.IdxFormat),
                },
                [DatasetUpload.ChannelsField] = Text("csv: channels per image (1 grey, 3 RGB), 1..64."),
                [DatasetUpload.HeightField] = Text("csv: image height in pixels, 1..1024."),
                [DatasetUpload.WidthField] = Text("csv: image width in pixels, 1..1024."),
                [DatasetUpload.Images] = File("Train images: IDX 0x00000803 (N×H×W) or 0x00000804 (N×C×H×W), raw or .gz; or the train CSV."),
                [DatasetUpload.Labels] = File("idx: train labels, IDX 0x00000801 (N), raw or .gz. (A CSV has its labels in its first column.)"),
                [DatasetUpload.TestImages] = File("Optional test images, the same size as the train images (idx: with testLabels); or the test CSV."),
                [DatasetUpload.TestLabels] = File("idx: optional test labels; with testImages."),
            },
            Required = new HashSet<string> { DatasetUpload.NameField, DatasetUpload.FormatField, DatasetUpload.Images },
        };
        return new OpenApiRequestBody
        {
            Required = true,
            Content = new Dictionary<string, OpenApiMediaType> { ["multipart/form-data"] = new() { Schema = schema } },
        };
    }
}
