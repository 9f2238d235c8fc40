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
}

public static class StreamingSetup
{
    /// <summary>SignalR with JSON and MessagePack; which origins may connect is <see cref="Infrastructure.CrossOrigin"/>'s.</summary>
    public static IServiceCollection AddStreaming(this IServiceCollection services)
    {
        services.AddOptions<StreamingOptions>().BindConfiguration("Streaming")
            .Validate(o => o.MaxFrameBytes >= 1024 && o.RecentBytesPerJob >= 0, "Streaming: MaxFrameBytes ≥ 1024, RecentBytesPerJob ≥ 0")
            .ValidateOnStart();
        services.AddSignalR()
            .AddJsonProtocol(o => StreamJson.Configure(o.PayloadSerializerOptions))
            .AddMessagePackProtocol();
        services.AddSingleton<HubConnections>();
        return services;
    }
}
