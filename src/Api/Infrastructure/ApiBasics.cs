using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;
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
        services.AddHealthChecks().AddCheck<MemoryHealthCheck>("memory");
        // JSON histories run to megabytes (100,000 steps ≈ 33 MB with layer statistics) and compress ~6×: fastest
        // gzip/Brotli costs the server little and saves a remote dashboard most of its loading time. Over HTTPS too: no
        // response mixes a secret with reflected input (the BREACH condition).
        services.AddResponseCompression(o =>
        {
            o.EnableForHttps = true;
            o.Providers.Add<BrotliCompressionProvider>();
            o.Providers.Add<GzipCompressionProvider>();
            o.MimeTypes = ["application/json", "application/problem+json", "text/javascript", "text/css", "text/html", "image/svg+xml", "text/csv", "application/jsonl"];
        });
        services.Configure<BrotliCompressionProviderOptions>(o => o.Level = System.IO.Compression.CompressionLevel.Fastest);
        services.Configure<GzipCompressionProviderOptions>(o => o.Level = System.IO.Compression.CompressionLevel.Fastest);
        return services;
    }

    public static WebApplication MapHealth(this WebApplication app)
    {
        // Liveness is "the process answers": no check runs (a database or Redis outage must not get every node restarted,
        // and a probe should not cost a query).
        app.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = _ => false }).WithTags("Health").AllowAnonymous();
        // Degraded (a storage fault being waited out) is still 200: the API serves; the body says which part and why.
        app.MapHealthChecks("/health/ready", new HealthCheckOptions { ResponseWriter = WriteHealthAsync }).WithTags("Health").AllowAnonymous();
        return app;
    }

    private static Task WriteHealthAsync(HttpContext context, HealthReport report) =>
        context.Response.WriteAsJsonAsync(new
        {
            status = report.Status.ToString(),
            checks = report.Entries.ToDictionary(e => e.Key, e => new { status = e.Value.Status.ToString(), description = e.Value.Description }),
        });
}

/// <summary>Requests the framework could not bind (malformed JSON, wrong content type, too large) become problem details, not 500s.</summary>
internal sealed partial class BadRequestExceptionHandler(IProblemDetailsService problemDetails) : IExceptionHandler
{
    private static readonly JsonSerializerOptions s_enumJson = new(JsonSerializerOptions.Web) { Converters = { new JsonStringEnumConverter() } };

    [GeneratedRegex("""^Failed to bind parameter "(?<type>[^"]*) (?<name>\w+)" from "(?<value>.*)"\.$""", RegexOptions.Singleline)]
    private static partial Regex BindingFailure();

    [GeneratedRegex("""could not be converted to (?<type>[\w.`\[\], =]+?)\.? Path:""")]
    private static partial Regex Conversion();

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
        if (bad.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            field = "body";
            if (context.GetEndpoint()?.Metadata.GetMetadata<BodyLimit>() is { } limit)
            {
                problem.ProblemDetails.Detail = BodyLimit.Detail(limit.Bytes(context.RequestServices), limit.Key); // Kestrel's own words name no key
            }
        }
        else if (bad.InnerException is JsonException json)
        {
            field = Problems.PathOf(json);
            problem.ProblemDetails.Detail = UnmappedMember().Match(json.Message) is { Success: true } unmapped
                ? $"{field}: unknown field{Fields(unmapped.Groups["type"].Value)}"
                : Conversion().Match(json.Message) is { Success: true } conversion
                    ? $"{field} must be {Expected(MemberType(conversion.Groups["type"].Value, field))}"
                    : $"{field}: {json.Message.Split(" Path:")[0]}";
            if (field == "base.hyperparameters.learningRate")
            {
                // POST /sweeps: where a sweep's learning rate from a range test goes.
                problem.ProblemDetails.Detail += "; for every trial's rate from a range test give the sweep's own \"learningRate\": \"fromRangeTest\"";
            }
        }
        else if (BindingFailure().Match(bad.Message) is { Success: true } failure)
        {
            field = failure.Groups["name"].Value; // a route or query value of the wrong type
            string value = failure.Groups["value"].Value;
            problem.ProblemDetails.Detail = $"{field} must be {Expected(failure.Groups["type"].Value)}, got \"{(value.Length <= 40 ? value : value[..40] + "…")}\"";
        }

        if (field is not null)
        {
            problem.ProblemDetails.Extensions["field"] = field;
            problem.ProblemDetails.Extensions["errors"] = new Dictionary<string, string[]> { [field] = [problem.ProblemDetails.Detail] };
        }

        return await problemDetails.TryWriteAsync(problem);
    }

    /// <summary>
    /// What a client should send, in the words of JSON rather than .NET's: a type as System.Text.Json names it
    /// (System.Int32, System.Nullable`1[[System.Guid, …]]) or as parameter binding does (int, Guid?, RunState).
    /// </summary>
    private static string Expected(string typeName)
    {
        string name = typeName.TrimEnd('?');
        int nullable = name.IndexOf("Nullable", StringComparison.Ordinal);
        if (nullable >= 0)
        {
            name = name[nullable..].TrimStart("Nullable`1".ToCharArray()).TrimStart('[', '<').Split(',', ']', '>')[0];
        }

        name = name[(name.LastIndexOf('.') + 1)..];
        return name switch
        {
            "int" or "long" or "short" or "byte" or "uint" or "ulong" or "ushort" or "sbyte"
                or "Int32" or "Int64" or "Int16" or "Byte" or "UInt32" or "UInt64" or "UInt16" or "SByte" => "an integer",
            "double" or "float" or "decimal" or "Double" or "Single" or "Decimal" => "a number",
            "bool" or "Boolean" => "true or false",
            "Guid" => "a GUID",
            "string" or "String" => "a string",
            "DateTime" or "DateTimeOffset" => "a date and time (ISO 8601)",
            _ when EnumNamed(name) is { } enumType => "one of " + string.Join(", ", Enum.GetValues(enumType).Cast<object>()
                .Select(v => JsonSerializer.Serialize(v, enumType, s_enumJson).Trim('"'))),
            _ when name.EndsWith("[]", StringComparison.Ordinal) || name.Contains("List`", StringComparison.Ordinal) => "an array",
            _ => "a JSON object",
        };
    }

    private static Type? EnumNamed(string name) => typeof(Contracts.Jobs.CreateJobRequest).Assembly.GetTypes()
        .FirstOrDefault(t => t.IsEnum && t.Name == name);

    /// <summary>"; the fields are a, b, c" for a request type named by System.Text.Json, or nothing when it cannot be found.</summary>
    private static string Fields(string typeName)
    {
        Type? type = RequestType(typeName);
        return type is null
            ? ""
            : "; the fields are " + string.Join(", ", type.GetProperties().Where(p => p.CanWrite).Select(p => JsonNamingPolicy.CamelCase.ConvertName(p.Name)));
    }

    /// <summary>
    /// The type a value at <paramref name="field"/> should have. For a positional record (constructor parameters)
    /// System.Text.Json names the record, not the member that failed ("could not be converted to CreateKeyRequest.
    /// Path: $.name"); the member's own type is what the client needs to hear.
    /// </summary>
    private static string MemberType(string typeName, string field) =>
        RequestType(typeName)?.GetProperty(field[(field.LastIndexOf('.') + 1)..],
            System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.IgnoreCase)
            is { } member ? member.PropertyType.ToString() : typeName;

    private static Type? RequestType(string typeName) =>
        typeof(Contracts.Jobs.CreateJobRequest).Assembly.GetType(typeName) ?? typeof(BadRequestExceptionHandler).Assembly.GetType(typeName);
}
