using Microsoft.AspNetCore.SignalR;
using StackExchange.Redis;

namespace TrainingService.Api.Streaming;

/// <summary>Settings of the live stream and the history reads (configuration section "Streaming").</summary>
public sealed class StreamingOptions
{
    /// <summary>
    /// Cap on the events' JSON in one hub Events message and in one chunk of /events read from the database: a late
    /// subscriber gets pages, never one huge frame. A single event larger than this goes alone.
    /// </summary>
    public int MaxFrameBytes { get; set; } = 1 << 20;

    /// <summary>Cap on the JSON of the recent events kept in memory per job, from which close subscribers are served.</summary>
    public int RecentBytesPerJob { get; set; } = 4 << 20;

    /// <summary>Jobs one hub connection may follow at once (a dashboard follows one; a comparison a few dozen).</summary>
    public int MaxSubscriptionsPerConnection { get; set; } = 64;

    /// <summary>Hub connections one owner (a user, or a share link for all its viewers) may hold open at once.</summary>
    public int MaxConnectionsPerOwner { get; set; } = 1000;
}

public static class StreamingSetup
{
    /// <summary>
    /// SignalR with JSON and MessagePack; which origins may connect is <see cref="Infrastructure.CrossOrigin"/>'s. With
    /// ConnectionStrings:Redis, live events and revocations cross nodes through Redis (<see cref="RedisBus"/>).
    /// </summary>
    public static IServiceCollection AddStreaming(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<StreamingOptions>().BindConfiguration("Streaming")
            .Validate(o => o.MaxFrameBytes >= 1024 && o.RecentBytesPerJob >= 0 && o.MaxSubscriptionsPerConnection >= 1 && o.MaxConnectionsPerOwner >= 1,
                "Streaming: MaxFrameBytes ≥ 1024, RecentBytesPerJob ≥ 0, MaxSubscriptionsPerConnection ≥ 1, MaxConnectionsPerOwner ≥ 1")
            .ValidateOnStart();
        services.AddSignalR(o => o.AddFilter<HubRateLimit>())
            .AddJsonProtocol(o => StreamJson.Configure(o.PayloadSerializerOptions))
            .AddMessagePackProtocol();
        services.AddSingleton<TrainingHubLifetime>();
        services.AddSingleton<HubLifetimeManager<TrainingHub>>(sp => sp.GetRequiredService<TrainingHubLifetime>());
        services.AddSingleton<HubConnections>();
        services.AddSingleton<HubRateLimit>();
        services.AddTransient<IStartupFilter, RefuseHubWhileStopping>();
        if (configuration.GetConnectionString("Redis") is { Length: > 0 } redis)
        {
            services.AddOptions<RedisOptions>().BindConfiguration("Redis")
                .Validate(o => o.MaxMessageBytes >= 1024 && o.SyncMilliseconds >= 50, "Redis: MaxMessageBytes ≥ 1024, SyncMilliseconds ≥ 50")
                .ValidateOnStart();
            // One connection for the node. AbortOnConnectFail off: the service starts and serves while Redis is down,
            // and the client keeps reconnecting (renewing its subscriptions) in the background.
            services.AddSingleton<IConnectionMultiplexer>(_ =>
            {
                ConfigurationOptions options = ConfigurationOptions.Parse(redis);
                options.AbortOnConnectFail = false;
                return ConnectionMultiplexer.Connect(options);
            });
            services.AddSingleton<RedisBus>();
            services.AddHostedService<RedisRelay>();
            services.AddHealthChecks().AddCheck<RedisHealthCheck>("redis");
        }

        return services;
    }
}

/// <summary>
/// A hub connection that arrives while the server stops (a dashboard reconnecting at once after its connection was
/// closed) is refused with 503: accepted, it would hold the shutdown until its handshake timed out (15 s), since
/// without negotiation the WebSocket request itself opens the connection. The client retries and reaches a running node.
/// </summary>
internal sealed class RefuseHubWhileStopping(IHostApplicationLifetime lifetime) : IStartupFilter
{
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        app.Use((context, nextMiddleware) =>
        {
            if (lifetime.ApplicationStopping.IsCancellationRequested && context.Request.Path.StartsWithSegments("/hubs"))
            {
                context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                return Task.CompletedTask;
            }

            return nextMiddleware(context);
        });
        next(app);
    };
}
