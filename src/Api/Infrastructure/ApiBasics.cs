using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.AspNetCore.ResponseCompression;

namespace TrainingService.Api.Infrastructure;

public static class ApiBasics
{
    /// <summary>JSON as the API speaks it: camelCase, enums as strings, no nulls left out (a field is always there).</summary>
    public static void Configure(JsonSerializerOptions options)
    {
        options.PropertyNamingPolicy = JsonNamingPolicy.CamelCase;
        options.Converters.Add(new JsonStringEnumConverter()); // RunState as in the vocabulary (Running); option enums name their members (sgd)
        options.NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals;
        // A misspelt field is an error, not a default taken in silence ("spec" for "model" would train the default model).
        options.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
    }

    public static IServiceCollection AddApiBasics(this IServiceCollection services)
    {
        services.Configure<JsonOptions>(o => Configure(o.SerializerOptions));
        services.AddProblemDetails();
        // Binding failures (a malformed body, a wrong enum) reach BadRequestExceptionHandler, which names the field.
        services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        services.AddExceptionHandler<BadRequestExceptionHandler>();
        services.AddHealthChecks();
        // JSON histories run to megabytes (100,000 steps ≈ 33 MB with layer statistics) and compress ~6×: fastest
        // gzip/Brotli costs the server little and saves a remote dashboard most of its loading time. Over HTTPS too: no
        // response mixes a secret with reflected input (the BREACH condition).
        services.AddResponseCompression(o =>
        {
            o.EnableForHttps = true;
            o.Providers.Add<BrotliCompressionProvider>();
            o.Providers.Add<GzipCompressionProvider>();
            o.MimeTypes = ["application/json", "application/problem+json", "text/javascript", "text/css", "text/html", "image/svg+xml"];
        });
        services.Configure<BrotliCompressionProviderOptions>(o => o.Level = System.IO.Compression.CompressionLevel.Fastest);
        services.Configure<GzipCompressionProviderOptions>(o => o.Level = System.IO.Compression.CompressionLevel.Fastest);
        return services;
    }

    public static WebApplication MapHealth(this WebApplication app)
    {
        app.MapHealthChecks("/health/live").WithTags("Health");
        app.MapHealthChecks("/health/ready").WithTags("Health");
        return app;
    }
}

/// <summary>Requests the framework could not bind (malformed JSON, wrong content type, too large) become problem details, not 500s.</summary>
internal sealed partial class BadRequestExceptionHandler(IProblemDetailsService problemDetails) : IExceptionHandler
{
    [GeneratedRegex("""^Failed to bind parameter "[^"]* (?<name>\w+)" from""")]
    private static partial Regex BindingFailure();

    [GeneratedRegex("""could not be mapped to any \.NET member contained in type '(?<type>[^']+)'""")]
    private static partial Regex UnmappedMember();

    public async ValueTask<bool> TryHandleAsync(HttpContext context, Exception exception, CancellationToken cancellationToken)
    {
        if (exception is not BadHttpRequestException bad)
        {
            return false;
        }

        context.Response.StatusCode = bad.StatusCode;
        var problem = new ProblemDetailsContext
        {
            HttpContext = context,
            Exception = exception,
            ProblemDetails = { Status = bad.StatusCode, Title = "The request could not be read", Detail = bad.Message },
        };
        string? field = null;
        if (bad.InnerException is JsonException json)
        {
            field = Problems.PathOf(json);
            problem.ProblemDetails.Detail = UnmappedMember().Match(json.Message) is { Success: true } unmapped
                ? $"{field}: unknown field{Fields(unmapped.Groups["type"].Value)}"
                : $"{field}: {json.Message.Split(" Path:")[0]}";
        }
        else if (BindingFailure().Match(bad.Message) is { Success: true } failure)
        {
            field = failure.Groups["name"].Value; // a route or query value of the wrong type
        }

        if (field is not null)
        {
            problem.ProblemDetails.Extensions["field"] = field;
            problem.ProblemDetails.Extensions["errors"] = new Dictionary<string, string[]> { [field] = [problem.ProblemDetails.Detail] };
        }

        return await problemDetails.TryWriteAsync(problem);
    }

    /// <summary>"; the fields are a, b, c" for a request type named by System.Text.Json, or nothing when it cannot be found.</summary>
    private static string Fields(string typeName)
    {
        Type? type = typeof(Contracts.Jobs.CreateJobRequest).Assembly.GetType(typeName) ?? typeof(BadRequestExceptionHandler).Assembly.GetType(typeName);
        return type is null
            ? ""
            : "; the fields are " + string.Join(", ", type.GetProperties().Where(p => p.CanWrite).Select(p => JsonNamingPolicy.CamelCase.ConvertName(p.Name)));
    }
}
