using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using TrainingService.Api.Access;
using TrainingService.Api.Datasets;
using TrainingService.Api.Infrastructure;
using TrainingService.Api.Persistence;
using TrainingService.Contracts.Specs;
using TrainingService.Training.Export;
using TrainingService.Training.Specs;

namespace TrainingService.Api.Outputs;

/// <summary>Trained models out: a job's weights as safetensors, in TorchSharp's format or as an ONNX model, finished or from its last checkpoint.</summary>
public static class ExportApi
{
    private static readonly string[] s_formats = ["safetensors", "torchsharp", "onnx"];

    public static RouteGroupBuilder MapExport(this RouteGroupBuilder jobs)
    {
        jobs.MapGet("/{id:guid}/export", Export).WithName("ExportJobModel")
            .WithSummary("The model: format=safetensors (default; PyTorch names, spec and input normalisation in the metadata), torchsharp (Module.load) "
                + "or onnx (opset 17: input \"pixels\", raw 0–255 floats N×C×H×W with a dynamic batch, normalised inside the graph; outputs \"scores\" and \"probabilities\"; class names in the metadata)")
            .WithDescription("A succeeded job's final model; a job still training (or stopped) gives its last checkpoint, and says which step in the metadata. "
                + "ONNX needs the job's dataset for its mean and std: 409 once the dataset is deleted.")
            .Produces(StatusCodes.Status200OK, contentType: "application/octet-stream");
        return jobs;
    }

    public static async Task<Results<FileContentHttpResult, ProblemHttpResult>> Export(
        Guid id, TrainingDb db, Caller caller, IOptions<StorageOptions> storage, IOptions<SpecLimits> limits, string format = "safetensors", CancellationToken cancellationToken = default)
    {
        if (!s_formats.Contains(format))
        {
            return Problems.Invalid("format", $"format must be safetensors, torchsharp or onnx, got \"{format}\"");
        }

        JobRecord? job = await db.Jobs.AsNoTracking().VisibleTo(caller).FirstOrDefaultAsync(j => j.Id == id, cancellationToken);
        if (job is null)
        {
            return Problems.NoSuchJob(id);
        }

        if (JobWeights.Read(job, storage.Value) is not { } weights)
        {
            return Problems.Conflict(JobWeights.Missing(job));
        }

        (IReadOnlyList<StateTensor> tensors, string source, long step) = (weights.Tensors, weights.Source, weights.Step);
        var stream = new MemoryStream();
        if (format == "torchsharp")
        {
            StateDict.Write(new BinaryWriter(stream), tensors);
            return TypedResults.File(stream.ToArray(), "application/octet-stream", $"job-{id:N}-step{step}.dat");
        }

        DatasetRecord? dataset = await db.Datasets.AsNoTracking().FirstOrDefaultAsync(d => d.Id == job.DatasetId, cancellationToken);
        IReadOnlyList<string>? classNames = dataset is null ? null : DatasetStore.ClassNames(dataset);
        var metadata = new Dictionary<string, string>
        {
            ["job"] = id.ToString(),
            ["source"] = source,
            ["step"] = step.ToString(CultureInfo.InvariantCulture),
            ["spec"] = JsonSerializer.Serialize(job.Spec, JsonSerializerOptions.Web),
        };
        if (format == "onnx")
        {
            if (dataset is null)
            {
                return Problems.Conflict($"Job {id}'s dataset {job.DatasetId} is deleted, and with it the input mean and std that the ONNX graph applies; export safetensors or torchsharp instead.");
            }

            SpecAnalysis analysis = SpecAnalyzer.Analyze(job.Spec, limits.Value);
            metadata["dataset"] = dataset.Name;
            OnnxExporter.Write(stream, analysis, tensors, dataset.Mean, dataset.Std,
                classNames ?? [.. Enumerable.Range(0, analysis.Classes).Select(c => c.ToString(CultureInfo.InvariantCulture))], metadata);
            return TypedResults.File(stream.ToArray(), "application/octet-stream", $"job-{id:N}-step{step}.onnx");
        }

        metadata["format"] = "pt";
        metadata["producer"] = "TrainingService";
        if (dataset is not null)
        {
            // Inputs are uint8 pixels scaled to [0, 1], then normalised per channel: (x - mean) / std.
            metadata["input_mean"] = JsonSerializer.Serialize(dataset.Mean);
            metadata["input_std"] = JsonSerializer.Serialize(dataset.Std);
            metadata["classes"] = dataset.Classes.ToString(CultureInfo.InvariantCulture);
            if (classNames is not null)
            {
                metadata["class_names"] = JsonSerializer.Serialize(classNames);
            }
        }

        SafeTensors.Write(stream, tensors, metadata);
        return TypedResults.File(stream.ToArray(), "application/octet-stream", $"job-{id:N}-step{step}.safetensors");
    }
}
