using System.Net;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.Extensions.Options;
using IPNetwork = System.Net.IPNetwork;

namespace TrainingService.Api.Infrastructure;

/// <summary>A reverse proxy in front (configuration section ForwardedHeaders): off unless Enabled.</summary>
public sealed class ReverseProxyOptions
{
    public bool Enabled { get; set; }

    /// <summary>Addresses of the proxies whose X-Forwarded-* headers are believed; empty with no networks: loopback.</summary>
    public string[] KnownProxies { get; set; } = [];

    /// <summary>Networks (CIDR, such as 172.16.0.0/12 for Docker's) whose proxies are believed.</summary>
    public string[] KnownNetworks { get; set; } = [];
}

public static class ReverseProxy
{
    public static IServiceCollection AddReverseProxy(this IServiceCollection services)
    {
        services.AddOptions<ReverseProxyOptions>().BindConfiguration("ForwardedHeaders")
            .Validate(o => o.KnownProxies.All(p => IPAddress.TryParse(p, out _)),
                "ForwardedHeaders:KnownProxies: each entry must be an IP address")
            .Validate(o => o.KnownNetworks.All(n => IPNetwork.TryParse(n, out _)),
                "ForwardedHeaders:KnownNetworks: each entry must be a CIDR network such as 10.0.0.0/8")
            .ValidateOnStart();
        services.AddOptions<ForwardedHeadersOptions>().Configure<IOptions<ReverseProxyOptions>>((forwarded, proxy) =>
        {
            // The client's address (rate limits, logs) and scheme (the origin check's own origin); the Host header the
            // proxy passes through, so host filtering sees the name the browser asked for.
            forwarded.ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto;
            if (proxy.Value.KnownProxies.Length > 0 || proxy.Value.KnownNetworks.Length > 0)
            {
                forwarded.KnownProxies.Clear();
                forwarded.KnownIPNetworks.Clear();
                foreach (string address in proxy.Value.KnownProxies)
                {
                    forwarded.KnownProxies.Add(IPAddress.Parse(address));
                }

                foreach (string network in proxy.Value.KnownNetworks)
                {
                    forwarded.KnownIPNetworks.Add(IPNetwork.Parse(network));
                }
            }
        });
        return services;
    }

    public static WebApplication UseReverseProxy(this WebApplication app)
    {
        if (app.Configuration.GetValue<bool>("ForwardedHeaders:Enabled"))
        {
            app.UseForwardedHeaders();
        }

        return app;
    }
}
