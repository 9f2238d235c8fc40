using System.Net;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using TrainingService.Api.Persistence;

namespace TrainingService.Api.Access;

/// <summary>
/// Secure by default without friction (as Jupyter does it): with no active admin key, the start creates one, writes it
/// to the data folder's admin-key file (readable by the service's user only) and, once the server listens, logs a
/// sign-in URL (<c>http://localhost:5000/#key=…</c>) that signs the dashboard in. Later starts log the URL again for
/// as long as that file holds a working key. <c>Auth:AdminKey</c> sets the key instead (no file).
/// </summary>
public sealed class AdminBootstrap(
    IServiceScopeFactory scopes,
    IOptions<AuthOptions> auth,
    IOptions<StorageOptions> storage,
    IServer server,
    IHostApplicationLifetime lifetime,
    ILogger<AdminBootstrap> logger,
    TimeProvider clock)
{
    public const string AdminName = "admin";
    public const string KeyFileName = "admin-key";

    private string? _signInKey;

    public string KeyFile => Path.Combine(storage.Value.FullDataFolder, KeyFileName);

    /// <summary>Before the server starts: the admin user and a working admin key exist.</summary>
    public async Task EnsureAdminAsync(CancellationToken cancellationToken)
    {
        if (auth.Value.Mode == AuthMode.Open)
        {
            lifetime.ApplicationStarted.Register(RefuseOpenBeyondLoopback);
            return;
        }

        await using AsyncServiceScope scope = scopes.CreateAsyncScope();
        TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
        DateTime now = clock.GetUtcNow().UtcDateTime;
        if (!await db.Users.AnyAsync(u => u.Id == Storage.DefaultOwner, cancellationToken))
        {
            db.Users.Add(new UserRecord { Id = Storage.DefaultOwner, Name = AdminName, Role = Caller.AdminRole, CreatedAt = now });
            await db.SaveChangesAsync(cancellationToken);
        }

        if (auth.Value.AdminKey is { Length: > 0 } configured)
        {
            string hash = ApiKeys.Hash(configured);
            ApiKeyRecord? existing = await db.ApiKeys.AsNoTracking().FirstOrDefaultAsync(k => k.Hash == hash, cancellationToken);
            if (existing is null)
            {
                db.ApiKeys.Add(ApiKeys.Record(Storage.DefaultOwner, "configured (Auth:AdminKey)", configured, now));
                await db.SaveChangesAsync(cancellationToken);
            }
            else if (existing.RevokedAt is not null)
            {
                logger.LogWarning("The key in Auth:AdminKey was revoked at {RevokedAt}; it stays revoked. Configure a new one.", existing.RevokedAt);
            }
        }

        bool working = await db.ApiKeys.Join(db.Users, k => k.UserId, u => u.Id, (k, u) => new { k.RevokedAt, u.Role, u.DisabledAt })
            .AnyAsync(x => x.RevokedAt == null && x.Role == Caller.AdminRole && x.DisabledAt == null, cancellationToken);
        if (!working)
        {
            string key = ApiKeys.New();
            db.ApiKeys.Add(ApiKeys.Record(Storage.DefaultOwner, "bootstrap (admin-key file)", key, now));
            await db.SaveChangesAsync(cancellationToken);
            await WriteKeyFileAsync(key, cancellationToken);
            _signInKey = key;
        }
        else if (string.IsNullOrEmpty(auth.Value.AdminKey) && File.Exists(KeyFile))
        {
            string key = (await File.ReadAllTextAsync(KeyFile, cancellationToken)).Trim();
            string hash = ApiKeys.Hash(key);
            bool valid = await db.ApiKeys.AnyAsync(k => k.Hash == hash && k.RevokedAt == null, cancellationToken);
            _signInKey = valid ? key : null;
        }

        if (_signInKey is not null)
        {
            lifetime.ApplicationStarted.Register(LogSignIn);
        }
    }

    private async Task WriteKeyFileAsync(string key, CancellationToken cancellationToken)
    {
        File.Delete(KeyFile);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        await using var file = new FileStream(KeyFile, options);
        await using var writer = new StreamWriter(file);
        await writer.WriteLineAsync(key.AsMemory(), cancellationToken);
    }

    private void LogSignIn()
    {
        string url = SignInBase() + "#key=" + _signInKey;
        logger.LogInformation(
            "Sign in to the dashboard by opening {SignInUrl} (the admin key is in {KeyFile}; send it as Authorization: Bearer <key> "
            + "or X-Api-Key, or use Swagger's Authorize button). Delete that file to stop this line.", url, KeyFile);
    }

    /// <summary>The first address the server listens on, as a browser on this machine reaches it.</summary>
    private string SignInBase()
    {
        string? address = server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault(a => a.StartsWith("http://", StringComparison.Ordinal))
            ?? server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();
        if (address is null || !Uri.TryCreate(address.Replace("://+", "://localhost").Replace("://*", "://localhost"), UriKind.Absolute, out Uri? uri))
        {
            return "http://localhost:5000/";
        }

        string host = uri.Host is "0.0.0.0" or "[::]" or "::" || IPAddress.TryParse(uri.Host.Trim('[', ']'), out IPAddress? ip) && (ip.Equals(IPAddress.Any) || ip.Equals(IPAddress.IPv6Any))
            ? "localhost"
            : uri.Host;
        return $"{uri.Scheme}://{host}:{uri.Port}/";
    }

    /// <summary>Auth:Mode=Open on an address other than loopback: the service stops (and serves no one meanwhile: the handler refuses non-loopback callers).</summary>
    private void RefuseOpenBeyondLoopback()
    {
        List<string> open = [.. (server.Features.Get<IServerAddressesFeature>()?.Addresses ?? []).Where(a => !IsLoopbackAddress(a))];
        if (open.Count > 0)
        {
            logger.LogCritical(
                "Auth:Mode=Open is allowed only while the service listens on loopback alone, but it listens on {Addresses}. "
                + "Remove Auth:Mode=Open (API keys are the default) or listen on 127.0.0.1/localhost only. Stopping.", string.Join(", ", open));
            Environment.ExitCode = 2;
            lifetime.StopApplication();
        }
        else
        {
            logger.LogWarning("Auth:Mode=Open: no API keys; every request from this machine acts as the admin.");
        }
    }

    internal static bool IsLoopbackAddress(string address)
    {
        if (!Uri.TryCreate(address.Replace("://+", "://0.0.0.0").Replace("://*", "://0.0.0.0"), UriKind.Absolute, out Uri? uri))
        {
            return false;
        }

        return uri.IsLoopback || (IPAddress.TryParse(uri.Host.Trim('[', ']'), out IPAddress? ip) && IPAddress.IsLoopback(ip));
    }
}
