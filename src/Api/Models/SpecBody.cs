using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using TrainingService.Api.Infrastructure;

namespace TrainingService.Api.Models;

/// <summary>Reads a request body that must be a JSON model spec, with a precise 400 when it is not.</summary>
internal static class SpecBody
{
    public static async Task<(JsonDocument? Document, ProblemHttpResult? Problem)> ReadAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        if (!request.HasJsonContentType())
        {
            return (null, Problems.Request(
                StatusCodes.Status415UnsupportedMediaType, $"Content-Type is \"{request.ContentType}\"; send application/json.", "A model spec must be sent as JSON"));
        }

        JsonDocument document;
        try
        {
            document = await JsonDocument.ParseAsync(request.Body, cancellationToken: cancellationToken);
        }
        catch (JsonException ex)
        {
            return (null, NotASpec($"The body is not valid JSON: {ex.Message}"));
        }

        JsonElement root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object || !(root.TryGetProperty("input", out _) || root.TryGetProperty("layers", out _)))
        {
            string detail = root.ValueKind == JsonValueKind.Object
                ? "The body is a JSON object without \"input\" or \"layers\": not a model spec."
                : $"The body is a JSON {root.ValueKind.ToString().ToLowerInvariant()}, not a model spec object.";
            document.Dispose();
            return (null, NotASpec(detail));
        }

        return (document, null);
    }

    private static ProblemHttpResult NotASpec(string detail) => Problems.Invalid("body", detail, "The body is not a model spec");
}
