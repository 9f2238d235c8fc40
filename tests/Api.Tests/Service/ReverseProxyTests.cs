using System.Net;

namespace TrainingService.Api.Tests.Service;

/// <summary>Behind a TLS proxy the browser's origin is https: the service learns its scheme from a proxy it trusts.</summary>
public sealed class ReverseProxyTests
{
    [Theory]
    [InlineData(null, null, HttpStatusCode.Forbidden)]
    [InlineData("true", null, HttpStatusCode.OK)]
    [InlineData("true", "10.0.0.1", HttpStatusCode.Forbidden)]
    public async Task TheSchemeForwardedByATrustedProxyMakesTheOwnOrigin(string? enabled, string? knownProxy, HttpStatusCode expected)
    {
        var settings = new Dictionary<string, string?>();
        if (enabled is not null)
        {
            settings["ForwardedHeaders:Enabled"] = enabled;
        }

        if (knownProxy is not null)
        {
            settings["ForwardedHeaders:KnownProxies:0"] = knownProxy; // then loopback is no longer trusted
        }

        await using TrainingServiceFactory factory = ServiceHarness.Factory(settings);
        int port = ServiceHarness.FreePort();
        factory.UseKestrel(port);
        factory.StartServer();
        using var client = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, $"http://127.0.0.1:{port}/hubs/training/negotiate?negotiateVersion=1");
        request.Headers.Add("Origin", $"https://127.0.0.1:{port}");
        request.Headers.Add("X-Forwarded-Proto", "https");
        request.Headers.Add("X-Forwarded-For", "203.0.113.7");
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", TrainingServiceFactory.AdminKey);

        using HttpResponseMessage response = await client.SendAsync(request);

        Assert.Equal(expected, response.StatusCode);
    }
}
