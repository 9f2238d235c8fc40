using Microsoft.Extensions.Options;
using TrainingService.Api.Persistence;
using TrainingService.Training.Monitoring;

namespace TrainingService.Api.Outputs;

/// <summary>The most recently viewed jobs' visual snapshots (Outputs:Snapshots of them), each reread when its file changes.</summary>
public sealed class Snapshots(IOptions<OutputsOptions> options, IOptions<StorageOptions> storage) : IDisposable
{
    private readonly LeasedCache<string, VisualSnapshot> _cache = new(options.Value.Snapshots);

    public int Count => _cache.Count;

    /// <summary>The job's latest snapshot; null before its first.</summary>
    public VisualSnapshot? Latest(Guid jobId)
    {
        string path = storage.Value.VisualsFile(jobId);
        if (!File.Exists(path))
        {
            return null;
        }

        // A snapshot is managed memory only: the lease can end at once, the object stays valid for the caller.
        using LeasedCache<string, VisualSnapshot>.Lease lease =
            _cache.Rent(path, File.GetLastWriteTimeUtc(path), () => VisualSnapshot.Load(path))!;
        return lease.Value;
    }

    /// <summary>Lets go of the job's snapshot (a deleted job).</summary>
    public void Evict(Guid jobId) => _cache.Evict(storage.Value.VisualsFile(jobId));

    public void Dispose() => _cache.Dispose();
}
