using System.Collections.Concurrent;
using System.Globalization;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Options;
using TrainingService.Api.Access;
using TrainingService.Api.Infrastructure;

namespace TrainingService.Api.Streaming;

/// <summary>
/// Bounds on the hub, as RateLimits bounds REST: an owner (a user, or a share link for all its viewers) holds at most
/// Streaming:MaxConnectionsPerOwner connections, and each connection makes at most RateLimits:HubCallsPerMinute calls
/// (bursts of RateLimits:HubBurst); a refusal is a HubException saying which limit and when to retry.
/// </summary>
internal sealed class HubRateLimit(IOptions<RateLimitOptions> rateLimits, IOptions<StreamingOptions> streaming) : IHubFilter
{
    private const string LimiterKey = "trainingservice:hub-limiter";
    private readonly ConcurrentDictionary<string, int> _connections = new();

    public async ValueTask<object?> InvokeMethodAsync(HubInvocationContext invocation, Func<HubInvocationContext, ValueTask<object?>> next)
    {
        if (invocation.Context.Items.TryGetValue(LimiterKey, out object? value) && value is RateLimiter limiter)
        {
            using RateLimitLease lease = limiter.AttemptAcquire();
            if (!lease.IsAcquired)
            {
                RateLimitOptions options = rateLimits.Value;
                TimeSpan retry = lease.TryGetMetadata(MetadataName.RetryAfter, out TimeSpan after) ? after : TimeSpan.FromMinutes(1) / options.HubCallsPerMinute;
                int seconds = Math.Max(1, (int)Math.Ceiling(retry.TotalSeconds));
                throw new HubException(string.Create(CultureInfo.InvariantCulture, $"Too many hub calls: over the limit of {options.HubCallsPerMinute} per minute (bursts of {options.HubBurst}) for a connection (configuration RateLimits:HubCallsPerMinute); retry in {seconds} s."));
            }
        }

        return await next(invocation);
    }

    public async Task OnConnectedAsync(HubLifetimeContext context, Func<HubLifetimeContext, Task> next)
    {
        string owner = OwnerOf(context.Context);
        int max = streaming.Value.MaxConnectionsPerOwner;
        if (_connections.AddOrUpdate(owner, 1, (_, n) => n + 1) > max)
        {
            Leave(owner);
            throw new HubException($"Too many connections: {max} are open for this key or share link already, the most it may hold "
                + "(configuration Streaming:MaxConnectionsPerOwner).");
        }

        RateLimitOptions options = rateLimits.Value;
        context.Context.Items[LimiterKey] = new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
        {
            TokenLimit = options.HubBurst,
            TokensPerPeriod = 1,
            ReplenishmentPeriod = TimeSpan.FromMinutes(1) / options.HubCallsPerMinute,
            QueueLimit = 0,
        });
        try
        {
            await next(context);
        }
        catch
        {
            Forget(context.Context, owner);
            throw;
        }
    }

    public async Task OnDisconnectedAsync(HubLifetimeContext context, Exception? exception, Func<HubLifetimeContext, Exception?, Task> next)
    {
        try
        {
            await next(context, exception);
        }
        finally
        {
            Forget(context.Context, OwnerOf(context.Context));
        }
    }

    internal static string OwnerOf(HubCallerContext context) =>
        context.User?.FindFirst(Caller.ShareClaim)?.Value is { } share ? "share:" + share : "user:" + Caller.From(context.User).Owner;

    private void Forget(HubCallerContext context, string owner)
    {
        if (context.Items.Remove(LimiterKey, out object? limiter))
        {
            ((RateLimiter)limiter!).Dispose();
            Leave(owner);
        }
    }

    private void Leave(string owner)
    {
        // Decrement, and drop the entry at zero so owners who left take no memory.
        while (_connections.TryGetValue(owner, out int n))
        {
            if (n <= 1 ? _connections.TryRemove(KeyValuePair.Create(owner, n)) : _connections.TryUpdate(owner, n - 1, n))
            {
                return;
            }
        }
    }
}
