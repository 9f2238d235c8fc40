using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using TrainingService.Api.Infrastructure;
using TrainingService.Api.Persistence;
using TrainingService.Contracts.Training;
using TrainingService.Training.Loop;

namespace TrainingService.Api.Jobs;

/// <summary>What a node does (configuration key <c>Role</c>): one binary, one image, three shapes.</summary>
public enum NodeRole
{
    /// <summary>Everything in one process: API, hub, dashboard and training (the default, today's single node).</summary>
    All,

    /// <summary>REST, hub and dashboard; trains nothing.</summary>
    Api,

    /// <summary>Trains; serves only /health and /metrics.</summary>
    Worker,
}

/// <summary>A worker's hold on a job: the fencing token every write of the run is checked against.</summary>
public sealed record JobClaim(Guid JobId, int Attempt, int CrashCount);

/// <summary>
/// The job table is the queue. A worker claims the oldest claimable job by a conditional update that bumps its
/// <see cref="JobRecord.Attempt"/> (the fencing token) and takes a lease; it renews the lease while it trains and
/// releases it when the run ends, pauses or is handed back. A worker that dies stops renewing: its lease runs out
/// (<see cref="JobOptions.LeaseSeconds"/>) and the next claim counts a crash and resumes the job from its checkpoint.
/// The same statements run on SQLite and PostgreSQL: the claim is optimistic (compare-and-set on Attempt), so two
/// workers racing for a job cannot both win, whatever the isolation level.
/// </summary>
public sealed class JobDispatch(IServiceScopeFactory scopes, IOptions<JobOptions> options, IConfiguration configuration) : IDisposable
{
    private readonly SemaphoreSlim _wake = new(0, 1);
    private readonly SemaphoreSlim _commandsWritten = new(0, 1);

    /// <summary>This node's name (Telemetry:Node, else the machine's): the lease owner it writes.</summary>
    public string Node { get; } = Telemetry.NodeName(configuration);

    public static NodeRole RoleOf(IConfiguration configuration) => configuration["Role"] switch
    {
        null or "" or "all" => NodeRole.All,
        "api" => NodeRole.Api,
        "worker" => NodeRole.Worker,
        string other => throw new InvalidOperationException($"Role must be all, api or worker; got '{other}'."),
    };

    private TimeSpan Lease => TimeSpan.FromSeconds(options.Value.LeaseSeconds);

    /// <summary>Jobs waiting for a worker, as last counted by this node's worker (0 on an api node).</summary>
    public int Queued { get; private set; }

    /// <summary>A job became claimable on this node's side: its workers look now rather than at their next poll.</summary>
    public void Wake() => Release(_wake);

    /// <summary>A command was written here: this node's worker reads commands now rather than at its next poll.</summary>
    public void CommandsWritten() => Release(_commandsWritten);

    public Task<bool> WaitForWorkAsync(TimeSpan timeout, CancellationToken cancellationToken) => _wake.WaitAsync(timeout, cancellationToken);

    public Task<bool> WaitForCommandsAsync(TimeSpan timeout, CancellationToken cancellationToken) => _commandsWritten.WaitAsync(timeout, cancellationToken);

    public void Dispose()
    {
        _wake.Dispose();
        _commandsWritten.Dispose();
    }

    private static void Release(SemaphoreSlim signal)
    {
        try
        {
            signal.Release();
        }
        catch (SemaphoreFullException)
        {
            // already signalled
        }
    }

    /// <summary>
    /// At start: leases this node held before it stopped run out now rather than after the lease time, so a restarted
    /// node takes its jobs back at once (each counts as a crash: the process died holding it).
    /// </summary>
    public async Task ExpireOwnLeasesAsync(CancellationToken cancellationToken)
    {
        await using AsyncServiceScope scope = scopes.CreateAsyncScope();
        TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
        DateTime past = DateTime.UtcNow.AddSeconds(-1);
        await db.Jobs.Where(j => j.LeaseOwner == Node)
            .ExecuteUpdateAsync(s => s.SetProperty(j => j.LeaseExpiresAt, past), cancellationToken);
    }

