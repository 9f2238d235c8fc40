using Microsoft.Extensions.Options;
using TrainingService.Training.Monitoring;

namespace TrainingService.Api.Outputs;

/// <summary>The most recently viewed jobs' visual snapshots (Outputs:Snapshots of them), each reread when its file changes.</summary>
public sealed class Snapshots(IOptions<OutputsOptions> options) : IDisposable
{
    private readonly LeasedCache<string, VisualSnapshot> _cache = new(options.Value.Snapshots);

    public int Count => _cache.Count;

    /// <summary>The snapshot in <paramref name="path"/>, which must exist.</summary>
    public VisualSnapshot Read(string path)
    {
        // A snapshot is managed memory only: the lease can end at once, the object stays valid for the caller.
        using LeasedCache<string, VisualSnapshot>.Lease lease =
            _cache.Rent(path, File.GetLastWriteTimeUtc(path), () => VisualSnapshot.Load(path))!;
        return lease.Value;
    }

    public void Dispose() => _cache.Dispose();
}
