namespace TrainingService.Api.Streaming;

public static class StreamingSetup
{
    /// <summary>SignalR with JSON and MessagePack; which origins may connect is <see cref="Infrastructure.CrossOrigin"/>'s.</summary>
    public static IServiceCollection AddStreaming(this IServiceCollection services)
    {
        services.AddSignalR()
            .AddJsonProtocol(o => StreamJson.Configure(o.PayloadSerializerOptions))
            .AddMessagePackProtocol();
        services.AddSingleton<HubConnections>();
        return services;
    }
}