    /// <summary>The oldest claimable job, leased to this node; null when there is none.</summary>
    public async Task<JobClaim?> TryClaimAsync(CancellationToken cancellationToken)
    {
        await using AsyncServiceScope scope = scopes.CreateAsyncScope();
        TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
        for (int race = 0; race < 8; race++)
        {
            DateTime now = DateTime.UtcNow;
            var candidate = await Claimable(db.Jobs, now).OrderBy(j => j.CreatedAt)
                .Select(j => new { j.Id, j.Attempt, j.LeaseOwner, j.CrashCount }).FirstOrDefaultAsync(cancellationToken);
            if (candidate is null)
            {
                Queued = 0;
                return null;
            }

            // A lease that was never released: the process that held it died while training the job.
            int crashes = candidate.CrashCount + (candidate.LeaseOwner is null ? 0 : 1);
            DateTime expires = now + Lease;
            int won = await Claimable(db.Jobs, now).Where(j => j.Id == candidate.Id && j.Attempt == candidate.Attempt)
                .ExecuteUpdateAsync(s => s
                    .SetProperty(j => j.Attempt, candidate.Attempt + 1)
                    .SetProperty(j => j.LeaseOwner, Node)
                    .SetProperty(j => j.LeaseExpiresAt, expires)
                    .SetProperty(j => j.CrashCount, crashes), cancellationToken);
            if (won == 1)
            {
                return new JobClaim(candidate.Id, candidate.Attempt + 1, crashes);
            }
        }

        return null; // lost every race this time: others are claiming; look again soon
    }

    /// <summary>
    /// Jobs a worker may take: queued, or left running or paused by a storage fault by a worker whose lease ran out.
    /// A job a person paused waits for them (its lease was released when it paused).
    /// </summary>
    private static IQueryable<JobRecord> Claimable(IQueryable<JobRecord> jobs, DateTime now) => jobs.Where(j =>
        (j.State == RunState.Queued || j.State == RunState.Running
            || (j.State == RunState.Paused && j.Error != null && j.Error.StartsWith(StorageFault.PausePrefix)))
        && (j.LeaseOwner == null || j.LeaseExpiresAt < now));

    /// <summary>Counts the jobs waiting for a worker (the queue-length metric; a worker autoscaler reads it).</summary>
    public async Task CountQueuedAsync(CancellationToken cancellationToken)
    {
        await using AsyncServiceScope scope = scopes.CreateAsyncScope();
        TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
        Queued = await Claimable(db.Jobs, DateTime.UtcNow).CountAsync(cancellationToken);
    }

    /// <summary>Extends the lease; false when the job's lease is no longer this claim's (another worker took it).</summary>
    public async Task<bool> RenewAsync(JobClaim claim, CancellationToken cancellationToken)
    {
        await using AsyncServiceScope scope = scopes.CreateAsyncScope();
        TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
        DateTime expires = DateTime.UtcNow + Lease;
        return await Held(db, claim).ExecuteUpdateAsync(s => s.SetProperty(j => j.LeaseExpiresAt, expires), cancellationToken) == 1;
    }

    /// <summary>True while the claim still holds the job: checked before a checkpoint replaces the last one.</summary>
    public async Task<bool> HoldsAsync(JobClaim claim, CancellationToken cancellationToken)
    {
        await using AsyncServiceScope scope = scopes.CreateAsyncScope();
        TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
        return await Held(db, claim).AnyAsync(cancellationToken);
    }

    /// <summary>The run ended in order (done, paused, failed, handed back): the job is free, and no crash is on record.</summary>
    public async Task ReleaseAsync(JobClaim claim, CancellationToken cancellationToken)
    {
        await using AsyncServiceScope scope = scopes.CreateAsyncScope();
        TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
        await Held(db, claim).ExecuteUpdateAsync(s => s
            .SetProperty(j => j.LeaseOwner, (string?)null)
            .SetProperty(j => j.LeaseExpiresAt, (DateTime?)null)
            .SetProperty(j => j.CrashCount, 0), cancellationToken);
        // Commands that came too late for an ended job have nothing left to reach.
        await db.JobCommands.Where(c => c.JobId == claim.JobId && db.Jobs.Any(j => j.Id == claim.JobId
                && (j.State == RunState.Succeeded || j.State == RunState.Failed || j.State == RunState.Cancelled)))
            .ExecuteDeleteAsync(cancellationToken);
        Wake(); // a run of this node ended: a slot is free
    }

