using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using TrainingService.Api.Access;
using TrainingService.Api.Infrastructure;
using TrainingService.Api.Jobs;
using TrainingService.Api.Models;
using TrainingService.Api.Persistence;
using TrainingService.Api.Quotas;
using TrainingService.Contracts.Jobs;
using TrainingService.Contracts.Specs;
using TrainingService.Contracts.Sweeps;
using TrainingService.Contracts.Training;
using TrainingService.Training.Loop;
using TrainingService.Training.Specs;
using TrainingService.Training.Sweeps;

namespace TrainingService.Api.Sweeps;

/// <summary>Bounds of sweeps (configuration section Sweeps).</summary>
public sealed class SweepOptions
{
    public const string MaxActiveKey = "Sweeps:MaxActiveSweepsPerOwner";

    /// <summary>Trials of one sweep.</summary>
    public int MaxTrials { get; set; } = 256;

    /// <summary>Trials of one sweep training at once (also at most Jobs:MaxActiveJobsPerOwner).</summary>
    public int MaxParallelism { get; set; } = 8;

    /// <summary>Running sweeps of one owner.</summary>
    public int MaxActiveSweepsPerOwner { get; set; } = 4;

    /// <summary>How often every node's controller looks for trials to start and sweeps that have ended.</summary>
    public int PollMilliseconds { get; set; } = 500;
}

/// <summary>What the sweep handlers need, as one parameter.</summary>
public sealed record SweepServices(
    TrainingDb Db, Caller Caller, IOptions<SweepOptions> Options, IOptions<JobOptions> Jobs, IOptions<SpecLimits> Limits, SweepSignals Signals);

/// <summary>
/// POST/GET /sweeps: many trial jobs from one base job, each with settings from a search space (grid, seeded random,
/// or asha, which stops the worse trials at rungs of epochs). Trials are ordinary jobs any worker trains; a trial that
/// diverges stops at once. docs/sweeps.md.
/// </summary>
public static class SweepsApi
{
    public const string CreateOperation = "CreateSweep";

    public static IServiceCollection AddSweeps(this IServiceCollection services)
    {
        services.AddOptions<SweepOptions>().BindConfiguration("Sweeps")
            .Validate(o => o.MaxTrials is >= 1 and <= 10_000 && o.MaxParallelism >= 1 && o.MaxActiveSweepsPerOwner >= 1 && o.PollMilliseconds >= 10,
                "Sweeps: MaxTrials 1..10000, MaxParallelism ≥ 1, MaxActiveSweepsPerOwner ≥ 1, PollMilliseconds ≥ 10")
            .ValidateOnStart();
        services.AddSingleton<SweepSignals>();
        services.AddSingleton<SweepRungs>();
        services.AddHostedService<SweepController>();
        return services;
    }

    public static RouteGroupBuilder MapSweeps(this IEndpointRouteBuilder app)
    {
        RouteGroupBuilder group = app.MapGroup("/sweeps").WithTags("Sweeps").WithJsonBodyLimit();
        group.MapPost("/", Create).WithName(CreateOperation).WithSummary("Start a sweep: trial jobs from a base job over a search space")
            .WithDescription("202 with Location /sweeps/{id}. Every trial's settings are fixed and checked now; trials start as jobs, parallelism at a time, "
                + "on whatever workers exist. asha stops trials whose metric at a rung is below the cut of those before them; a trial whose loss "
                + "explodes or becomes NaN stops at once. Each stop is a state event of the trial's job, with its code and reason.");
        group.MapGet("/", List).WithName("ListSweeps").WithSummary("Sweeps, newest first, optionally of one state: { items, next }");
        group.MapGet("/{id:guid}", Get).WithName("GetSweep").WithSummary("A sweep: its settings, counts, best trial and every trial's settings, status and value");
        group.MapPost("/{id:guid}/cancel", Cancel).WithName("CancelSweep").WithSummary("Stop a sweep: no more trials start; active ones are cancelled (code sweep-cancelled)");
        group.MapGet("/{id:guid}/leaderboard", Leaderboard).WithName("GetSweepLeaderboard")
            .WithSummary("Trials ranked by the sweep's metric, with what each reported at asha's rungs");
        group.MapPost("/{id:guid}/best/model", SaveBestModel).WithName("SaveSweepBestModel")
            .WithSummary("Save the best trial's model spec (or trial's) as a model: 201 with Location /models/{id}");
        return group;
    }

