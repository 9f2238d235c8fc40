using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using TrainingService.Api.Access;
using TrainingService.Api.Infrastructure;
using TrainingService.Api.Persistence;
using TrainingService.Contracts.Jobs;
using TrainingService.Contracts.Specs;
using TrainingService.Training.Specs;

namespace TrainingService.Api.Models;

public static class ModelsApi
{
    public static IServiceCollection AddSpecs(this IServiceCollection services)
    {
        services.AddOptions<SpecLimits>().BindConfiguration("Specs").Validate(
            l => l.MaxParameters > 0 && l.MaxInputChannels > 0 && l.MaxInputSide > 0 && l.MaxLayers > 0
                && l.MaxNameLength > 0 && l.MaxLayerNameLength > 0 && l.MaxErrors > 0,
            "Specs limits must be positive").ValidateOnStart();
        return services;
    }

    public static RouteGroupBuilder MapModels(this IEndpointRouteBuilder app)
    {
        RouteGroupBuilder group = app.MapGroup("/models").WithTags("Models").WithJsonBodyLimit();
        group.MapPost("/validate", Validate)
            .WithName("ValidateModel")
            .WithSummary("Check a model spec and infer its per-layer table")
            .WithDescription("Returns 200 with valid = true and, per layer, the output shape, parameters, multiply-adds, receptive field and jump; "
                + "or valid = false with errors pinned to their layer and field. A body that is not a JSON model spec gets 400.")
            .Accepts<ModelSpec>("application/json");
        group.MapPost("/", Create).WithName("CreateModel").WithSummary("Save a valid model spec under a name");
        group.MapGet("/", List).WithName("ListModels")
            .WithSummary("Saved models, newest first, without their specs: { items, next }; pass next as after for the following page");
        group.MapGet("/{id:guid}", Get).WithName("GetModel").WithSummary("A saved model spec");
        group.MapGet("/presets", Presets).WithName("ListModelPresets")
            .WithSummary("Well-known model specs (tiny CNN, LeNet-5, small VGG, AlexNet-style, ResNet-8, mini inception) sized to an input shape and class count");
        return group;
    }

    /// <summary>Saves a spec that validates; 400 with its errors otherwise.</summary>
    public static async Task<Results<CreatedAtRoute<ModelView>, ValidationProblem>> Create(
        CreateModelRequest request, TrainingDb db, IOptions<SpecLimits> limits, Caller caller, CancellationToken cancellationToken)
    {
        SpecAnalysis analysis = SpecReader.ReadAndAnalyze(request.Spec, limits.Value);
        var errors = limits.Value.Bounded(analysis.Result.Errors)
            .GroupBy(e => e.Field.Length == 0 ? "spec" : $"spec.{e.Field}")
            .ToDictionary(g => g.Key, g => g.Select(e => e.Message).ToArray());
        int maxName = limits.Value.MaxNameLength;
        if (string.IsNullOrWhiteSpace(request.Name) || request.Name.Length > maxName)
        {
            errors["name"] = [string.Create(CultureInfo.InvariantCulture,
                $"name is required, at most {maxName} characters (configuration Specs:MaxNameLength), got {request.Name?.Length ?? 0:N0}")];
        }

        if (errors.Count > 0)
        {
            return Problems.Invalid(errors, "The model cannot be saved");
        }

        ModelSpec spec = SpecReader.Read(request.Spec, limits.Value).Spec!;
        var model = new ModelRecord
        {
            Id = Guid.CreateVersion7(),
            Owner = caller.Owner,
            Name = request.Name!.Trim(),
            Spec = JsonSerializer.Serialize(spec, JsonSerializerOptions.Web),
            Parameters = analysis.Result.TotalParameters,
            CreatedAt = DateTime.UtcNow,
        };
        db.Models.Add(model);
        await db.SaveChangesAsync(cancellationToken);
        return TypedResults.CreatedAtRoute(View(model), "GetModel", new { id = model.Id });
    }

