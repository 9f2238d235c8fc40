using System.Net;
using Microsoft.Net.Http.Headers;

namespace TrainingService.Api.Tests.Service;

/// <summary>Host filtering against DNS rebinding, and the headers that keep the dashboard out of other sites' frames.</summary>
public sealed class HostAndHeaderTests
{
    [Theory]
    [InlineData("evil.example", HttpStatusCode.BadRequest)]
    [InlineData("localhost", HttpStatusCode.OK)]
    [InlineData("127.0.0.1:8080", HttpStatusCode.OK)]
    [InlineData("[::1]:8080", HttpStatusCode.OK)]
    public async Task InProductionOnlyLoopbackHostNamesAreAnswered(string host, HttpStatusCode expected)
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory(new() { ["environment"] = "Production" });
        using HttpClient client = factory.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/health/live");
        request.Headers.Host = host;

        using HttpResponseMessage response = await client.SendAsync(request);

        Assert.Equal(expected, response.StatusCode);
    }

    [Theory]
    [InlineData("/")]
    [InlineData("/jobs")]
    [InlineData("/jobs/00000000-0000-0000-0000-000000000001")]
    public async Task TheDashboardAndTheApiSendSecurityHeaders(string path)
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();

        using HttpResponseMessage response = await client.GetAsync(new Uri(path, UriKind.Relative));

        string policy = Assert.Single(response.Headers.GetValues(HeaderNames.ContentSecurityPolicy));
        Assert.Contains("script-src 'self';", policy, StringComparison.Ordinal);
        Assert.Contains("frame-ancestors 'none'", policy, StringComparison.Ordinal);
        Assert.DoesNotContain("unsafe", policy, StringComparison.Ordinal);
        Assert.Equal(["DENY"], response.Headers.GetValues(HeaderNames.XFrameOptions));
        Assert.Equal(["nosniff"], response.Headers.GetValues(HeaderNames.XContentTypeOptions));
        Assert.Equal(["no-referrer"], response.Headers.GetValues("Referrer-Policy"));
    }

    [Fact]
    public async Task SwaggerLoadsUnderItsOwnPolicy()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();

        using HttpResponseMessage page = await client.GetAsync(new Uri("/swagger/index.html", UriKind.Relative));
        using HttpResponseMessage document = await client.GetAsync(new Uri("/swagger/v1/swagger.json", UriKind.Relative));

        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("swagger-ui", await page.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, document.StatusCode);
        string policy = Assert.Single(page.Headers.GetValues(HeaderNames.ContentSecurityPolicy));
        Assert.Contains("frame-ancestors 'none'", policy, StringComparison.Ordinal);
        Assert.Contains("script-src 'self';", policy, StringComparison.Ordinal);
        Assert.Equal(["DENY"], page.Headers.GetValues(HeaderNames.XFrameOptions));
    }
}
