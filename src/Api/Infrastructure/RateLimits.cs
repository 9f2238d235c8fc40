using System.Globalization;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;
using TrainingService.Api.Datasets;

namespace TrainingService.Api.Infrastructure;

/// <summary>Requests per owner (configuration section RateLimits): token buckets, one for requests, a smaller one for creations.</summary>
public sealed class RateLimitOptions
{
    public int RequestsPerMinute { get; set; } = 600;

    /// <summary>Requests one owner may send at once before the per-minute rate applies.</summary>
    public int Burst { get; set; } = 100;

    /// <summary>Job creations and dataset uploads: each may start minutes of work or gigabytes of writing.</summary>
    public int CreationsPerMinute { get; set; } = 30;

    public int CreationBurst { get; set; } = 10;

    /// <summary>Calls one hub connection may make (Subscribe, Pause, …); its events do not count.</summary>
    public int HubCallsPerMinute { get; set; } = 120;

    public int HubBurst { get; set; } = 20;
}

public static class RateLimits
{
    /// <summary>The policy of the route groups: every request counts against its owner's bucket.</summary>
    public const string PerOwner = "per-owner";

    // Endpoints that start work: they draw on the creations bucket instead.
    private static readonly HashSet<string> s_creations =
        ["CreateJob", Sweeps.SweepsApi.CreateOperation, DatasetsOperationFilter.UploadOperation, DatasetsOperationFilter.BuiltinOperation,
         Access.AccessApi.CreateKeyOperation, Access.AccessApi.CreateUserOperation, Access.SharesApi.CreateOperation];

    public static IServiceCollection AddRateLimits(this IServiceCollection services)
    {
        services.AddOptions<RateLimitOptions>().BindConfiguration("RateLimits")
            .Validate(o => o.RequestsPerMinute > 0 && o.Burst > 0 && o.CreationsPerMinute > 0 && o.CreationBurst > 0 && o.HubCallsPerMinute > 0 && o.HubBurst > 0,
                "RateLimits: every value must be positive")
            .ValidateOnStart();
        services.AddRateLimiter(limiter =>
        {
            limiter.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            limiter.AddPolicy(PerOwner, context =>
            {
                RateLimitOptions options = context.RequestServices.GetRequiredService<IOptions<RateLimitOptions>>().Value;
                (string bucket, int perMinute, int burst, _) = Bucket(context, options);
                return RateLimitPartition.GetTokenBucketLimiter($"{bucket}:{OwnerOf(context)}", _ => new TokenBucketRateLimiterOptions
                {
                    TokenLimit = burst,
                    TokensPerPeriod = 1,
                    ReplenishmentPeriod = TimeSpan.FromMinutes(1) / perMinute,
                    QueueLimit = 0,
                });
            });
            limiter.OnRejected = async (rejected, cancellationToken) =>
            {
                HttpContext context = rejected.HttpContext;
                RateLimitOptions options = context.RequestServices.GetRequiredService<IOptions<RateLimitOptions>>().Value;
                (_, int perMinute, int burst, string key) = Bucket(context, options);
                TimeSpan retry = rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out TimeSpan after) ? after : TimeSpan.FromMinutes(1) / perMinute;
                int seconds = Math.Max(1, (int)Math.Ceiling(retry.TotalSeconds));
                context.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
                await context.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
                {
                    HttpContext = context,
                    ProblemDetails =
                    {
                        Status = StatusCodes.Status429TooManyRequests,
                        Title = "Too many requests",
                        Detail = string.Create(CultureInfo.InvariantCulture,
                            $"Over the limit of {perMinute} requests per minute (bursts of {burst}) for this kind of request (configuration {key}); retry in {seconds} s."),
                        Extensions = { ["limit"] = key, ["retryAfterSeconds"] = seconds },
                    },
                });
            };
        });
        return services;
    }

    /// <summary>
    /// Whom a request acts for, which is whose bucket it draws on: the signed-in user (or share link); the remote address
    /// for a request without a valid key (so refusals are limited too).
    /// </summary>
    private static string OwnerOf(HttpContext context) =>
        context.User.FindFirst(System.Security.Claims.ClaimTypes.NameIdentifier)?.Value is { } user ? "user:" + user : "ip:" + (context.Connection.RemoteIpAddress?.ToString() ?? "unknown");

    private static (string Bucket, int PerMinute, int Burst, string Key) Bucket(HttpContext context, RateLimitOptions options) =>
        context.GetEndpoint()?.Metadata.GetMetadata<IEndpointNameMetadata>() is { } name && s_creations.Contains(name.EndpointName)
            ? ("creations", options.CreationsPerMinute, options.CreationBurst, "RateLimits:CreationsPerMinute")
            : ("requests", options.RequestsPerMinute, options.Burst, "RateLimits:RequestsPerMinute");
}