    public static async Task<Results<AcceptedAtRoute<SweepView>, ValidationProblem, ProblemHttpResult>> Create(
        CreateSweepRequest request, [AsParameters] SweepServices services, CancellationToken cancellationToken)
    {
        var errors = new Dictionary<string, List<string>>();
        void Error(string key, string message)
        {
            if (!errors.TryGetValue(key, out List<string>? list))
            {
                errors[key] = list = [];
            }

            list.Add(message);
        }

        SweepOptions options = services.Options.Value;
        JobOptions jobs = services.Jobs.Value;
        SpecLimits limits = services.Limits.Value;
        if (request.Base is not { } basis)
        {
            return Problems.Invalid("base", "give the base job: { \"datasetId\": …, \"model\": … or \"modelId\": …, \"hyperparameters\": … }");
        }

        if (basis.Sanity is not null)
        {
            return Problems.Invalid("base.sanity", "a sweep's trials train; run a sanity check as a job of its own (POST /jobs)");
        }

        (DatasetRecord? dataset, string? specJson, ProblemHttpResult? missing) = await JobsApi.ResolveAsync(basis, services.Db, services.Caller, "base.", cancellationToken);
        if (missing is not null)
        {
            return missing;
        }

        if (request.Name is { Length: > 200 })
        {
            Error("name", $"name is at most 200 characters, got {request.Name.Length:N0}");
        }

        SweepStrategy strategy = request.Strategy ?? SweepStrategy.Grid;
        if (request.Asha is not null && strategy != SweepStrategy.Asha)
        {
            Error("asha", $"asha settings go with strategy asha, not {strategy.ToString().ToLowerInvariant()}");
        }

        bool aroundTest = request.SearchSpace?.Any(d => d?.LogUniform?.Around is not null) == true;
        bool fixedFromTest = request.LearningRate is not null;
        if (request.LearningRate is { } rate && rate != SearchSpace.FromRangeTest)
        {
            Error("learningRate", $"learningRate takes \"{SearchSpace.FromRangeTest}\" (every trial's rate from a range test run first), got \"{rate}\"; a number goes in base.hyperparameters.learningRate");
        }
        else if (fixedFromTest && request.SearchSpace?.Any(d => d?.Path == "hyperparameters.learningRate") == true)
        {
            Error("learningRate", $"the learning rate is either the range test's suggestion or a search dimension; for a range around the suggestion give that dimension logUniform {{ \"around\": \"{SearchSpace.FromRangeTest}\" }}");
        }

        SanityOptions? rangeTest = null;
        if (fixedFromTest || aroundTest)
        {
            var defaults = new SanityOptions { Check = SanityCheck.LearningRateRangeTest };
            rangeTest = defaults with
            {
                MinLearningRate = request.RangeTest?.MinLearningRate ?? defaults.MinLearningRate,
                MaxLearningRate = request.RangeTest?.MaxLearningRate ?? defaults.MaxLearningRate,
                Steps = request.RangeTest?.Steps ?? defaults.Steps,
            };
            foreach ((string field, string message) in TrainingPlan.ValidateSanity(rangeTest))
            {
                Error("rangeTest." + field["sanity.".Length..], message);
            }
        }
        else if (request.RangeTest is not null)
        {
            Error("rangeTest", $"a range test runs only for learningRate \"{SearchSpace.FromRangeTest}\" or a logUniform around it");
        }

        Hyperparameters hp = basis.Hyperparameters ?? new Hyperparameters();
        MonitoringOptions monitoring = basis.Monitoring ?? new MonitoringOptions();
        if (!monitoring.Diagnostics.Enabled)
        {
            Error("base.monitoring.diagnostics.enabled", "a sweep stops trials that diverge, which needs diagnostics: leave it enabled");
        }

        AshaOptions? asha = null;
        Asha? rule = null;
        if (strategy == SweepStrategy.Asha)
        {
            AshaOptions given = request.Asha ?? new AshaOptions();
            asha = new AshaOptions
            {
                MinEpochs = given.MinEpochs ?? 1, ReductionFactor = given.ReductionFactor ?? 3, MaxEpochs = given.MaxEpochs ?? hp.Epochs, Sampler = given.Sampler ?? "random",
                Mode = given.Mode ?? AshaModes.Promotion,
            };
            if (asha.MaxEpochs is < 1 or > 10_000)
            {
                Error("asha.maxEpochs", $"maxEpochs must be from 1 to 10000, got {asha.MaxEpochs}");
            }
            else if (asha.MinEpochs < 1 || asha.MinEpochs >= asha.MaxEpochs)
            {
                Error("asha.minEpochs", $"minEpochs must be at least 1 and below maxEpochs ({asha.MaxEpochs}) so there is a rung, got {asha.MinEpochs}");
            }

            if (asha.ReductionFactor is < 2 or > 16)
            {
                Error("asha.reductionFactor", $"reductionFactor must be from 2 to 16, got {asha.ReductionFactor}");
            }

            if (asha.Sampler is not ("random" or "grid"))
            {
                Error("asha.sampler", $"sampler is random or grid, got \"{asha.Sampler}\"");
            }

            if (asha.Mode is not (AshaModes.Promotion or AshaModes.Stopping))
            {
                Error("asha.mode", $"mode is promotion or stopping, got \"{asha.Mode}\"");
            }

            if (errors.Count == 0)
            {
                rule = Asha.Of(asha)!;
                hp = hp with { Epochs = asha.MaxEpochs.Value }; // every trial is planned for the whole; rungs cut it short
            }
        }

        using JsonDocument document = JsonDocument.Parse(specJson!);
        JsonElement model = document.RootElement;
        SpecAnalysis analysis = SpecReader.ReadAndAnalyze(model, limits);
        var shape = dataset!.Shape;
        (TrainingPlan? basePlan, IReadOnlyList<SpecIssue> baseIssues) = TrainingPlan.Create(analysis, shape, hp, monitoring, null, jobs.JobThreads);
        if (basePlan is null)
        {
            foreach (SpecIssue issue in limits.Bounded(baseIssues))
            {
                Error("base." + (issue.Field.StartsWith("hyperparameters", StringComparison.Ordinal) || issue.Field.StartsWith("monitoring", StringComparison.Ordinal) ? issue.Field : "model." + issue.Field), issue.Message);
            }

            return Problems.Invalid(Arrays(errors), "The sweep cannot be run");
        }

        if (rangeTest is not null && errors.Count == 0 && JobsApi.RefuseAdmission(TrainingPlan.Require(analysis, shape, hp, monitoring, rangeTest, jobs.JobThreads), jobs) is { } testRefused)
        {
            return testRefused;
        }

        bool gridSampler = strategy == SweepStrategy.Asha && asha?.Sampler == "grid";
        List<SearchField> fields = SearchSpace.Check(request.SearchSpace, analysis, strategy == SweepStrategy.Grid || gridSampler, Error);
        int trials = 0;
        if (fields.Count == request.SearchSpace?.Count && errors.Count == 0)
        {
            long product = SearchSpace.GridSize(request.SearchSpace);
            if (strategy == SweepStrategy.Grid || gridSampler)
            {
                if (product > options.MaxTrials)
                {
                    Error("searchSpace", $"the grid has {product:N0} combinations, over the limit of {options.MaxTrials} trials (configuration Sweeps:MaxTrials)");
                }
                else if (request.Trials is { } t && t != product)
                {
                    Error("trials", $"a grid runs each of its {product} combinations once: leave trials out or give {product}");
                }

                trials = (int)Math.Min(product, options.MaxTrials);
            }
            else if (request.Trials is not { } t || t < 1 || t > options.MaxTrials)
            {
                Error("trials", $"give how many trials to draw, 1 to {options.MaxTrials} (configuration Sweeps:MaxTrials), got {request.Trials?.ToString(CultureInfo.InvariantCulture) ?? "none"}");
            }
            else
            {
                trials = t;
            }
        }

        int maxParallelism = Math.Min(options.MaxParallelism, jobs.MaxActiveJobsPerOwner);
        int parallelism = request.Parallelism ?? Math.Min(2, maxParallelism);
        if (parallelism < 1 || parallelism > maxParallelism)
        {
            Error("parallelism", $"parallelism must be from 1 to {maxParallelism} (Sweeps:MaxParallelism and Jobs:MaxActiveJobsPerOwner), got {parallelism}");
        }

        SweepMetricName metric = request.Metric?.Name ?? SweepMetricName.ValidationAccuracy;
        MetricGoal goal = request.Metric?.Goal ?? (metric is SweepMetricName.ValidationAccuracy or SweepMetricName.TrainAccuracy ? MetricGoal.Maximize : MetricGoal.Minimize);
        bool validates = basePlan.ValidationCount > 0 || basePlan.ValidateOnTest;
        if (metric is SweepMetricName.ValidationAccuracy or SweepMetricName.ValidationLoss && !validates)
        {
            Error("metric.name", $"{Name(metric)} needs validation, and the base has none (no test split and hyperparameters.validationFraction 0): choose trainAccuracy or trainLoss, or hold out data");
        }

        if (errors.Count > 0)
        {
            return Problems.Invalid(Arrays(errors), "The sweep cannot be run");
        }

        int seed = request.Seed ?? 1;
        // With a range test to come, the trials are checked at the base's learning rate (the suggestion's range around
        // it); their rates are filled in once the test has passed, and checked again then.
        List<Dictionary<string, JsonNode?>> settings = SearchSpace.Trials(request.SearchSpace!, strategy, gridSampler, trials, seed, rangeTest is null ? null : hp.LearningRate);
        for (int t = 0; t < settings.Count; t++)
        {
            (TrainingPlan? plan, string? error, string? field) = SearchSpace.Plan(t, model, hp, monitoring, fields, settings[t], shape, limits, jobs.JobThreads);
            if (plan is null)
            {
                int dimension = fields.FindIndex(f => f.Path == field);
                return Problems.Invalid(dimension >= 0 ? $"searchSpace[{dimension}]" : "searchSpace", error!, "A trial of the sweep cannot be trained");
            }

            if (validates != (plan.ValidationCount > 0 || plan.ValidateOnTest) && metric is SweepMetricName.ValidationAccuracy or SweepMetricName.ValidationLoss)
            {
                return Problems.Invalid("searchSpace", $"trial {t} ({SearchSpace.Describe(settings[t])}) has no validation, which {Name(metric)} needs");
            }

            if (JobsApi.RefuseAdmission(plan, jobs) is { } refused)
            {
                return refused;
            }
        }

        var sweep = new SweepRecord
        {
            Id = Guid.CreateVersion7(),
            Owner = services.Caller.Owner,
            Name = request.Name?.Trim(),
            State = RunState.Running,
            Settings = new SweepSettings
            {
                Name = request.Name?.Trim(), DatasetId = dataset.Id, ModelId = basis.ModelId, Model = model.Clone(), Hyperparameters = hp, Monitoring = monitoring,
                SearchSpace = request.SearchSpace!, Strategy = strategy, Trials = settings.Count, Parallelism = parallelism, Seed = seed,
                Metric = metric, Goal = goal, Asha = asha, Rungs = rule?.Rungs, RangeTest = rangeTest, LearningRateFromRangeTest = fixedFromTest,
            },
            TrialParams = JsonSerializer.Serialize(
                rangeTest is null ? settings : SearchSpace.Trials(request.SearchSpace!, strategy, gridSampler, trials, seed), JsonSerializerOptions.Web),
            DatasetId = dataset.Id,
            Trials = settings.Count,
            Parallelism = parallelism,
            CreatedAt = DateTime.UtcNow,
        };
        await using (var write = await OwnerQuotas.BeginWriteAsync(services.Db, cancellationToken))
        {
            int running = await services.Db.Sweeps.CountAsync(s => s.Owner == sweep.Owner && s.State == RunState.Running, cancellationToken);
            if (running >= options.MaxActiveSweepsPerOwner)
            {
                return TypedResults.Problem(
                    $"You have {running} running sweeps, the limit (configuration {SweepOptions.MaxActiveKey}); start this one when one has ended, or cancel one.",
                    statusCode: StatusCodes.Status429TooManyRequests, title: "Too many running sweeps",
                    extensions: new Dictionary<string, object?> { ["limit"] = SweepOptions.MaxActiveKey });
            }

            if (!await services.Db.Datasets.AnyAsync(d => d.Id == dataset.Id, cancellationToken))
            {
                return Problems.NotFound("base.datasetId", $"There is no dataset {dataset.Id}."); // deleted since it was read
            }

            services.Db.Sweeps.Add(sweep);
            await services.Db.SaveChangesAsync(cancellationToken);
            await write.CommitAsync(cancellationToken);
        }

        services.Signals.Wake();
        return TypedResults.AcceptedAtRoute(SweepViews.View(sweep, []), "GetSweep", new { id = sweep.Id });
    }