    /// <summary>Every preset for channels × height × width inputs and the class count; 400 naming the field when out of range.</summary>
    public static Results<Ok<ModelPreset[]>, ValidationProblem> Presets(
        IOptions<SpecLimits> limits, int channels = 1, int height = 28, int width = 28, int classes = 10)
    {
        var errors = new Dictionary<string, string[]>();
        if (channels < 1 || channels > limits.Value.MaxInputChannels)
        {
            errors["channels"] = [$"channels must be 1..{limits.Value.MaxInputChannels}, got {channels}"];
        }

        foreach ((string field, int side) in new[] { ("height", height), ("width", width) })
        {
            if (side < 16 || side > limits.Value.MaxInputSide)
            {
                errors[field] = [$"{field} must be 16..{limits.Value.MaxInputSide} (the presets pool twice by 2, then need at least 4 pixels), got {side}"];
            }
        }

        if (classes < 2 || classes > 100_000)
        {
            errors["classes"] = [$"classes must be 2..100000, got {classes}"];
        }

        return errors.Count > 0
            ? Problems.Invalid(errors, "No presets for this input")
            : TypedResults.Ok(ModelPresets.All(channels, height, width, classes).ToArray());
    }

    /// <summary>A page of saved models, newest first (keyset on creation time, then id).</summary>
    public static async Task<Results<Ok<Page<ModelSummary>>, ProblemHttpResult>> List(
        TrainingDb db, Caller caller, Guid? after = null, int limit = Paging.DefaultLimit, CancellationToken cancellationToken = default)
    {
        if (Paging.Refuse(limit) is { } refused)
        {
            return refused;
        }

        IQueryable<ModelRecord> models = db.Models.AsNoTracking().VisibleTo(caller);
        if (after is Guid last)
        {
            DateTime? at = await models.Where(m => m.Id == last).Select(m => (DateTime?)m.CreatedAt).FirstOrDefaultAsync(cancellationToken);
            if (at is null)
            {
                return Paging.NoSuchCursor(last, "model");
            }

            models = models.Where(m => m.CreatedAt < at || (m.CreatedAt == at && m.Id.CompareTo(last) < 0));
        }

        List<ModelSummary> page = await models.OrderByDescending(m => m.CreatedAt).ThenByDescending(m => m.Id).Take(limit + 1)
            .Select(m => new ModelSummary(m.Id, m.Name, m.Parameters, m.CreatedAt)).ToListAsync(cancellationToken);
        return TypedResults.Ok(Paging.Of(page, limit, m => m.Id));
    }

    public static async Task<Results<Ok<ModelView>, ProblemHttpResult>> Get(Guid id, TrainingDb db, Caller caller, CancellationToken cancellationToken) =>
        await db.Models.AsNoTracking().VisibleTo(caller).FirstOrDefaultAsync(m => m.Id == id, cancellationToken) is { } model
            ? TypedResults.Ok(View(model))
            : Problems.NotFound("id", $"There is no model {id}.");

    private static ModelView View(ModelRecord m) =>
        new(m.Id, m.Name, m.Parameters, JsonSerializer.Deserialize<ModelSpec>(m.Spec, JsonSerializerOptions.Web)!, m.CreatedAt);

    /// <summary>Validates a model spec.</summary>
    public static async Task<Results<Ok<ModelValidationResult>, ProblemHttpResult>> Validate(
        HttpRequest request, IOptions<SpecLimits> limits, CancellationToken cancellationToken)
    {
        (JsonDocument? document, ProblemHttpResult? problem) = await SpecBody.ReadAsync(request, cancellationToken);
        if (problem is not null)
        {
            return problem;
        }

        using (document)
        {
            ModelValidationResult result = SpecReader.ReadAndAnalyze(document!.RootElement, limits.Value).Result;
            return TypedResults.Ok(result with { Errors = limits.Value.Bounded(result.Errors) });
        }
    }
}
