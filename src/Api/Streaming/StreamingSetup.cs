namespace TrainingService.Api.Streaming;

public static class StreamingSetup
{
    /// <summary>
    /// SignalR with JSON and MessagePack, and CORS for dashboards served from elsewhere: closed by default (same origin
    /// only), open to the origins listed under Cors:AllowedOrigins, with credentials as SignalR needs.
    /// </summary>
    public static IServiceCollection AddStreaming(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSignalR()
            .AddJsonProtocol(o => StreamJson.Configure(o.PayloadSerializerOptions))
            .AddMessagePackProtocol();
        services.AddSingleton<HubConnections>();
        string[] origins = configuration.GetSection("Cors:AllowedOrigins").Get<string[]>() ?? [];
        services.AddCors(cors => cors.AddDefaultPolicy(policy =>
        {
            if (origins.Length > 0)
            {
                policy.WithOrigins(origins).AllowAnyHeader().AllowAnyMethod().AllowCredentials();
            }
        }));
        return services;
    }
}
