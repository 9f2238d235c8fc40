using Microsoft.AspNetCore.Http.HttpResults;

namespace TrainingService.Api.Infrastructure;

/// <summary>Problem details naming the field and the reason.</summary>
internal static class Problems
{
    public static ProblemHttpResult NotFound(string field, string detail) =>
        TypedResults.Problem(detail, statusCode: StatusCodes.Status404NotFound, title: "Not found", extensions: new Dictionary<string, object?> { ["field"] = field });

    public static ProblemHttpResult Conflict(string detail) =>
        TypedResults.Problem(detail, statusCode: StatusCodes.Status409Conflict, title: "Conflict");
}