    private IQueryable<JobRecord> Held(TrainingDb db, JobClaim claim) =>
        db.Jobs.Where(j => j.Id == claim.JobId && j.Attempt == claim.Attempt && j.LeaseOwner == Node);

    /// <summary>Queues a command for the job's run, wherever it runs (the caller saves the context).</summary>
    /// <summary>A command for the job's worker; <paramref name="payload"/>: a change's values, or a cancel's <see cref="StopNote"/>.</summary>
    public static void AddCommand(TrainingDb db, Guid jobId, JobCommandKind kind, object? payload = null) =>
        db.JobCommands.Add(new JobCommandRecord
        {
            JobId = jobId, Kind = kind, CreatedAt = DateTime.UtcNow,
            Payload = payload is null ? null : JsonSerializer.Serialize(payload, payload.GetType(), JsonSerializerOptions.Web),
        });

    /// <summary>The commands waiting for these jobs, oldest first, taken (deleted) as they are read.</summary>
    public async Task<List<JobCommandRecord>> TakeCommandsAsync(IReadOnlyCollection<Guid> jobIds, CancellationToken cancellationToken)
    {
        if (jobIds.Count == 0)
        {
            return [];
        }

        await using AsyncServiceScope scope = scopes.CreateAsyncScope();
        TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
        List<JobCommandRecord> commands = await db.JobCommands.AsNoTracking()
            .Where(c => jobIds.Contains(c.JobId)).OrderBy(c => c.Id).Take(256).ToListAsync(cancellationToken);
        if (commands.Count > 0)
        {
            List<long> ids = [.. commands.Select(c => c.Id)];
            await db.JobCommands.Where(c => ids.Contains(c.Id)).ExecuteDeleteAsync(cancellationToken);
        }

        return commands;
    }

    /// <summary>Obeys a command on the run's control (the trainer applies it between steps).</summary>
    public static void Apply(JobCommandRecord command, TrainingControl control)
    {
        switch (command.Kind)
        {
            case JobCommandKind.Pause:
                control.Pause();
                break;
            case JobCommandKind.Cancel when command.Payload is { } payload:
                StopNote note = JsonSerializer.Deserialize<StopNote>(payload, JsonSerializerOptions.Web)!;
                control.Cancel(note.Reason, note.Code);
                break;
            case JobCommandKind.Cancel:
                control.Cancel();
                break;
            case JobCommandKind.Finish:
                control.Finish();
                break;
            case JobCommandKind.Snapshot:
                control.RequestSnapshot();
                break;
            case JobCommandKind.Change when command.Payload is { } payload:
                control.Change(JsonSerializer.Deserialize<HyperparameterChange>(payload, JsonSerializerOptions.Web)!);
                break;
        }
    }
}

/// <summary>Why a job is cancelled, when not by a person: a sweep's code (sweep-cancelled) and its words.</summary>
public sealed record StopNote(string Code, string Reason);

/// <summary>
/// A run's worker no longer holds the job: its lease ran out and another worker claimed it (Attempt moved on). The run
/// stops and writes nothing more; it is not a storage fault and not a failure of the job.
/// </summary>
public sealed class LeaseLostException(Guid jobId, int attempt, int? current = null)
    : Exception($"Job {jobId}: attempt {attempt} lost its lease; {(current is { } c ? $"attempt {c}" : "another worker")} holds the job now.")
{
    /// <summary>True when the lease loss is anywhere in the exception's chain.</summary>
    public static bool In(Exception? exception) => exception switch
    {
        null => false,
        LeaseLostException => true,
        _ => In(exception.InnerException),
    };
}

/// <summary>
/// "claiming": whether this node's worker can claim jobs. A worker node that cannot is not ready (Unhealthy, so an
/// orchestrator stops counting on it); an all-role node only Degraded, since its API still serves.
/// </summary>
internal sealed class ClaimingHealthCheck(StorageFaults faults, NodeRole role) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(
        HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(faults.Has(JobWorker.Claiming) is { } reason
            ? new HealthCheckResult(
                role == NodeRole.Worker ? HealthStatus.Unhealthy : HealthStatus.Degraded,
                $"this node's worker {reason}")
            : HealthCheckResult.Healthy("this node's worker claims jobs"));
}
