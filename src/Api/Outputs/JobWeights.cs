using TrainingService.Api.Persistence;
using TrainingService.Contracts.Training;
using TrainingService.Training.Export;

namespace TrainingService.Api.Outputs;

/// <summary>
/// A job's latest weights, for export and predictions: a succeeded job's final model, else its last checkpoint (a job
/// still training, paused or stopped). Read as bytes: no model is built on a request thread.
/// </summary>
internal sealed record JobWeights(string Path, DateTime Written, string Source, long Step, IReadOnlyList<StateTensor> Tensors)
{
    /// <summary>Which file holds them and when it was written, without reading it; null when there are none.</summary>
    public static (string Path, DateTime Written, string Source)? Locate(JobRecord job, StorageOptions storage)
    {
        string final = storage.ModelFile(job.Id), checkpoint = storage.CheckpointFile(job.Id);
        string? path = job.State == RunState.Succeeded && File.Exists(final) ? final : File.Exists(checkpoint) ? checkpoint : null;
        return path is null ? null : (path, File.GetLastWriteTimeUtc(path), path == final ? "final" : "checkpoint");
    }

    public static JobWeights? Read(JobRecord job, StorageOptions storage)
    {
        if (Locate(job, storage) is not { } found)
        {
            return null;
        }

        if (found.Source == "final")
        {
            return new JobWeights(found.Path, found.Written, found.Source, job.Step, StateDict.ReadModel(found.Path));
        }

        (List<StateTensor> tensors, long step) = StateDict.ReadCheckpoint(found.Path);
        return new JobWeights(found.Path, found.Written, found.Source, step, tensors);
    }

    /// <summary>The 409 detail when a job has no weights.</summary>
    public static string Missing(JobRecord job) => job.State == RunState.Succeeded
        ? $"Job {job.Id} keeps no model (a learning-rate range test)."
        : $"Job {job.Id} ({job.State}) has no weights yet: the first checkpoint comes at the end of epoch 1 or at a pause.";
}
