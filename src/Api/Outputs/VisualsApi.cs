using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using TrainingService.Api.Access;
using TrainingService.Api.Infrastructure;
using TrainingService.Api.Jobs;
using TrainingService.Api.Persistence;
using TrainingService.Contracts.Training;
using TrainingService.Training.Monitoring;

namespace TrainingService.Api.Outputs;

/// <summary>What the network sees: a job's filters and feature maps as PNG, from its latest visual snapshot.</summary>
public static class VisualsApi
{
    /// <summary>A conv layer in the snapshot.</summary>
    public sealed record VisualLayer(string Name, int Filters, int Channels, int[] Kernel, int[] MapSize);

    /// <summary>GET /jobs/{id}/visuals: when the latest pictures were taken and of which layers.</summary>
    public sealed record VisualsView(long Step, int Epoch, int Probes, IReadOnlyList<VisualLayer> Layers);

    public static RouteGroupBuilder MapVisuals(this RouteGroupBuilder jobs)
    {
        jobs.MapGet("/{id:guid}/visuals", Describe).AllowViewers().WithName("GetJobVisuals")
            .WithSummary("Which pictures of what the network sees are there: the step of the latest snapshot and its convolution layers");
        jobs.MapGet("/{id:guid}/filters/{layer}.png", Filters).AllowViewers().WithName("GetJobFilters")
            .WithSummary("A convolution layer's filters as a PNG grid (RGB for 3 input channels, else one grey tile per input channel)")
            .Produces(StatusCodes.Status200OK, contentType: "image/png");
        jobs.MapGet("/{id:guid}/featuremaps/{layer}.png", FeatureMapsPng).AllowViewers().WithName("GetJobFeatureMaps")
            .WithSummary("A convolution layer's feature maps for probe image ?sample= (0–15: the first training samples) as a PNG grid")
            .Produces(StatusCodes.Status200OK, contentType: "image/png");
        jobs.MapPost("/{id:guid}/snapshot", Request).WithName("RequestJobSnapshot")
            .WithSummary("Take new pictures (filters, feature maps) before the job's next step; a snapshot event announces them");
        return jobs;
    }

    public static async Task<Results<Ok<VisualsView>, ProblemHttpResult>> Describe(Guid id, TrainingDb db, Caller caller, Snapshots snapshots, CancellationToken cancellationToken)
    {
        (VisualSnapshot? snapshot, ProblemHttpResult? problem) = await LoadAsync(id, db, caller, snapshots, cancellationToken);
        return snapshot is null
            ? problem!
            : TypedResults.Ok(new VisualsView(snapshot.Step, snapshot.Epoch, snapshot.Probes.Count,
                [.. snapshot.Filters.Select(f => new VisualLayer(f.Layer, f.Filters, f.Channels, [f.Height, f.Width],
                    snapshot.Probes.Count > 0 ? MapSize(snapshot.Probes[0], f.Layer) : []))]));
    }

    public static async Task<Results<FileContentHttpResult, ProblemHttpResult>> Filters(
        Guid id, string layer, TrainingDb db, Caller caller, Snapshots snapshots, CancellationToken cancellationToken)
    {
        (VisualSnapshot? snapshot, ProblemHttpResult? problem) = await LoadAsync(id, db, caller, snapshots, cancellationToken);
        if (snapshot is null)
        {
            return problem!;
        }

        FilterBank? bank = snapshot.Filters.FirstOrDefault(f => f.Layer == layer);
        return bank is null
            ? Problems.NotFound("layer", $"Job {id} has no convolution layer {layer}; it has {string.Join(", ", snapshot.Filters.Select(f => f.Layer))}.")
            : TypedResults.File(Pictures.Filters(bank), "image/png");
    }

    public static async Task<Results<FileContentHttpResult, ProblemHttpResult>> FeatureMapsPng(
        Guid id, string layer, TrainingDb db, Caller caller, Snapshots snapshots, int sample = 0, CancellationToken cancellationToken = default)
    {
        (VisualSnapshot? snapshot, ProblemHttpResult? problem) = await LoadAsync(id, db, caller, snapshots, cancellationToken);
        if (snapshot is null)
        {
            return problem!;
        }

        if (sample < 0 || sample >= snapshot.Probes.Count)
        {
            return Problems.NotFound("sample", $"sample must be a probe image, 0..{snapshot.Probes.Count - 1} (the dataset's first training samples), got {sample}.");
        }

        FeatureMaps? maps = snapshot.Probes[sample].FirstOrDefault(m => m.Layer == layer);
        return maps is null
            ? Problems.NotFound("layer", $"Job {id} has no convolution layer {layer}; it has {string.Join(", ", snapshot.Filters.Select(f => f.Layer))}.")
            : TypedResults.File(Pictures.FeatureMaps(maps), "image/png");
    }

    public static async Task<Results<Accepted, ProblemHttpResult>> Request(Guid id, JobCommands commands, Caller caller, CancellationToken cancellationToken) =>
        await commands.SnapshotAsync(caller, id, cancellationToken) switch
        {
            CommandOutcome.Done => TypedResults.Accepted($"/jobs/{id}/visuals"),
            CommandOutcome.Conflict conflict => Problems.Conflict(conflict.Reason),
            _ => Problems.NoSuchJob(id),
        };

    private static async Task<(VisualSnapshot? Snapshot, ProblemHttpResult? Problem)> LoadAsync(
        Guid id, TrainingDb db, Caller caller, Snapshots snapshots, CancellationToken cancellationToken)
    {
        JobRecord? job = await db.Jobs.AsNoTracking().VisibleTo(caller).FirstOrDefaultAsync(j => j.Id == id, cancellationToken);
        if (job is null)
        {
            return (null, Problems.NoSuchJob(id));
        }

        return snapshots.Latest(id) is { } snapshot
            ? (snapshot, null)
            : (null, Problems.Conflict($"Job {id} ({job.State}) has no pictures yet: they are taken at every epoch's end and on POST /jobs/{id}/snapshot."));
    }

    private static int[] MapSize(IReadOnlyList<FeatureMaps> probe, string layer) =>
        probe.FirstOrDefault(m => m.Layer == layer) is { } m ? [m.Height, m.Width] : [];
}
