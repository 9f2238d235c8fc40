using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using TrainingService.Contracts.Specs;
using TrainingService.Training.Specs;

namespace TrainingService.Api.Models;

public static class ModelsApi
{
    public static IServiceCollection AddSpecs(this IServiceCollection services)
    {
        services.AddOptions<SpecLimits>().BindConfiguration("Specs").Validate(
            l => l.MaxParameters > 0 && l.MaxInputChannels > 0 && l.MaxInputSide > 0 && l.MaxLayers > 0,
            "Specs limits must be positive").ValidateOnStart();
        return services;
    }

    public static RouteGroupBuilder MapModels(this IEndpointRouteBuilder app)
    {
        RouteGroupBuilder group = app.MapGroup("/models").WithTags("Models");
        group.MapPost("/validate", Validate)
            .WithName("ValidateModel")
            .WithSummary("Check a model spec and infer its per-layer table")
            .WithDescription("Returns 200 with valid = true and, per layer, the output shape, parameters, multiply-adds, receptive field and jump; "
                + "or valid = false with errors pinned to their layer and field. A body that is not a JSON model spec gets 400.")
            .Accepts<ModelSpec>("application/json");
        return group;
    }

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
            return TypedResults.Ok(SpecReader.ReadAndAnalyze(document!.RootElement, limits.Value).Result);
        }
    }
}