    public static async Task<Results<Ok<Page<SweepSummary>>, ProblemHttpResult>> List(
        TrainingDb db, Caller caller, RunState? state, Guid? after = null, int limit = Paging.DefaultLimit, CancellationToken cancellationToken = default)
    {
        if (Paging.Refuse(limit) is { } refused)
        {
            return refused;
        }

        IQueryable<SweepRecord> sweeps = db.Sweeps.AsNoTracking().VisibleTo(caller);
        if (state is not null)
        {
            sweeps = sweeps.Where(s => s.State == state);
        }

        if (after is Guid last)
        {
            DateTime? at = await db.Sweeps.VisibleTo(caller).Where(s => s.Id == last).Select(s => (DateTime?)s.CreatedAt).FirstOrDefaultAsync(cancellationToken);
            if (at is null)
            {
                return Paging.NoSuchCursor(last, "sweep");
            }

            sweeps = sweeps.Where(s => s.CreatedAt < at || (s.CreatedAt == at && s.Id.CompareTo(last) < 0));
        }

        List<SweepRecord> page = await sweeps.OrderByDescending(s => s.CreatedAt).ThenByDescending(s => s.Id).Take(limit + 1).ToListAsync(cancellationToken);
        Guid[] ids = [.. page.Select(s => s.Id)];
        ILookup<Guid, TrialRow> rows = (await SweepViews.RowsAsync(db, ids, cancellationToken)).ToLookup(r => r.SweepId);
        return TypedResults.Ok(Paging.Of(page.Select(s => (SweepSummary)SweepViews.Summary(s, [.. rows[s.Id]])).ToList(), limit, s => s.Id));
    }

