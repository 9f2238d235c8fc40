using System.Globalization;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using TrainingService.Api.Persistence;
using TrainingService.Contracts.Training;

namespace TrainingService.Api.Quotas;

/// <summary>
/// Per-owner quotas (issue 12): active jobs (Jobs:MaxActiveJobsPerOwner), stored dataset bytes (Uploads:MaxStorageBytesPerOwner)
/// and uploads in flight (Uploads:MaxConcurrentPerOwner). A count that decides an insert is read inside
/// <see cref="BeginWriteAsync"/>'s transaction, so two requests at the limit cannot both pass.
/// </summary>
public static class OwnerQuotas
{
    public const string ActiveJobsKey = "Jobs:MaxActiveJobsPerOwner";
    public const string StorageKey = "Uploads:MaxStorageBytesPerOwner";
    public const string ConcurrentUploadsKey = "Uploads:MaxConcurrentPerOwner";

    public static IServiceCollection AddQuotas(this IServiceCollection services)
    {
        services.AddSingleton<UploadSlots>();
        return services;
    }

    /// <summary>
    /// SQLite: BEGIN IMMEDIATE (Microsoft.Data.Sqlite's default): SQLite's one write lock is taken before the count is read
    /// and held until the insert commits, across connections and processes; a deferred transaction could read, then fail
    /// to upgrade. PostgreSQL: READ COMMITTED would let two nodes both count, then both insert, so the transaction first
    /// takes one advisory lock that every quota write takes, released at commit or rollback: the same one-writer order.
    /// </summary>
    public static async Task<IDbContextTransaction> BeginWriteAsync(TrainingDb db, CancellationToken cancellationToken)
    {
        IDbContextTransaction transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        if (db.Database.IsNpgsql())
        {
            try
            {
                await db.Database.ExecuteSqlAsync($"SELECT pg_advisory_xact_lock({QuotaWriteLock})", cancellationToken);
            }
            catch
            {
                await transaction.DisposeAsync();
                throw;
            }
        }

        return transaction;
    }

    /// <summary>The advisory lock key of quota writes on PostgreSQL ("TSquota" in ASCII).</summary>
    internal const long QuotaWriteLock = 0x54_53_71_75_6f_74_61;

    /// <summary>429 when the owner already has <paramref name="max"/> queued, running or paused jobs (<see cref="ActiveJobs.Holding"/>); null otherwise.</summary>
    public static async Task<ProblemHttpResult?> RefuseJobAsync(TrainingDb db, string owner, int max, CancellationToken cancellationToken)
    {
        int active = await db.Jobs.Where(j => j.Owner == owner).CountAsync(ActiveJobs.Holding, cancellationToken); // a trial waiting at asha's rung holds no place
        return active < max ? null : Refusal(
            StatusCodes.Status429TooManyRequests,
            ActiveJobsKey,
            $"You have {N(active)} queued, running or paused jobs, the limit of {N(max)} (configuration {ActiveJobsKey}); "
            + "a new job can be created once one of them ends (cancel or finish one).",
            "Too many active jobs");
    }

    /// <summary>The bytes of the owner's datasets: images × channels × height × width, train and test.</summary>
    public static Task<long> StoredBytesAsync(TrainingDb db, string owner, CancellationToken cancellationToken) =>
        db.Datasets.Where(d => d.Owner == owner)
            .SumAsync(d => (long)(d.TrainCount + d.TestCount) * d.Channels * d.Height * d.Width, cancellationToken);

    /// <summary>
    /// 413 when <paramref name="bytes"/> more would take the owner's datasets over <paramref name="max"/>, or, with the size
    /// not known yet (null), when they already take it all; null otherwise.
    /// </summary>
    public static async Task<ProblemHttpResult?> RefuseStorageAsync(
        TrainingDb db, string owner, long? bytes, long max, CancellationToken cancellationToken)
    {
        long stored = await StoredBytesAsync(db, owner, cancellationToken);
        if (bytes is null ? stored < max : stored + bytes <= max)
        {
            return null;
        }

        string dataset = bytes is null ? "" : $"The dataset is {N(bytes.Value)} bytes and ";
        return Refusal(
            StatusCodes.Status413PayloadTooLarge,
            StorageKey,
            $"{dataset}{(bytes is null ? "Your" : "your")} datasets take {N(stored)} bytes of the limit of {N(max)} bytes per owner "
            + $"(configuration {StorageKey}); delete a dataset to make room.",
            "Dataset storage is full");
    }

    /// <summary>429 for an upload or generation beyond the owner's <paramref name="max"/> in flight.</summary>
    public static ProblemHttpResult RefuseConcurrentUpload(int max) => Refusal(
        StatusCodes.Status429TooManyRequests,
        ConcurrentUploadsKey,
        $"You have {N(max)} dataset uploads or generations in progress, the limit (configuration {ConcurrentUploadsKey}); "
        + "send this one when one of them has finished.",
        "Too many uploads at once");

    private static ProblemHttpResult Refusal(int status, string key, string detail, string title) =>
        TypedResults.Problem(detail, statusCode: status, title: title, extensions: new Dictionary<string, object?> { ["limit"] = key });

    private static string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);
}

/// <summary>Dataset uploads and generations in flight, per owner: each may hold a dataset in memory and on disk.</summary>
public sealed class UploadSlots
{
    private readonly Dictionary<string, int> _inFlight = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    /// <summary>A slot released by disposing it, or null when the owner already has <paramref name="max"/>.</summary>
    public IDisposable? TryTake(string owner, int max)
    {
        lock (_gate)
        {
            int taken = _inFlight.GetValueOrDefault(owner);
            if (taken >= max)
            {
                return null;
            }

            _inFlight[owner] = taken + 1;
            return new Slot(this, owner);
        }
    }

    private void Release(string owner)
    {
        lock (_gate)
        {
            if (--_inFlight[owner] == 0)
            {
                _inFlight.Remove(owner); // no entry kept per owner ever seen
            }
        }
    }

    private sealed class Slot(UploadSlots slots, string owner) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                slots.Release(owner);
            }
        }
    }
}
