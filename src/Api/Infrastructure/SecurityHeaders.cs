namespace TrainingService.Api.Infrastructure;

/// <summary>
/// Headers that keep the dashboard out of other sites' frames (clickjacking its Cancel and Finish) and its pages to
/// their own script.
/// </summary>
public static class SecurityHeaders
{
    /// <summary>
    /// The dashboard and the API: scripts only from the service itself, none inline. WebSockets (ws:, wss:) for the hub;
    /// data: and blob: images for the charts' and pictures' exports.
    /// </summary>
    public const string Policy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
        "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

    /// <summary>Swagger UI's bundle inserts style elements; its scripts are files, so script-src stays as strict.</summary>
    public const string SwaggerPolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

    public static WebApplication UseSecurityHeaders(this WebApplication app)
    {
        app.Use((context, next) =>
        {
            // On starting, not now: the exception handler clears headers set before an error.
            context.Response.OnStarting(() =>
            {
                IHeaderDictionary headers = context.Response.Headers;
                headers.ContentSecurityPolicy = context.Request.Path.StartsWithSegments("/swagger") ? SwaggerPolicy : Policy;
                headers.XFrameOptions = "DENY";
                headers.XContentTypeOptions = "nosniff";
                headers["Referrer-Policy"] = "no-referrer"; // share links will carry tokens in their URLs
                return Task.CompletedTask;
            });
            return next(context);
        });
        return app;
    }
}