    public static async Task<Results<Ok<SweepView>, ProblemHttpResult>> Get(Guid id, TrainingDb db, Caller caller, CancellationToken cancellationToken)
    {
        SweepRecord? sweep = await db.Sweeps.AsNoTracking().VisibleTo(caller).FirstOrDefaultAsync(s => s.Id == id, cancellationToken);
        return sweep is null
            ? NoSuchSweep(id)
            : TypedResults.Ok(SweepViews.View(sweep, await SweepViews.RowsAsync(db, [id], cancellationToken)));
    }

    /// <summary>Running → Cancelled under the lock trial starts take, so no trial starts after it; then its active trials are cancelled.</summary>
    public static async Task<Results<Accepted<SweepView>, ProblemHttpResult>> Cancel(
        Guid id, TrainingDb db, Caller caller, JobCommands commands, CancellationToken cancellationToken)
    {
        await using (var write = await OwnerQuotas.BeginWriteAsync(db, cancellationToken))
        {
            SweepRecord? sweep = await db.Sweeps.VisibleTo(caller).FirstOrDefaultAsync(s => s.Id == id, cancellationToken);
            if (sweep is null)
            {
                return NoSuchSweep(id);
            }

            if (sweep.State != RunState.Running)
            {
                return Problems.Conflict($"Sweep {id} has already ended ({sweep.State}); there is nothing to cancel.", "The sweep has ended");
            }

            sweep.State = RunState.Cancelled;
            sweep.FinishedAt = DateTime.UtcNow;
            sweep.Waiting = null;
            await db.SaveChangesAsync(cancellationToken);
            await write.CommitAsync(cancellationToken);
        }

        await SweepController.CancelActiveTrialsAsync(db, commands, caller, id, cancellationToken);
        SweepRecord ended = await db.Sweeps.AsNoTracking().FirstAsync(s => s.Id == id, cancellationToken);
        return TypedResults.Accepted($"/sweeps/{id}", SweepViews.View(ended, await SweepViews.RowsAsync(db, [id], cancellationToken)));
    }

