using Microsoft.Net.Http.Headers;

namespace TrainingService.Api.Infrastructure;

/// <summary>The dashboard: static files npm built into wwwroot, index.html at /.</summary>
public static class Dashboard
{
    public static WebApplication UseDashboard(this WebApplication app)
    {
        app.UseDefaultFiles();
        app.UseStaticFiles(new StaticFileOptions
        {
            // index.html names its script and styles by content hash (?v=…), so only it must be revalidated.
            OnPrepareResponse = context => context.Context.Response.Headers[HeaderNames.CacheControl] =
                context.File.Name == "index.html" ? "no-cache" : "public, max-age=31536000, immutable",
        });
        return app.MapFavicon();
    }
}
