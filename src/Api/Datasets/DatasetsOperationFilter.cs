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
                    Description = "idx: MNIST's IDX files (images and labels). csv: one image per line, the label first, then the pixels 0–255 channel by channel, row by row, with or without a header row (give channels, height, width). "
                        + "cifar: CIFAR-10/100 binary batches (images, once per batch; testImages; classNames), or the whole cifar-10-binary.tar.gz / cifar-100-binary.tar.gz as archive. "
                        + "imagefolder: a .zip as archive with one folder of PNG/JPEG images per class (optionally under train/ and test/), every image resized to imageSize (or height × width).",
                    Enum = [JsonValue.Create(DatasetUpload.IdxFormat), JsonValue.Create(DatasetUpload.CsvFormat), JsonValue.Create(DatasetUpload.CifarFormat), JsonValue.Create(DatasetUpload.ImageFolderFormat)],
                    Default = JsonValue.Create(DatasetUpload.IdxFormat),
                },
                [DatasetUpload.ChannelsField] = Text("csv: channels per image (1 grey, 3 RGB), 1..64. imagefolder: 1 (grey, by luminance) or 3 (RGB, the default)."),
                [DatasetUpload.HeightField] = Text("csv: image height in pixels, 1..1024. imagefolder: the height to make every image (with width; or give imageSize)."),
                [DatasetUpload.WidthField] = Text("csv: image width in pixels, 1..1024. imagefolder: the width to make every image (with height)."),
                [DatasetUpload.ImageSizeField] = Text("imagefolder: the side of the square images to make, 1..1024 (or give height and width)."),
                [DatasetUpload.FitField] = new OpenApiSchema
                {
                    Type = JsonSchemaType.String,
                    Description = "imagefolder: crop (scale the short side to the size, keep the middle) or pad (scale the long side to the size, black borders).",
                    Enum = [JsonValue.Create(DatasetUpload.CropFit), JsonValue.Create(DatasetUpload.PadFit)],
                    Default = JsonValue.Create(DatasetUpload.CropFit),
                },
                [DatasetUpload.VariantField] = new OpenApiSchema
                {
                    Type = JsonSchemaType.String,
                    Description = "cifar: cifar10 (records of 1 label byte + 3×32×32), cifar100 (2 label bytes, the fine label: 100 classes) or cifar100-coarse (the coarse label: 20 classes). "
                        + "Left out: taken from the archive's files (data_batch_*.bin or train.bin); cifar10 for separate files.",
                    Enum = [JsonValue.Create(DatasetUpload.Cifar10), JsonValue.Create(DatasetUpload.Cifar100), JsonValue.Create(DatasetUpload.Cifar100Coarse)],
                },
                [DatasetUpload.Images] = File("Train images: IDX 0x00000803 (N×H×W) or 0x00000804 (N×C×H×W), raw or .gz; or the train CSV; or a CIFAR train batch (data_batch_1.bin …, or train.bin), one part per batch."),
                [DatasetUpload.Labels] = File("idx: train labels, IDX 0x00000801 (N), raw or .gz. (A CSV has its labels in its first column.)"),
                [DatasetUpload.TestImages] = File("Optional test images, the same size as the train images (idx: with testLabels); or the test CSV; or CIFAR's test_batch.bin / test.bin."),
                [DatasetUpload.TestLabels] = File("idx: optional test labels; with testImages."),
                [DatasetUpload.ClassNamesField] = File("cifar: optional class names, one per line (batches.meta.txt, fine_label_names.txt or coarse_label_names.txt)."),
                [DatasetUpload.Archive] = File("cifar: CIFAR's .tar.gz (or .tar); its files are found by name in any folder. imagefolder: the .zip of class folders. "
                    + "Refused: entries outside the archive's folder, and more entries, bytes, compression or pixels per image than the Uploads limits allow."),
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
