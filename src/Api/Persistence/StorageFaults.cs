using System.Collections.Concurrent;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;

namespace TrainingService.Api.Persistence;

/// <summary>
/// The storage faults the service is waiting out, by part ("database", or a job paused by one): what /health/ready
/// reports as its "storage" check while any persists.
/// </summary>
public sealed class StorageFaults(TimeProvider time)
{
    public const string Database = "database";

    private readonly ConcurrentDictionary<string, (string Reason, DateTimeOffset Since)> _faults = new();

    public void Report(string part, string reason) =>
        _faults.AddOrUpdate(part, (reason, time.GetUtcNow()), (_, old) => (reason, old.Since));

    public void Clear(string part) => _faults.TryRemove(part, out _);

    /// <summary>The reason <paramref name="part"/> is at fault, or null when it is not.</summary>
    public string? Has(string part) => _faults.TryGetValue(part, out var fault) ? fault.Reason : null;

    public static string JobPart(Guid jobId) => $"job {jobId}";

    /// <summary>Why the job is paused by a storage fault, or null when it is not.</summary>
    public string? PauseReason(Guid jobId) => _faults.TryGetValue(JobPart(jobId), out var fault) ? fault.Reason : null;

    /// <summary>
    /// "part: reason (since …)" for each fault, oldest first, jobs counted by reason rather than named (anyone may
    /// read /health/ready); empty when storage is healthy.
    /// </summary>
    public IReadOnlyList<string> Describe()
    {
        var current = _faults.OrderBy(f => f.Value.Since).ToList();
        return
        [
            .. current.Where(f => !IsJob(f.Key)).Select(f => $"{f.Key}: {f.Value.Reason} (since {f.Value.Since:O})"),
            .. current.Where(f => IsJob(f.Key)).GroupBy(f => f.Value.Reason)
                .Select(g => $"{g.Count()} job{(g.Count() == 1 ? "" : "s")} {g.Key} (since {g.First().Value.Since:O})"),
        ];
    }

    private static bool IsJob(string part) => part.StartsWith("job ", StringComparison.Ordinal);
}

/// <summary>Which failures are storage faults (worth waiting out) and how to say so without naming server paths.</summary>
public static class StorageFault
{
    /// <summary>The state reason of a job paused by a storage fault starts with this.</summary>
    public const string PausePrefix = "paused: storage fault: ";

    public static string PauseReason(string fault) => $"{PausePrefix}{fault}; retrying";

    public static bool IsPauseReason(string? reason) => reason?.StartsWith(PausePrefix, StringComparison.Ordinal) == true;

    /// <summary>
    /// A database fault or a disk that is full or read-only, anywhere in the exception's chain; on SQLite not a dropped
    /// connection (there is none), on PostgreSQL a lost or refused connection is the commonest one.
    /// </summary>
    public static bool IsDiskOrDatabase(Exception? exception) => exception switch
    {
        null => false,
        SqliteException or NpgsqlException => Describe(exception) is not null,
        IOException { HResult: 28 or 30 or 122 } => true,
        _ => IsDiskOrDatabase(exception.InnerException),
    };

    /// <summary>The fault's plain statement, or null when <paramref name="exception"/> is not a storage fault.</summary>
    public static string? Describe(Exception exception) => exception switch
    {
        SqliteException sqlite => (sqlite.SqliteErrorCode & 0xff) switch
        {
            5 or 6 => "the database is locked by another process",
            13 => "the disk is full (the database cannot grow)",
            8 => "the database is read-only",
            10 or 14 => "the database file cannot be read or written (an I/O error)",
            _ => null,
        },
        PostgresException postgres => postgres.SqlState switch
        {
            PostgresErrorCodes.DiskFull => "the disk is full (the database cannot grow)",
            PostgresErrorCodes.OutOfMemory => "the database server is out of memory",
            PostgresErrorCodes.TooManyConnections => "the database server accepts no more connections",
            PostgresErrorCodes.ReadOnlySqlTransaction => "the database is read-only",
            PostgresErrorCodes.LockNotAvailable => "the database is locked by another process",
            PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CrashShutdown or PostgresErrorCodes.CannotConnectNow
                => "the database server is restarting",
            _ when postgres.SqlState.StartsWith("08", StringComparison.Ordinal) => "the database cannot be reached", // connection_exception
            _ => null,
        },
        NpgsqlException { IsTransient: true } => "the database cannot be reached", // refused, reset or timed out: no server answer
        TrainingService.Api.Jobs.LeaseLostException => null, // another worker holds the job: nothing to wait out
        EventsNotPersistedException { InnerException: TrainingService.Api.Jobs.LeaseLostException } => null,
        EventsNotPersistedException lost => Describe(lost.InnerException!) ?? "job events could not be persisted",
        FileNotFoundException or DirectoryNotFoundException or EndOfStreamException => null, // missing or damaged, not transient
        IOException io => io.HResult switch
        {
            28 => "the disk is full (a job file cannot be written)", // ENOSPC
            30 => "the file system is read-only", // EROFS
            122 => "the disk quota is exhausted", // EDQUOT
            _ => "a job file cannot be written (an I/O error)",
        },
        UnauthorizedAccessException => "a job file cannot be written (permission denied)",
        OperationCanceledException => null, // cancelled on purpose, whatever broke on the way (Npgsql may break the connection)
        _ when exception.InnerException is { } inner => Describe(inner),
        _ => null,
    };
}

/// <summary>A job's events after some point could not be persisted; its run stops and resumes from its checkpoint.</summary>
public sealed class EventsNotPersistedException(Exception cause)
    : IOException("Job events could not be persisted, so no checkpoint may be written past them; the run resumes from its previous checkpoint.", cause);

/// <summary>"storage": Degraded, with the faults in its description, while any is being waited out.</summary>
internal sealed class StorageHealthCheck(StorageFaults faults) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(faults.Describe() is { Count: > 0 } current
            ? HealthCheckResult.Degraded(string.Join("; ", current))
            : HealthCheckResult.Healthy());
}

/// <summary>A request that met a storage fault (the database locked, the disk full): 503 with Retry-After, not a 500.</summary>
internal sealed class StorageFaultExceptionHandler(IProblemDetailsService problemDetails) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext context, Exception exception, CancellationToken cancellationToken)
    {
        if (!StorageFault.IsDiskOrDatabase(exception) || StorageFault.Describe(exception) is not { } fault || context.Response.HasStarted)
        {
            return false;
        }

        context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
        context.Response.Headers.RetryAfter = "5";
        return await problemDetails.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = context,
            Exception = exception,
            ProblemDetails =
            {
                Status = StatusCodes.Status503ServiceUnavailable,
                Title = "Storage is unavailable for now",
                Detail = $"Storage fault: {fault}. The request did not complete; try again shortly (/health/ready shows when it clears).",
            },
        });
    }
}
