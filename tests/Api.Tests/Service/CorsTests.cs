using System.Net;

namespace TrainingService.Api.Tests.Service;

public sealed class CorsTests
{
    private const string Dashboard = "http://dash.example";

    [Theory]
    [InlineData("/jobs")]
    [InlineData("/hubs/training/negotiate?negotiateVersion=1")]
    public async Task ListedOriginPassesPreflightWithCredentials(string path)
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory(new() { ["Cors:AllowedOrigins:0"] = Dashboard });
        using HttpClient client = factory.CreateClient();

        using HttpRequestMessage preflight = Preflight(path, Dashboard);
        using HttpResponseMessage response = await client.SendAsync(preflight);

        Assert.True(response.IsSuccessStatusCode, $"preflight got {(int)response.StatusCode}");
        Assert.Equal([Dashboard], response.Headers.GetValues("Access-Control-Allow-Origin"));
        Assert.Equal(["true"], response.Headers.GetValues("Access-Control-Allow-Credentials"));
        Assert.Contains("POST", string.Join(",", response.Headers.GetValues("Access-Control-Allow-Methods")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ListedOriginGetsCorsHeadersOnAnActualRequest()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory(new() { ["Cors:AllowedOrigins:0"] = Dashboard });
        using HttpClient client = factory.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/jobs");
        request.Headers.Add("Origin", Dashboard);

        using HttpResponseMessage response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal([Dashboard], response.Headers.GetValues("Access-Control-Allow-Origin"));
        Assert.Equal(["true"], response.Headers.GetValues("Access-Control-Allow-Credentials"));
    }

    [Theory]
    [InlineData("/jobs")]
    [InlineData("/hubs/training/negotiate?negotiateVersion=1")]
    public async Task UnlistedOriginGetsNoAllowOrigin(string path)
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory(new() { ["Cors:AllowedOrigins:0"] = Dashboard });
        using HttpClient client = factory.CreateClient();

        using HttpRequestMessage preflight = Preflight(path, "http://evil.example");
        using HttpResponseMessage response = await client.SendAsync(preflight);

        Assert.False(response.Headers.Contains("Access-Control-Allow-Origin"));
        Assert.False(response.Headers.Contains("Access-Control-Allow-Credentials"));
    }

    [Theory]
    [InlineData("/jobs")]
    [InlineData("/hubs/training/negotiate?negotiateVersion=1")]
    public async Task WithoutConfigurationNoOriginIsAllowed(string path)
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();

        using HttpRequestMessage preflight = Preflight(path, Dashboard);
        using HttpResponseMessage response = await client.SendAsync(preflight);
        using var actual = new HttpRequestMessage(HttpMethod.Get, "/jobs");
        actual.Headers.Add("Origin", Dashboard);
        using HttpResponseMessage actualResponse = await client.SendAsync(actual);

        Assert.False(response.Headers.Contains("Access-Control-Allow-Origin"));
        Assert.False(actualResponse.Headers.Contains("Access-Control-Allow-Origin"));
    }

    private static HttpRequestMessage Preflight(string path, string origin)
    {
        var request = new HttpRequestMessage(HttpMethod.Options, path);
        request.Headers.Add("Origin", origin);
        request.Headers.Add("Access-Control-Request-Method", "POST");
        request.Headers.Add("Access-Control-Request-Headers", "content-type,x-requested-with");
        return request;
    }
}
