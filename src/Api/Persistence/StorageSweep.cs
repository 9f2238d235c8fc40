using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using TrainingService.Api.Jobs;
using TrainingService.Contracts.Training;

namespace TrainingService.Api.Persistence;

/// <summary>What a start-up sweep removed: how many of each, and their bytes.</summary>
public sealed record SweepResult(
    int IncomingFolders, long IncomingBytes,
    int DatasetFolders, long DatasetBytes,
    int JobFolders, long JobBytes,
    int Checkpoints, long CheckpointBytes,
    int TempFiles, long TempBytes,
    long Events);

/// <summary>
/// Before the service takes requests (so no upload or job of this node is in flight), removes what a crash or an
/// interrupted delete left: upload folders never committed (datasets/.incoming-*), dataset and job folders without a
/// record, half-written files (*.tmp) in job folders, the checkpoints of succeeded jobs (they keep their final model),
/// and events and share links of jobs that are gone. With other nodes on the same storage (any but a lone all-role
/// node on SQLite), an upload folder is only taken when no one has written to it for <see cref="OtherNodesGrace"/>,
/// and a job's *.tmp files only when no other node holds the job's lease: they may be another node's work in flight.
/// </summary>
public static class StorageSweep
{
    private const string IncomingPrefix = ".incoming-";

    /// <summary>How long an upload folder must have been left alone before a node that is not alone sweeps it.</summary>
    public static readonly TimeSpan OtherNodesGrace = TimeSpan.FromHours(1);

    public static async Task<SweepResult> SweepStorageAsync(this WebApplication app)
    {
        await using AsyncServiceScope scope = app.Services.CreateAsyncScope();
        TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
        StorageOptions storage = scope.ServiceProvider.GetRequiredService<IOptions<StorageOptions>>().Value;
        ILogger logger = scope.ServiceProvider.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(StorageSweep));
        SweepResult result;
        try
        {
            bool alone = JobDispatch.RoleOf(app.Configuration) == NodeRole.All && Storage.ProviderFrom(app.Configuration) == DatabaseProvider.Sqlite;
            result = await SweepAsync(db, storage, alone ? null : Infrastructure.Telemetry.NodeName(app.Configuration), app.Lifetime.ApplicationStopping);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Leftovers cost disk, not correctness: the service starts, and the next start tries again.
            logger.LogWarning(ex, "Storage sweep stopped: a leftover could not be deleted");
            return new SweepResult(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
        }

        logger.LogInformation(
            "Storage sweep: {IncomingFolders} unfinished uploads ({IncomingBytes} bytes), {DatasetFolders} dataset folders "
            + "({DatasetBytes} bytes) and {JobFolders} job folders ({JobBytes} bytes) without a record, {Checkpoints} checkpoints "
            + "of succeeded jobs ({CheckpointBytes} bytes), {TempFiles} half-written files ({TempBytes} bytes), {Events} events of deleted jobs",
            result.IncomingFolders, result.IncomingBytes, result.DatasetFolders, result.DatasetBytes, result.JobFolders, result.JobBytes,
            result.Checkpoints, result.CheckpointBytes, result.TempFiles, result.TempBytes, result.Events);
        return result;
    }

    /// <summary>The sweep itself; <paramref name="node"/> is this node's name when other nodes may share the storage, null for a lone node.</summary>
    internal static async Task<SweepResult> SweepAsync(TrainingDb db, StorageOptions storage, string? node, CancellationToken cancellationToken)
    {
        DateTime idleSince = DateTime.UtcNow - OtherNodesGrace;
        int incoming = 0, datasetFolders = 0, jobFolders = 0, checkpoints = 0, tempFiles = 0;
        long incomingBytes = 0, datasetBytes = 0, jobBytes = 0, checkpointBytes = 0, tempBytes = 0;

        if (Directory.Exists(storage.DatasetsRoot))
        {
            HashSet<Guid> datasets = [.. await db.Datasets.Select(d => d.Id).ToListAsync(cancellationToken)];
            foreach (string folder in Directory.EnumerateDirectories(storage.DatasetsRoot))
            {
                string name = Path.GetFileName(folder);
                if (node is not null && Directory.GetLastWriteTimeUtc(folder) > idleSince)
                {
                    continue; // maybe another node's upload in flight, or being committed
                }

                if (name.StartsWith(IncomingPrefix, StringComparison.Ordinal))
                {
                    incomingBytes += JobDeletion.DeleteFolder(folder);
                    incoming++;
                }
                else if (Guid.TryParseExact(name, "N", out Guid id) && !datasets.Contains(id))
                {
                    datasetBytes += JobDeletion.DeleteFolder(folder);
                    datasetFolders++;
                }
            }
        }

        if (Directory.Exists(storage.JobsRoot))
        {
            Dictionary<Guid, RunState> jobs = await db.Jobs.ToDictionaryAsync(j => j.Id, j => j.State, cancellationToken);
            HashSet<Guid> heldElsewhere = node is null ? [] : [.. await db.Jobs
                .Where(j => j.LeaseOwner != null && j.LeaseOwner != node).Select(j => j.Id).ToListAsync(cancellationToken)];
            foreach (string folder in Directory.EnumerateDirectories(storage.JobsRoot))
            {
                if (!Guid.TryParseExact(Path.GetFileName(folder), "N", out Guid id))
                {
                    continue;
                }

                if (!jobs.TryGetValue(id, out RunState state))
                {
                    jobBytes += JobDeletion.DeleteFolder(folder);
                    jobFolders++;
                    continue;
                }

                foreach (FileInfo temp in heldElsewhere.Contains(id) ? [] : new DirectoryInfo(folder).EnumerateFiles("*.tmp"))
                {
                    tempBytes += temp.Length;
                    temp.Delete();
                    tempFiles++;
                }

                var checkpoint = new FileInfo(storage.CheckpointFile(id));
                if (state == RunState.Succeeded && checkpoint.Exists && File.Exists(storage.ModelFile(id)))
                {
                    checkpointBytes += checkpoint.Length;
                    checkpoint.Delete();
                    checkpoints++;
                }
            }
        }

        long events = 0;
        for (Guid after = Guid.Empty; await NextEventJobAsync(db, after, cancellationToken) is Guid jobId; after = jobId)
        {
            if (!await db.Jobs.AnyAsync(j => j.Id == jobId, cancellationToken))
            {
                events += await JobDeletion.DeleteEventsAsync(db, jobId, cancellationToken);
            }
        }

        await db.ShareLinks.Where(s => !db.Jobs.Any(j => j.Id == s.JobId)).ExecuteDeleteAsync(cancellationToken);
        await db.JobCommands.Where(c => !db.Jobs.Any(j => j.Id == c.JobId && j.State != RunState.Succeeded && j.State != RunState.Failed
            && j.State != RunState.Cancelled)).ExecuteDeleteAsync(cancellationToken); // for jobs gone or ended: nothing left to reach
        return new SweepResult(incoming, incomingBytes, datasetFolders, datasetBytes, jobFolders, jobBytes, checkpoints, checkpointBytes, tempFiles, tempBytes, events);
    }

    /// <summary>The next job id in the events' key after <paramref name="after"/>: one index seek per job, not a scan of every row.</summary>
    private static Task<Guid?> NextEventJobAsync(TrainingDb db, Guid after, CancellationToken cancellationToken) =>
        db.JobEvents.Where(e => e.JobId.CompareTo(after) > 0).OrderBy(e => e.JobId).Select(e => (Guid?)e.JobId).FirstOrDefaultAsync(cancellationToken);
}
