using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using TrainingService.Api.Access;
using TrainingService.Api.Infrastructure;
using TrainingService.Api.Persistence;
using TrainingService.Contracts.Jobs;
using TrainingService.Training.Specs;
using JsonOptions = Microsoft.AspNetCore.Http.Json.JsonOptions;

namespace TrainingService.Api.Jobs;

/// <summary>
/// GET /jobs/compare?ids=: 2 to 20 jobs side by side — each one's view, and the settings in which they differ, by path
/// (hyperparameters.learningRate, layers.conv1.filters, hyperparameters.augmentation.horizontalFlip, datasetId, …),
/// with each job's value. A dashboard overlays their curves from /jobs/{id}/history.
/// </summary>
public static class CompareApi
{
    public const int MaxJobs = 20;

    public static RouteGroupBuilder MapCompare(this RouteGroupBuilder jobs)
    {
        jobs.MapGet("/compare", Compare).WithName("CompareJobs")
            .WithSummary($"2 to {MaxJobs} jobs side by side (ids=<id>,<id>,…): each job as GET /jobs/{{id}} gives it, and the settings that differ, each with every job's value")
            .WithDescription("A setting's path names a layer by its name (layers.conv1.filters; other model fields under model.); a setting one job has and another lacks differs, "
                + "with null for the job that lacks it. Their curves: GET /jobs/{id}/history?tags=….");
        return jobs;
    }

    public static async Task<Results<Ok<JobComparison>, ProblemHttpResult>> Compare(
        TrainingDb db, Caller caller, IOptions<JsonOptions> json, string? ids = null, CancellationToken cancellationToken = default)
    {
        string[] given = (ids ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (given.Length > MaxJobs)
        {
            return Problems.Invalid("ids", $"at most {MaxJobs} jobs, got {given.Length}");
        }

        var wanted = new List<Guid>();
        foreach (string text in given)
        {
            if (!Guid.TryParse(text, out Guid id))
            {
                return Problems.Invalid("ids", $"\"{(text.Length > 40 ? text[..40] + "…" : text)}\" is not a job id");
            }

            if (!wanted.Contains(id))
            {
                wanted.Add(id);
            }
        }

        if (wanted.Count < 2)
        {
            return Problems.Invalid("ids", $"give 2 to {MaxJobs} different job ids, comma-separated (ids=<id>,<id>), got {wanted.Count}");
        }

        Dictionary<Guid, JobRecord> found = await db.Jobs.AsNoTracking().VisibleTo(caller).Where(j => wanted.Contains(j.Id)).ToDictionaryAsync(j => j.Id, cancellationToken);
        if (wanted.FirstOrDefault(id => !found.ContainsKey(id)) is var missing && missing != Guid.Empty)
        {
            return Problems.NoSuchJob(missing);
        }

        JobView[] views = [.. wanted.Select(id => JobsApi.View(found[id]))];
        var settings = views.Select(v => Settings(v, json.Value.SerializerOptions)).ToArray();
        var differences = new List<SettingDifference>();
        foreach (string path in settings.SelectMany(s => s.Keys).Distinct())
        {
            JsonNode?[] values = [.. settings.Select(s => s.GetValueOrDefault(path)?.DeepClone())];
            if (values.Skip(1).Any(v => !JsonNode.DeepEquals(v, values[0])))
            {
                differences.Add(new SettingDifference(path, values));
            }
        }

        return TypedResults.Ok(new JobComparison(views, differences));
    }

    /// <summary>
    /// What a job was asked to do, flattened to paths; layers by name (layers.conv1.filters, the path a sweep's search
    /// space uses), so specs of different lengths line up.
    /// </summary>
    private static Dictionary<string, JsonNode?> Settings(JobView job, JsonSerializerOptions options)
    {
        var into = new Dictionary<string, JsonNode?>(StringComparer.Ordinal) { ["datasetId"] = JsonValue.Create(job.DatasetId) };
        JsonObject model = JsonSerializer.SerializeToNode(job.Model, options)!.AsObject();
        JsonArray? layers = model["layers"] as JsonArray;
        model.Remove("layers");
        Flatten(model, "model", into);
        string[] names = SpecAnalyzer.LayerNames(job.Model.Layers ?? []);
        for (int i = 0; layers is not null && i < layers.Count; i++)
        {
            JsonObject layer = layers[i]!.AsObject();
            layer.Remove("name");
            Flatten(layer, $"layers.{(i < names.Length ? names[i] : i.ToString(System.Globalization.CultureInfo.InvariantCulture))}", into);
        }

        Flatten(JsonSerializer.SerializeToNode(job.Hyperparameters, options), "hyperparameters", into);
        Flatten(JsonSerializer.SerializeToNode(job.Monitoring, options), "monitoring", into);
        Flatten(JsonSerializer.SerializeToNode(job.Sanity, options), "sanity", into);
        return into;
    }

    private static void Flatten(JsonNode? node, string path, Dictionary<string, JsonNode?> into)
    {
        if (node is JsonObject obj)
        {
            foreach ((string key, JsonNode? value) in obj)
            {
                Flatten(value, $"{path}.{key}", into);
            }
        }
        else if (node is not null)
        {
            into[path] = node; // a number, string, bool or array (e.g. a kernel [3, 5]) is one setting
        }
    }
}
