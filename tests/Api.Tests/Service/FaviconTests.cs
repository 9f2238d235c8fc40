using System.Net;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using SkiaSharp;

namespace TrainingService.Api.Tests.Service;

/// <summary>Browsers ask every page's icon: /favicon.ico and the dashboard's linked SVG are images, not 404s.</summary>
public sealed class FaviconTests
{
    [Fact]
    public async Task TheIconIsServedAsIcoAndAsTheSvgTheDashboardLinks()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();

        using HttpResponseMessage ico = await client.GetAsync(new Uri("/favicon.ico", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, ico.StatusCode);
        Assert.Equal("image/x-icon", ico.Content.Headers.ContentType?.MediaType);
        using (SKCodec codec = SKCodec.Create(new MemoryStream(await ico.Content.ReadAsByteArrayAsync())))
        {
            Assert.Equal(SKEncodedImageFormat.Ico, codec.EncodedFormat);
            Assert.Equal(32, codec.Info.Width);
        }

        string root = factory.Services.GetRequiredService<IWebHostEnvironment>().ContentRootPath;
        string page = await File.ReadAllTextAsync(Path.Combine(root, "ClientApp", "src", "index.html"));
        Assert.Contains("""<link rel="icon" href="favicon.svg" type="image/svg+xml">""", page, StringComparison.Ordinal);
        using HttpResponseMessage svg = await client.GetAsync(new Uri("/favicon.svg", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, svg.StatusCode);
        Assert.Equal("image/svg+xml", svg.Content.Headers.ContentType?.MediaType);
        Assert.StartsWith("<svg ", await svg.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }
}
