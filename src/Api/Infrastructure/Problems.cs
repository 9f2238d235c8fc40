using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;

namespace TrainingService.Api.Infrastructure;

/// <summary>
/// Every problem details (RFC 7807) the endpoints return. A problem about a field names it in errors, keyed by its path
/// relative to the request: the JSON path in a body (layers[3].kernel), the parameter's name in a query or route, the
/// field's name in a form; and also as field, for clients that show one.
/// </summary>
internal static class Problems
{
    public const string InvalidTitle = "The request is invalid";

    /// <summary>400 with one message per field.</summary>
    public static ValidationProblem Invalid(IDictionary<string, string[]> errors, string title = InvalidTitle) =>
        TypedResults.ValidationProblem(errors, title: title);

    /// <summary>400 naming one field.</summary>
    public static ProblemHttpResult Invalid(string field, string detail, string title = InvalidTitle) =>
        About(StatusCodes.Status400BadRequest, field, detail, title);

    /// <summary>A problem with one field: its path keys errors and is the field; <paramref name="extensions"/> adds more (a limit's key).</summary>
    public static ProblemHttpResult About(
        int status, string field, string detail, string title, IEnumerable<KeyValuePair<string, object?>>? extensions = null) => TypedResults.Problem(
        detail, statusCode: status, title: title, extensions: new Dictionary<string, object?>(extensions ?? [])
        {
            ["field"] = field,
            ["errors"] = new Dictionary<string, string[]> { [field] = [detail] },
        });

    /// <summary>A problem with the request as a whole (an unsupported media type, a body over the limit).</summary>
    public static ProblemHttpResult Request(int status, string detail, string title) =>
        TypedResults.Problem(detail, statusCode: status, title: title);

    /// <summary>404 for a value that names nothing.</summary>
    public static ProblemHttpResult NotFound(string field, string detail, string title = "Not found") =>
        About(StatusCodes.Status404NotFound, field, detail, title);

    /// <summary>404 for a job id that names none.</summary>
    public static ProblemHttpResult NoSuchJob(Guid id) => NotFound("id", $"There is no job {id}.");

    /// <summary>409: the request is well formed but the state of things refuses it.</summary>
    public static ProblemHttpResult Conflict(string detail, string title = "Conflict", IDictionary<string, object?>? extensions = null) =>
        TypedResults.Problem(detail, statusCode: StatusCodes.Status409Conflict, title: title, extensions: extensions);

    /// <summary>The request-relative path of a JSON reader error: "$.images[1]" is images[1]; the whole body is body.</summary>
    public static string PathOf(JsonException exception) =>
        exception.Path is { Length: > 2 } path && path.StartsWith("$.", StringComparison.Ordinal)
            ? path.Length <= 202 ? path[2..] : path[2..202] + "…" // a property name as long as the body is not echoed whole
            : "body";
}