    public static async Task<Results<Ok<SweepLeaderboard>, ProblemHttpResult>> Leaderboard(Guid id, TrainingDb db, Caller caller, CancellationToken cancellationToken)
    {
        SweepRecord? sweep = await db.Sweeps.AsNoTracking().VisibleTo(caller).FirstOrDefaultAsync(s => s.Id == id, cancellationToken);
        if (sweep is null)
        {
            return NoSuchSweep(id);
        }

        List<SweepRungRecord> rungs = await db.SweepRungs.AsNoTracking().Where(r => r.SweepId == id).OrderBy(r => r.Epoch).ToListAsync(cancellationToken);
        IReadOnlyList<SweepTrial> trials = SweepViews.Trials(sweep, await SweepViews.RowsAsync(db, [id], cancellationToken));
        ILookup<int, SweepRungRecord> byTrial = rungs.ToLookup(r => r.Trial);
        RankedTrial[] ranked = [.. SweepViews.Rank(trials, sweep.Settings.Goal).Select((t, i) => new RankedTrial
        {
            Rank = i + 1,
            Trial = t,
            Rungs = [.. byTrial[t.Index].Select(r => new RungReport(r.Epoch, r.Value, r.Cutoff, r.Continued, r.Earlier, r.Waiting && t.Status == TrialStatus.Waiting))],
        })];
        return TypedResults.Ok(new SweepLeaderboard(sweep.Settings.Metric, sweep.Settings.Goal, ranked));
    }

