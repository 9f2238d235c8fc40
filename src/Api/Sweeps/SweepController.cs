using System.Globalization;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using TrainingService.Api.Access;
using TrainingService.Api.Jobs;
using TrainingService.Api.Persistence;
using TrainingService.Api.Quotas;
using TrainingService.Api.Streaming;
using TrainingService.Contracts.Specs;
using TrainingService.Contracts.Sweeps;
using TrainingService.Contracts.Training;
using TrainingService.Training.Loop;
using TrainingService.Training.Specs;
using TrainingService.Training.Sweeps;

namespace TrainingService.Api.Sweeps;

/// <summary>Wakes this node's sweep controller at once (a sweep created or cancelled here) instead of at its next poll.</summary>
public sealed class SweepSignals : IDisposable
{
    private readonly SemaphoreSlim _wake = new(0, 1);

    public void Wake()
    {
        try
        {
            _wake.Release();
        }
        catch (SemaphoreFullException)
        {
            // already woken
        }
    }

    public Task<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken) => _wake.WaitAsync(timeout, cancellationToken);

    public void Dispose() => _wake.Dispose();
}

/// <summary>
/// Runs every node's share of the sweeps: starts a running sweep's next trials while fewer than its parallelism are
/// active, and ends a sweep once every trial has. Every node runs one; they need no leader, because each start is made
/// under the write lock every job creation takes (<see cref="OwnerQuotas.BeginWriteAsync"/>): the count of active
/// trials and of trials made is read again inside it, and a unique index on (SweepId, SweepTrial) backs it. A trial
/// waits (the sweep says why) while its owner is at Jobs:MaxActiveJobsPerOwner. The trials' babysitting (asha's cuts,
/// divergence) is the workers' (<see cref="TrialSink"/>), so a dead node stops nothing but its own poll.
/// </summary>
public sealed class SweepController(
    IServiceScopeFactory scopes, SweepSignals signals, JobDispatch dispatch, EventPump pump, IOptions<SweepOptions> options, IOptions<JobOptions> jobs,
    IOptions<SpecLimits> limits, ILogger<SweepController> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        TimeSpan poll = TimeSpan.FromMilliseconds(options.Value.PollMilliseconds);
        bool failing = false;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await PassAsync(stoppingToken);
                failing = false;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // A storage fault (or a lost race on the unique index): the next pass reads everything again. Logged
                // once as a warning, then quietly until a pass gets through, so a long fault does not flood the log.
                logger.Log(failing ? LogLevel.Debug : LogLevel.Warning, ex, "A pass over running sweeps failed; the next pass tries again");
                failing = true;
            }

            try
            {
                await signals.WaitAsync(poll, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>One look at the running sweeps: starts what may start, ends what has ended. Public for tests.</summary>
    public async Task PassAsync(CancellationToken cancellationToken)
    {
        await using AsyncServiceScope scope = scopes.CreateAsyncScope();
        TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
        await CutLeftWaitingAsync(db, cancellationToken);
        var running = await db.Sweeps.AsNoTracking().Where(s => s.State == RunState.Running).OrderBy(s => s.CreatedAt)
            .Select(s => new { s.Id, s.Owner, s.Trials, s.TrialsCreated, s.Parallelism, s.SuggestedLearningRate, s.Waiting, s.Settings }).Take(1000).ToListAsync(cancellationToken);
        if (running.Count == 0)
        {
            return;
        }

        Guid[] ids = [.. running.Select(s => s.Id)];
        Dictionary<Guid, int> active = await CountAsync(db, ids, ActiveJobs.Holding, cancellationToken);
        Dictionary<Guid, int> atRung = await CountAsync(db, ids, ActiveJobs.AtRung, cancellationToken);
        foreach (var sweep in running)
        {
            if (sweep.TrialsCreated == 0 && sweep.SuggestedLearningRate is null && await InRangeTestAsync(db, sweep.Id, cancellationToken))
            {
                continue;
            }

            int now = active.GetValueOrDefault(sweep.Id);
            bool more = sweep.TrialsCreated < sweep.Trials;
            bool ending = !more && now == 0;
            // A trial waiting at a rung is read for promotion without the write lock first: most passes promote nothing.
            bool promote = atRung.GetValueOrDefault(sweep.Id) > 0 && now < sweep.Parallelism
                && await NextPromotionAsync(db, sweep.Id, Asha.Of(sweep.Settings.Asha), sweep.Settings.Goal, ending, cancellationToken) is not null;
            if ((more || promote) && now < sweep.Parallelism)
            {
                // A sweep already waiting for its owner's quota takes the write lock again only once a slot may be free.
                if (sweep.Waiting is null || await OwnerQuotas.RefuseJobAsync(db, sweep.Owner, jobs.Value.MaxActiveJobsPerOwner, cancellationToken) is null)
                {
                    await StartTrialsAsync(db, sweep.Id, cancellationToken);
                }
            }
            else if (ending)
            {
                await FinishAsync(db, sweep.Id, cancellationToken);
            }
        }
    }

    /// <summary>
    /// Trials still waiting at a rung of a sweep that failed: a sweep that fails (its dataset deleted) cuts the trials
    /// waiting then, but not one whose worker still held its lease as it paused there; once no lease holds it, it is cut
    /// here, as at the sweep's end, rather than left paused for good (a person may not resume a trial at a rung). A
    /// sweep that succeeded left none; a cancelled one cancels its own (sweep-cancelled).
    /// </summary>
    private async Task CutLeftWaitingAsync(TrainingDb db, CancellationToken cancellationToken)
    {
        DateTime now = DateTime.UtcNow;
        List<Guid> ended = await db.Jobs.AsNoTracking().Where(j => j.SweepId != null && (j.LeaseOwner == null || j.LeaseExpiresAt < now)).Where(ActiveJobs.AtRung)
            .Where(j => db.Sweeps.Any(s => s.Id == j.SweepId && s.State == RunState.Failed)).Select(j => j.SweepId!.Value).Distinct().Take(100).ToListAsync(cancellationToken);
        foreach (Guid id in ended)
        {
            List<StateNote> notes;
            await using (var write = await OwnerQuotas.BeginWriteAsync(db, cancellationToken))
            {
                await SweepRungs.LockAsync(db, id, cancellationToken);
                SweepRecord? sweep = await db.Sweeps.FirstOrDefaultAsync(s => s.Id == id, cancellationToken);
                if (sweep is not { State: RunState.Failed })
                {
                    continue; // a cancelled sweep cancels its trials itself (sweep-cancelled), after its own commit
                }

                notes = await CutWaitingAsync(db, sweep, Asha.Of(sweep.Settings.Asha), cancellationToken);
                await db.SaveChangesAsync(cancellationToken);
                await write.CommitAsync(cancellationToken);
            }

            logger.LogInformation("Sweep {SweepId} had ended with {Count} trials waiting at a rung: cut", id, notes.Count);
            await PublishAsync(notes);
        }
    }

    private static Task<Dictionary<Guid, int>> CountAsync(TrainingDb db, Guid[] ids, System.Linq.Expressions.Expression<Func<JobRecord, bool>> which, CancellationToken cancellationToken) =>
        db.Jobs.AsNoTracking().Where(j => j.SweepId != null && ids.Contains(j.SweepId.Value)).Where(which)
            .GroupBy(j => j.SweepId!.Value).Select(g => new { g.Key, Count = g.Count() }).ToDictionaryAsync(g => g.Key, g => g.Count, cancellationToken);

    /// <summary>
    /// asha's promotion form: the waiting trial to train on next and its job, or null. Only a trial whose job is paused at
    /// its rung with no worker holding it may be promoted (one still writing its checkpoint is not yet).
    /// </summary>
    private static async Task<(Promotion Promotion, Guid JobId)?> NextPromotionAsync(TrainingDb db, Guid id, Asha? asha, MetricGoal goal, bool ending, CancellationToken cancellationToken)
    {
        if (asha is not { Promotes: true })
        {
            return null;
        }

        DateTime now = DateTime.UtcNow;
        Dictionary<int, Guid> waiting = await db.Jobs.AsNoTracking().Where(j => j.SweepId == id && j.SweepTrial != null && (j.LeaseOwner == null || j.LeaseExpiresAt < now)).Where(ActiveJobs.AtRung)
            .ToDictionaryAsync(j => j.SweepTrial!.Value, j => j.Id, cancellationToken);
        if (waiting.Count == 0)
        {
            return null;
        }

        List<SweepRungRecord> reports = await db.SweepRungs.AsNoTracking().Where(r => r.SweepId == id).ToListAsync(cancellationToken);
        Promotion? next = asha.Next([.. reports.Select(r => SweepRungs.Entry(r) with { Waiting = r.Waiting && waiting.ContainsKey(r.Trial) })], goal, ending);
        return next is { } p ? (p, waiting[p.Trial]) : null;
    }

    /// <summary>
    /// Under the write lock (and the sweep's, which rung reports take): while the sweep has a free slot and its owner is
    /// under the quota, promotes the waiting trial asha picks (promotion form), or else starts the next trial.
    /// </summary>
    private async Task StartTrialsAsync(TrainingDb db, Guid id, CancellationToken cancellationToken)
    {
        bool started = false;
        List<StateNote> notes = [];
        await using (var write = await OwnerQuotas.BeginWriteAsync(db, cancellationToken))
        {
            await SweepRungs.LockAsync(db, id, cancellationToken);
            SweepRecord? sweep = await db.Sweeps.FirstOrDefaultAsync(s => s.Id == id, cancellationToken);
            if (sweep is not { State: RunState.Running })
            {
                return; // cancelled meanwhile
            }

            DatasetRecord? dataset = await db.Datasets.AsNoTracking().FirstOrDefaultAsync(d => d.Id == sweep.DatasetId, cancellationToken);
            Asha? asha = Asha.Of(sweep.Settings.Asha);
            if (dataset is null)
            {
                notes = await CutWaitingAsync(db, sweep, asha, cancellationToken);
                End(sweep, RunState.Failed, $"its dataset {sweep.DatasetId} no longer exists");
            }
            else
            {
                int active = await db.Jobs.Where(j => j.SweepId == id).CountAsync(ActiveJobs.Holding, cancellationToken);
                var settings = SweepViews.Params(sweep);
                List<SearchField> fields = Fields(sweep.Settings, limits.Value);
                var shape = dataset.Shape;
                while (active < sweep.Parallelism)
                {
                    bool more = sweep.TrialsCreated < sweep.Trials;
                    var promotion = await NextPromotionAsync(db, id, asha, sweep.Settings.Goal, ending: !more && active == 0, cancellationToken);
                    if (!more && promotion is null)
                    {
                        break;
                    }

                    if (await OwnerQuotas.RefuseJobAsync(db, sweep.Owner, jobs.Value.MaxActiveJobsPerOwner, cancellationToken) is not null)
                    {
                        sweep.Waiting = $"the owner has {jobs.Value.MaxActiveJobsPerOwner} active jobs, the limit ({OwnerQuotas.ActiveJobsKey}): the next trial starts when one ends";
                        break;
                    }

                    if (promotion is { } promote)
                    {
                        await PromoteAsync(db, id, promote.Promotion, promote.JobId, cancellationToken);
                    }
                    else
                    {
                        int index = sweep.TrialsCreated;
                        db.Jobs.Add(TrialJob(sweep, index, settings[index], fields, shape));
                        sweep.TrialsCreated = index + 1;
                    }

                    sweep.Waiting = null;
                    active++;
                    started = true;
                    await db.SaveChangesAsync(cancellationToken); // counted by the quota's next read, in this transaction
                }
            }

            await db.SaveChangesAsync(cancellationToken);
            await write.CommitAsync(cancellationToken);
        }

        await PublishAsync(notes);
        if (started)
        {
            dispatch.Wake();
        }
    }

    /// <summary>A waiting trial trains on: its job queued again (whichever worker takes it resumes from the rung's checkpoint), its report marked promoted.</summary>
    private static async Task PromoteAsync(TrainingDb db, Guid id, Promotion promotion, Guid jobId, CancellationToken cancellationToken)
    {
        DateTime now = DateTime.UtcNow;
        int queued = await db.Jobs.Where(j => j.Id == jobId && (j.LeaseOwner == null || j.LeaseExpiresAt < now)).Where(ActiveJobs.AtRung)
            .ExecuteUpdateAsync(s => s.SetProperty(j => j.State, RunState.Queued).SetProperty(j => j.StopCode, (string?)null).SetProperty(j => j.Error, (string?)null), cancellationToken);
        if (queued == 0)
        {
            throw new InvalidOperationException($"trial {promotion.Trial}'s job {jobId} was no longer waiting at its rung"); // read under this lock: the pass retries
        }

        await db.SweepRungs.Where(r => r.SweepId == id && r.Epoch == promotion.Epoch && r.Trial == promotion.Trial)
            .ExecuteUpdateAsync(s => s.SetProperty(r => r.Waiting, false).SetProperty(r => r.Continued, true)
                .SetProperty(r => r.Cutoff, promotion.Cut).SetProperty(r => r.Earlier, promotion.Count - 1), cancellationToken);
    }

    /// <summary>
    /// As a promotion-form sweep ends: every trial still waiting at a rung is cut (its job Cancelled, code asha-cut, its
    /// report saying the cut it missed). Returns the state events to publish once the write lock is released.
    /// </summary>
    private static async Task<List<StateNote>> CutWaitingAsync(TrainingDb db, SweepRecord sweep, Asha? asha, CancellationToken cancellationToken)
    {
        DateTime now = DateTime.UtcNow;
        List<JobRecord> waiting = await db.Jobs.AsNoTracking().Where(j => j.SweepId == sweep.Id && j.SweepTrial != null && (j.LeaseOwner == null || j.LeaseExpiresAt < now)).Where(ActiveJobs.AtRung).ToListAsync(cancellationToken);
        if (asha is null || waiting.Count == 0)
        {
            return [];
        }

        List<SweepRungRecord> reports = await db.SweepRungs.Where(r => r.SweepId == sweep.Id).ToListAsync(cancellationToken);
        List<RungEntry> entries = [.. reports.Select(SweepRungs.Entry)];
        List<StateNote> notes = [];
        foreach (JobRecord job in waiting)
        {
            SweepRungRecord? report = reports.Where(r => r.Trial == job.SweepTrial && r.Waiting).MaxBy(r => r.Epoch);
            string reason = "asha: the sweep ended with it waiting at a rung";
            if (report is not null)
            {
                (double? cut, int count) = asha.CutAt(entries, report.Epoch, sweep.Settings.Goal);
                report.Waiting = false;
                report.Cutoff = cut;
                report.Earlier = count - 1;
                reason = string.Create(CultureInfo.InvariantCulture,
                    $"asha: at the rung of epoch {report.Epoch}, {SweepsApi.Name(sweep.Settings.Metric)} {report.Value:G4} was not among the best 1/{asha.ReductionFactor} of the {count} trials that reported there (the cut {cut:G4}) when the sweep ended");
            }

            int changed = await db.Jobs.Where(j => j.Id == job.Id && (j.LeaseOwner == null || j.LeaseExpiresAt < now)).Where(ActiveJobs.AtRung).ExecuteUpdateAsync(s => s
                .SetProperty(j => j.State, RunState.Cancelled).SetProperty(j => j.StopCode, TrialSink.AshaCut).SetProperty(j => j.Error, reason).SetProperty(j => j.FinishedAt, now), cancellationToken);
            if (changed == 1)
            {
                notes.Add(new StateNote(job.Id, job.LastSeq, job.Attempt, reason)); // not when a person's cancel came first
            }
        }

        return notes;
    }

    /// <summary>A trial cut at the sweep's end, as its job's last state event says it.</summary>
    private sealed record StateNote(Guid JobId, long LastSeq, int Attempt, string Reason);

    /// <summary>
    /// The cut trials' state events, after the write lock (the pump writes them under its own). Each is written at its
    /// job's current attempt, so an older run of the job on this node that lost its lease (and left this node's pump
    /// refusing the job's events) is forgiven first; the pump's fence still checks the attempt.
    /// </summary>
    private async Task PublishAsync(List<StateNote> notes)
    {
        foreach (StateNote note in notes)
        {
            pump.Forgive(note.JobId);
            new JobEventWriter(pump, note.JobId, note.LastSeq, note.Attempt)
                .Publish(new StateEvent { State = RunState.Cancelled, Reason = note.Reason, Code = TrialSink.AshaCut });
        }

        if (notes.Count > 0)
        {
            await pump.FlushAsync();
        }
    }

    /// <summary>
    /// A sweep whose learning rate comes from a range test, before its trials: starts the test (a job of the sweep that is
    /// no trial, taking one parallelism slot), and once it has ended takes its suggestion into every trial's settings
    /// and checks them again, or fails the sweep saying why. False for a sweep without a range test.
    /// </summary>
    private async Task<bool> InRangeTestAsync(TrainingDb db, Guid id, CancellationToken cancellationToken)
    {
        SweepRecord? sweep = await db.Sweeps.AsNoTracking().FirstOrDefaultAsync(s => s.Id == id, cancellationToken);
        if (sweep?.Settings.RangeTest is not { } sanity)
        {
            return false;
        }

        if (sweep.RangeTestJobId is null)
        {
            await StartRangeTestAsync(db, id, sanity, cancellationToken);
            return true;
        }

        JobRecord? test = await db.Jobs.AsNoTracking().FirstOrDefaultAsync(j => j.Id == sweep.RangeTestJobId, cancellationToken);
        if (test is not null && !test.State.IsEnded())
        {
            return true;
        }

        string? verdict = test is null ? null : await db.JobEvents.AsNoTracking().Where(e => e.JobId == test.Id && e.Kind == "sanity")
            .OrderByDescending(e => e.Seq).Select(e => e.Json).FirstOrDefaultAsync(cancellationToken);
        (bool passed, double? suggestion, string? message) = Verdict(verdict);
        string? error = test is null ? $"its range test (job {sweep.RangeTestJobId}) was deleted before it ended"
            : test.State != RunState.Succeeded ? $"its range test (job {test.Id}) ended {test.State}{(test.Error is null ? "" : $": {test.Error}")}"
            : !passed || suggestion is null ? $"its range test (job {test.Id}) suggested no learning rate: {message ?? "no verdict"}"
            : null;
        await using var write = await OwnerQuotas.BeginWriteAsync(db, cancellationToken);
        SweepRecord? held = await db.Sweeps.FirstOrDefaultAsync(s => s.Id == id, cancellationToken);
        if (held is not { State: RunState.Running, SuggestedLearningRate: null })
        {
            return true;
        }

        if (error is null)
        {
            error = Resolve(held, suggestion!.Value, await db.Datasets.AsNoTracking().FirstOrDefaultAsync(d => d.Id == held.DatasetId, cancellationToken));
        }

        if (error is not null)
        {
            End(held, RunState.Failed, $"learningRate from the range test: {error}");
        }

        await db.SaveChangesAsync(cancellationToken);
        await write.CommitAsync(cancellationToken);
        return error is not null;
    }

    private static (bool Passed, double? Suggestion, string? Message) Verdict(string? json)
    {
        if (json is null)
        {
            return (false, null, null);
        }

        using var document = System.Text.Json.JsonDocument.Parse(json);
        System.Text.Json.JsonElement e = document.RootElement;
        return (e.TryGetProperty("passed", out var passed) && passed.ValueKind == System.Text.Json.JsonValueKind.True,
            e.TryGetProperty("suggestedLearningRate", out var rate) && rate.ValueKind == System.Text.Json.JsonValueKind.Number ? rate.GetDouble() : null,
            e.TryGetProperty("message", out var message) ? message.GetString() : null);
    }

    /// <summary>Takes the suggestion into the settings and every trial's values; why not, when a trial no longer plans with them.</summary>
    private string? Resolve(SweepRecord sweep, double suggestion, DatasetRecord? dataset)
    {
        if (dataset is null)
        {
            return $"its dataset {sweep.DatasetId} no longer exists";
        }

        SweepSettings s = sweep.Settings;
        Hyperparameters hp = s.LearningRateFromRangeTest ? s.Hyperparameters with { LearningRate = suggestion } : s.Hyperparameters;
        var trials = SearchSpace.Trials(s.SearchSpace, s.Strategy, s.Asha?.Sampler == "grid", s.Trials, s.Seed, suggestion);
        List<SearchField> fields = Fields(s, limits.Value);
        var shape = dataset.Shape;
        for (int t = 0; t < trials.Count; t++)
        {
            if (SearchSpace.Plan(t, s.Model, hp, s.Monitoring, fields, trials[t], shape, limits.Value, jobs.Value.JobThreads).Error is { } error)
            {
                return $"it suggested {suggestion:G4}, and {error}";
            }
        }

        sweep.Settings = s with { Hyperparameters = hp };
        sweep.TrialParams = System.Text.Json.JsonSerializer.Serialize(trials, System.Text.Json.JsonSerializerOptions.Web);
        sweep.SuggestedLearningRate = suggestion;
        return null;
    }

    private async Task StartRangeTestAsync(TrainingDb db, Guid id, SanityOptions sanity, CancellationToken cancellationToken)
    {
        await using (var write = await OwnerQuotas.BeginWriteAsync(db, cancellationToken))
        {
            SweepRecord? sweep = await db.Sweeps.FirstOrDefaultAsync(s => s.Id == id, cancellationToken);
            if (sweep is not { State: RunState.Running, RangeTestJobId: null })
            {
                return;
            }

            DatasetRecord? dataset = await db.Datasets.AsNoTracking().FirstOrDefaultAsync(d => d.Id == sweep.DatasetId, cancellationToken);
            if (dataset is null)
            {
                End(sweep, RunState.Failed, $"its dataset {sweep.DatasetId} no longer exists");
            }
            else if (await OwnerQuotas.RefuseJobAsync(db, sweep.Owner, jobs.Value.MaxActiveJobsPerOwner, cancellationToken) is not null)
            {
                sweep.Waiting = $"the owner has {jobs.Value.MaxActiveJobsPerOwner} active jobs, the limit ({OwnerQuotas.ActiveJobsKey}): the range test starts when one ends";
            }
            else
            {
                SweepSettings s = sweep.Settings;
                var shape = dataset.Shape;
                TrainingPlan plan = TrainingPlan.Require(SpecReader.ReadAndAnalyze(s.Model, limits.Value), shape, s.Hyperparameters, s.Monitoring, sanity, jobs.Value.JobThreads);
                var job = new JobRecord
                {
                    Id = Guid.CreateVersion7(), Owner = sweep.Owner, State = RunState.Queued, Spec = plan.Model.Spec!, ModelId = s.ModelId, DatasetId = sweep.DatasetId,
                    Hyperparameters = s.Hyperparameters, Monitoring = s.Monitoring, Sanity = sanity, Threads = plan.Threads, TotalSteps = plan.TotalSteps,
                    SweepId = sweep.Id, CreatedAt = DateTime.UtcNow,
                };
                db.Jobs.Add(job);
                sweep.RangeTestJobId = job.Id;
                sweep.Waiting = null;
            }

            await db.SaveChangesAsync(cancellationToken);
            await write.CommitAsync(cancellationToken);
        }

        dispatch.Wake();
    }

    /// <summary>The trial's job, queued; one whose settings no longer plan (limits changed since) is made Failed, saying why.</summary>
    private JobRecord TrialJob(SweepRecord sweep, int index, IReadOnlyDictionary<string, System.Text.Json.Nodes.JsonNode?> values, List<SearchField> fields, DatasetShape shape)
    {
        SweepSettings s = sweep.Settings;
        (TrainingPlan? plan, string? error, _) = SearchSpace.Plan(index, s.Model, s.Hyperparameters, s.Monitoring, fields, values, shape, limits.Value, jobs.Value.JobThreads);
        DateTime now = DateTime.UtcNow;
        return new JobRecord
        {
            Id = Guid.CreateVersion7(),
            Owner = sweep.Owner,
            State = plan is null ? RunState.Failed : RunState.Queued,
            Error = error,
            Spec = plan?.Model.Spec ?? SpecReader.Read(s.Model).Spec ?? new ModelSpec(), // a failed trial shows the base's spec
            ModelId = fields.Any(f => f.Root == "model") ? null : s.ModelId,
            DatasetId = sweep.DatasetId,
            Hyperparameters = plan?.Hyperparameters ?? s.Hyperparameters, // a trial runs no sanity check: the plan's are its own
            Monitoring = plan?.Monitoring ?? s.Monitoring,
            Threads = plan?.Threads ?? 1,
            TotalSteps = plan?.TotalSteps ?? 0,
            SweepId = sweep.Id,
            SweepTrial = index,
            CreatedAt = now,
            FinishedAt = plan is null ? now : null,
        };
    }

    /// <summary>The sweep's search fields, resolved against its base model.</summary>
    internal static List<SearchField> Fields(SweepSettings settings, SpecLimits limits)
    {
        SpecAnalysis analysis = SpecReader.ReadAndAnalyze(settings.Model, limits);
        return [.. settings.SearchSpace.Select(d => SearchSpace.Resolve(d.Path, analysis, out string error)
            ?? throw new InvalidOperationException($"a stored sweep's path {d.Path} no longer resolves: {error}"))];
    }

    private async Task FinishAsync(TrainingDb db, Guid id, CancellationToken cancellationToken)
    {
        List<StateNote> notes;
        await using (var write = await OwnerQuotas.BeginWriteAsync(db, cancellationToken))
        {
            await SweepRungs.LockAsync(db, id, cancellationToken);
            SweepRecord? sweep = await db.Sweeps.FirstOrDefaultAsync(s => s.Id == id, cancellationToken);
            Asha? asha = sweep is null ? null : Asha.Of(sweep.Settings.Asha);
            DateTime now = DateTime.UtcNow;
            if (sweep is not { State: RunState.Running } || sweep.TrialsCreated < sweep.Trials
                || await db.Jobs.Where(j => j.SweepId == id).AnyAsync(ActiveJobs.Holding, cancellationToken)
                || await db.Jobs.AnyAsync(j => j.SweepId == id && j.State == RunState.Paused && j.LeaseOwner != null && j.LeaseExpiresAt >= now, cancellationToken) // still writing a rung's checkpoint
                || await NextPromotionAsync(db, id, asha, sweep.Settings.Goal, ending: true, cancellationToken) is not null)
            {
                return;
            }

            // Trials left waiting at a rung are cut first; the sweep ends at the next pass, once their last state events
            // are written: a sweep read as ended has every trial's history complete.
            notes = await CutWaitingAsync(db, sweep, asha, cancellationToken);
            if (notes.Count == 0)
            {
                bool anyValue = await db.Jobs.AnyAsync(j => j.SweepId == id && j.SweepValue != null, cancellationToken);
                End(sweep, anyValue ? RunState.Succeeded : RunState.Failed, anyValue ? null : $"no trial reported {SweepsApi.Name(sweep.Settings.Metric)} for a whole epoch");
            }

            await db.SaveChangesAsync(cancellationToken);
            await write.CommitAsync(cancellationToken);
        }

        await PublishAsync(notes);
    }

    private static void End(SweepRecord sweep, RunState state, string? error)
    {
        sweep.State = state;
        sweep.Error = error;
        sweep.Waiting = null;
        sweep.FinishedAt = DateTime.UtcNow;
    }

    /// <summary>Cancels every queued, running or paused trial of a sweep, each saying so (code sweep-cancelled).</summary>
    internal static async Task CancelActiveTrialsAsync(TrainingDb db, JobCommands commands, Caller caller, Guid sweepId, CancellationToken cancellationToken)
    {
        List<Guid> active = await db.Jobs.AsNoTracking().Where(j => j.SweepId == sweepId && (j.State == RunState.Queued || j.State == RunState.Running || j.State == RunState.Paused)).Select(j => j.Id).ToListAsync(cancellationToken);
        foreach (Guid job in active)
        {
            await commands.CancelAsync(caller, job, cancellationToken, new StopNote("sweep-cancelled", "the sweep was cancelled"));
        }
    }
}
