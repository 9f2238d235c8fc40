using System.Data.Common;
using System.Globalization;
using System.Net;
using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using TrainingService.Api.Infrastructure;
using TrainingService.Api.Persistence;

namespace TrainingService.Api.Access;

/// <summary>
/// Reads the caller's token — an API key or a share link's token — from <c>Authorization: Bearer</c>, <c>X-Api-Key</c>,
/// or, for the hub only, the <c>access_token</c> query parameter (browsers cannot set headers on a WebSocket; SignalR
/// clients send it there), and turns it into a principal. A refusal says why (unknown, revoked, expired), as problem details.
/// </summary>
public sealed class ApiKeyHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> schemeOptions,
    ILoggerFactory logs,
    UrlEncoder encoder,
    TrainingDb db,
    ShareTokens shares,
    IOptions<AuthOptions> auth,
    TimeProvider clock) : AuthenticationHandler<AuthenticationSchemeOptions>(schemeOptions, logs, encoder)
{
    public const string SchemeName = "ApiKey";

    private static readonly TimeSpan s_lastUsedResolution = TimeSpan.FromMinutes(1);

    private string? _refusal;

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        string? token = TokenOf(Request);
        if (token is null)
        {
            if (auth.Value.Mode == AuthMode.Open)
            {
                if (IsLoopback(Context.Connection))
                {
                    return Success(Principal(Storage.DefaultOwner, AdminBootstrap.AdminName, Caller.AdminRole, ("auth", "open")));
                }

                _refusal = "Auth:Mode=Open serves requests from this machine (loopback) only.";
            }

            return AuthenticateResult.NoResult();
        }

        return token.StartsWith(ApiKeys.SharePrefix, StringComparison.Ordinal) ? await ShareAsync(token) : await KeyAsync(token);
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.Headers.WWWAuthenticate = "Bearer";
        string detail = _refusal ?? "This request needs an API key: send it as Authorization: Bearer <key> or X-Api-Key: <key>. "
            + "The service's first start wrote an admin key to the data folder's admin-key file and logged a sign-in URL; "
            + "an admin creates more with POST /keys or POST /users.";
        await Problems.About(StatusCodes.Status401Unauthorized, "Authorization", detail, "Not signed in").ExecuteAsync(Context);
    }

    protected override async Task HandleForbiddenAsync(AuthenticationProperties properties)
    {
        Caller caller = Caller.From(Context.User);
        string detail = caller.IsViewer
            ? $"A share link can watch job {caller.SharedJob} (its page, events, pictures and live stream) and nothing else."
            : "This needs the admin role.";
        await Problems.About(StatusCodes.Status403Forbidden, "Authorization", detail, "Not allowed").ExecuteAsync(Context);
    }

    private async Task<AuthenticateResult> KeyAsync(string token)
    {
        string hash = ApiKeys.Hash(token);
        var found = await db.ApiKeys.AsNoTracking().Where(k => k.Hash == hash)
            .Join(db.Users, k => k.UserId, u => u.Id, (k, u) => new { Key = k, User = u })
            .FirstOrDefaultAsync(Context.RequestAborted);
        if (found is null)
        {
            return Fail("The API key is not one this service issued (or it was mistyped).");
        }

        if (found.User.DisabledAt is { } disabled)
        {
            return Fail($"The user {found.User.Name} was removed at {disabled:u}; their keys no longer work.");
        }

        if (found.Key.RevokedAt is { } revoked)
        {
            return Fail($"The API key {found.Key.Prefix}… ({found.Key.Name}) was revoked at {revoked:u}.");
        }

        await TouchAsync(found.Key);
        return Success(Principal(found.User.Id, found.User.Name, found.User.Role, (Caller.KeyClaim, found.Key.Id.ToString())));
    }

    private async Task<AuthenticateResult> ShareAsync(string token)
    {
        if (shares.Read(token) is not var (id, expiresAt))
        {
            return Fail("The share link's token is not valid: it was altered, cut short, or signed by another installation.");
        }

        DateTime now = clock.GetUtcNow().UtcDateTime;
        if (expiresAt <= now)
        {
            return Fail($"This share link expired at {expiresAt:u}; ask the job's owner for a new one.");
        }

        ShareLinkRecord? share = await db.ShareLinks.AsNoTracking().FirstOrDefaultAsync(s => s.Id == id, Context.RequestAborted);
        if (share is null)
        {
            return Fail("This share link was revoked; ask the job's owner for a new one.");
        }

        return Success(Principal("share:" + id.ToString("N"), "viewer", Caller.ViewerRole,
            (Caller.SharedJobClaim, share.JobId.ToString()), (Caller.ShareClaim, id.ToString())));
    }

    /// <summary>Records the key's use at most once a minute; a write that fails (a locked database) costs the request nothing.</summary>
    private async Task TouchAsync(ApiKeyRecord key)
    {
        DateTime now = clock.GetUtcNow().UtcDateTime;
        if (key.LastUsedAt is { } last && now - last < s_lastUsedResolution)
        {
            return;
        }

        try
        {
            await db.ApiKeys.Where(k => k.Id == key.Id).ExecuteUpdateAsync(s => s.SetProperty(k => k.LastUsedAt, now), Context.RequestAborted);
        }
        catch (DbException ex)
        {
            Logger.LogDebug(ex, "Could not record the use of key {Key}", key.Id);
        }
    }

    private AuthenticateResult Fail(string reason)
    {
        _refusal = reason;
        return AuthenticateResult.Fail(reason);
    }

    private static AuthenticateResult Success(ClaimsPrincipal principal) => AuthenticateResult.Success(new AuthenticationTicket(principal, SchemeName));

    private static ClaimsPrincipal Principal(string id, string name, string role, params (string Type, string Value)[] extra)
    {
        var identity = new ClaimsIdentity(SchemeName, ClaimTypes.Name, ClaimTypes.Role);
        identity.AddClaim(new Claim(ClaimTypes.NameIdentifier, id));
        identity.AddClaim(new Claim(ClaimTypes.Name, name));
        identity.AddClaim(new Claim(ClaimTypes.Role, role));
        foreach ((string type, string value) in extra)
        {
            identity.AddClaim(new Claim(type, value));
        }

        return new ClaimsPrincipal(identity);
    }

    /// <summary>The token a request carries, or null; the query parameter counts on the hub's paths only.</summary>
    internal static string? TokenOf(HttpRequest request)
    {
        string? authorization = request.Headers.Authorization;
        if (authorization is not null && authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return NonEmpty(authorization["Bearer ".Length..].Trim());
        }

        if (request.Headers["X-Api-Key"] is [{ } key])
        {
            return NonEmpty(key.Trim());
        }

        return request.Path.StartsWithSegments("/hubs", StringComparison.OrdinalIgnoreCase) && request.Query["access_token"] is [{ } query]
            ? NonEmpty(query)
            : null;
    }

    /// <summary>A connection from this machine; the in-memory test server has no addresses and counts as one.</summary>
    internal static bool IsLoopback(ConnectionInfo connection) =>
        connection.RemoteIpAddress is null || IPAddress.IsLoopback(connection.RemoteIpAddress);

    private static string? NonEmpty(string value) => value.Length == 0 ? null : value;
}
