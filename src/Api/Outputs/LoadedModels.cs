using Microsoft.Extensions.Options;
using TrainingService.Api.Persistence;
using TrainingService.Contracts.Specs;
using TrainingService.Training.Models;
using TrainingService.Training.Specs;

namespace TrainingService.Api.Outputs;

/// <summary>A job's model ready for predictions, and which weights it holds.</summary>
public sealed record LoadedModel(Inference Model, string Source, long Step) : IDisposable
{
    public void Dispose() => Model.Dispose();
}

/// <summary>
/// The most recently used jobs' models for predictions (Outputs:LoadedModels of them), each reloaded when its weights
/// file changes. A model let go of frees its native memory once the last request using it ends.
/// </summary>
public sealed class LoadedModels(IOptions<OutputsOptions> options, IOptions<StorageOptions> storage, IOptions<SpecLimits> limits) : IDisposable
{
    private readonly LeasedCache<Guid, LoadedModel> _cache = new(options.Value.LoadedModels);

    public int Count => _cache.Count;

    /// <summary>How many models have been let go of and disposed.</summary>
    public long Disposed => _cache.Disposed;

    /// <summary>The job's model from its latest weights, to be disposed when the request is done with it; null when it has none.</summary>
    public LeasedCache<Guid, LoadedModel>.Lease? Rent(JobRecord job, ModelSpec spec)
    {
        ArgumentNullException.ThrowIfNull(job);
        return JobWeights.Locate(job, storage.Value) is { } found
            ? _cache.Rent(job.Id, (found.Path, found.Written), () => JobWeights.Read(job, storage.Value) is { } weights
                ? new LoadedModel(new Inference(SpecAnalyzer.Analyze(spec, limits.Value), weights.Tensors), weights.Source, weights.Step)
                : null)
            : null;
    }

    /// <summary>Lets go of the job's model (a deleted job).</summary>
    public void Evict(Guid jobId) => _cache.Evict(jobId);

    public void Dispose() => _cache.Dispose();
}