    /// <summary>The best trial's spec (or a named trial's) saved as the caller's model, through POST /models' own checks.</summary>
    public static async Task<Results<CreatedAtRoute<ModelView>, ValidationProblem, ProblemHttpResult>> SaveBestModel(
        Guid id, SaveTrialModelRequest request, TrainingDb db, Caller caller, IOptions<SpecLimits> limits, CancellationToken cancellationToken)
    {
        SweepRecord? sweep = await db.Sweeps.AsNoTracking().VisibleTo(caller).FirstOrDefaultAsync(s => s.Id == id, cancellationToken);
        if (sweep is null)
        {
            return NoSuchSweep(id);
        }

        IReadOnlyList<SweepTrial> trials = SweepViews.Trials(sweep, await SweepViews.RowsAsync(db, [id], cancellationToken));
        SweepTrial? trial;
        if (request.Trial is int index)
        {
            if (index < 0 || index >= trials.Count)
            {
                return Problems.Invalid("trial", $"the sweep has trials 0 to {trials.Count - 1}, got {index}");
            }

            trial = trials[index];
        }
        else
        {
            trial = SweepViews.Rank(trials, sweep.Settings.Goal).FirstOrDefault(t => t.Value is not null);
            if (trial is null)
            {
                return Problems.Conflict($"No trial of sweep {id} has reported {Name(sweep.Settings.Metric)} yet: there is no best trial.", "No best trial yet");
            }
        }

        // The trial's spec from its settings, as its job was made (its job may have been deleted since).
        List<SearchField> fields = SweepController.Fields(sweep.Settings, limits.Value);
        (JsonElement spec, _, _) = SearchSpace.Apply(sweep.Settings.Model, sweep.Settings.Hyperparameters, sweep.Settings.Monitoring, fields, trial.Params);
        return (await ModelsApi.Create(new CreateModelRequest { Name = request.Name ?? "", Spec = spec }, db, limits, caller, cancellationToken)).Result switch
        {
            CreatedAtRoute<ModelView> created => created,
            ValidationProblem invalid => invalid,
            var other => throw new InvalidOperationException($"POST /models answered {other?.GetType().Name}"),
        };
    }

    internal static string Name(SweepMetricName metric) => JsonSerializer.Serialize(metric).Trim('"');

    private static ProblemHttpResult NoSuchSweep(Guid id) => Problems.NotFound("id", $"There is no sweep {id}.");

    private static Dictionary<string, string[]> Arrays(Dictionary<string, List<string>> errors) => errors.ToDictionary(e => e.Key, e => e.Value.ToArray());
}
