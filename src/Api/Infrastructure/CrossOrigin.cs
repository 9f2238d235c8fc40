using Microsoft.AspNetCore.Cors.Infrastructure;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Options;

namespace TrainingService.Api.Infrastructure;

/// <summary>Origins other than the service's own that may use it from a browser (configuration section Cors).</summary>
public sealed class CrossOriginOptions
{
    public const string Key = "Cors:AllowedOrigins";

    /// <summary>scheme://host[:port] of each dashboard served from elsewhere; empty: the service's own origin only.</summary>
    public string[] AllowedOrigins { get; set; } = [];

    /// <summary>An entry is an origin (an absolute http(s) URL without path, query or user), never "*".</summary>
    public static bool IsOrigin(string value) =>
        Uri.TryCreate(value, UriKind.Absolute, out Uri? uri) && uri.Scheme is "http" or "https" && uri.UserInfo.Length == 0
        && string.Equals(uri.GetLeftPart(UriPartial.Authority), value.TrimEnd('/'), StringComparison.OrdinalIgnoreCase);
}

/// <summary>
/// One list of origins for two guards. CORS decides which other origins may read answers; the origin check refuses
/// what CORS cannot stop: a "simple" cross-origin POST (a form, multipart) and a WebSocket are sent without a
/// preflight, so the server would act on them even though the page never reads the answer.
/// </summary>
public static class CrossOrigin
{
    private static readonly HashSet<string> s_stateChanging =
        new([HttpMethods.Post, HttpMethods.Put, HttpMethods.Patch, HttpMethods.Delete], StringComparer.OrdinalIgnoreCase);

    public static IServiceCollection AddCrossOrigin(this IServiceCollection services)
    {
        services.AddOptions<CrossOriginOptions>().BindConfiguration("Cors")
            .Validate(o => o.AllowedOrigins.All(CrossOriginOptions.IsOrigin),
                $"{CrossOriginOptions.Key}: each entry must be an origin such as https://dash.example.com " +
                "(scheme, host, port; no path, no *)")
            .ValidateOnStart();
        services.AddCors();
        services.AddOptions<CorsOptions>().Configure<IOptions<CrossOriginOptions>>((cors, options) =>
            cors.AddDefaultPolicy(policy =>
            {
                if (options.Value.AllowedOrigins is { Length: > 0 } origins)
                {
                    policy.WithOrigins(origins).AllowAnyHeader().AllowAnyMethod().AllowCredentials(); // credentials: SignalR
                }
            }));
        return services;
    }

    /// <summary>CORS, then the origin check: a preflight is answered first, a refused request never reaches an endpoint.</summary>
    public static WebApplication UseCrossOrigin(this WebApplication app)
    {
        app.UseCors();
        app.Use(async (context, next) =>
        {
            if (context.Request.Headers.Origin is [{ } origin] && Guarded(context) && !Allowed(context, origin))
            {
                context.Response.StatusCode = StatusCodes.Status403Forbidden;
                string shown = origin.Length <= 200 ? origin : origin[..200] + "…";
                string detail = $"The request's Origin {shown} is neither this service's own ({OwnOrigin(context.Request)}) " +
                    $"nor listed in configuration {CrossOriginOptions.Key}.";
                await Problems.About(StatusCodes.Status403Forbidden, "Origin", detail, "Cross-origin request refused").ExecuteAsync(context);
                return;
            }

            await next(context);
        });
        return app;
    }

    /// <summary>State-changing methods anywhere, and every request to a hub (negotiate and each transport's connect).</summary>
    private static bool Guarded(HttpContext context) => s_stateChanging.Contains(context.Request.Method)
        || context.GetEndpoint()?.Metadata.GetMetadata<HubMetadata>() is not null;

    private static bool Allowed(HttpContext context, string origin)
    {
        if (!Uri.TryCreate(origin, UriKind.Absolute, out Uri? uri))
        {
            return false; // "null" (a sandboxed frame, a file:// page) or garbage
        }

        if (Uri.TryCreate(OwnOrigin(context.Request), UriKind.Absolute, out Uri? own) && SameOrigin(uri, own))
        {
            return true;
        }

        CrossOriginOptions options = context.RequestServices.GetRequiredService<IOptions<CrossOriginOptions>>().Value;
        return options.AllowedOrigins.Any(a => Uri.TryCreate(a, UriKind.Absolute, out Uri? listed) && SameOrigin(uri, listed));
    }

    private static string OwnOrigin(HttpRequest request) => $"{request.Scheme}://{request.Host}";

    private static bool SameOrigin(Uri a, Uri b) =>
        string.Equals(a.Scheme, b.Scheme, StringComparison.OrdinalIgnoreCase)
        && string.Equals(a.IdnHost, b.IdnHost, StringComparison.OrdinalIgnoreCase) && a.Port == b.Port;
}
