using System.Globalization;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using TrainingService.Api.Infrastructure;
using TrainingService.Api.Persistence;
using TrainingService.Api.Streaming;
using TrainingService.Contracts.Access;

namespace TrainingService.Api.Access;

/// <summary>What the access handlers need, as one parameter.</summary>
public sealed record AccessServices(TrainingDb Db, Caller Caller, IOptions<AuthOptions> Auth, TimeProvider Clock, HubConnections Connections);

/// <summary>/me, /users (admin) and /keys: who is calling, accounts, and API keys (shown once, stored hashed, revocable).</summary>
public static class AccessApi
{
    public const string CreateKeyOperation = "CreateKey";
    public const string CreateUserOperation = "CreateUser";

    public static RouteGroupBuilder MapAccess(this IEndpointRouteBuilder endpoints)
    {
        RouteGroupBuilder app = endpoints.MapGroup("");
        app.MapGet("/me", Me).WithTags("Access").WithName("GetMe").AllowViewers()
            .WithSummary("Who the caller is: user, role (admin, user, or viewer for a share link) and the key in use");

        RouteGroupBuilder users = app.MapGroup("/users").WithTags("Access").RequireAuthorization(AccessSetup.Admin).WithJsonBodyLimit();
        users.MapGet("/", ListUsers).WithName("ListUsers").WithSummary("Every user (admin only)");
        users.MapPost("/", CreateUser).WithName(CreateUserOperation)
            .WithSummary("Create a user (admin only) and their first API key, shown in this answer only");
        users.MapDelete("/{id}", RemoveUser).WithName("RemoveUser")
            .WithSummary("Remove a user (admin only): their keys stop working at once; their jobs, datasets and models stay, visible to admins");

        RouteGroupBuilder keys = app.MapGroup("/keys").WithTags("Access").WithJsonBodyLimit();
        keys.MapGet("/", ListKeys).WithName("ListKeys").WithSummary("Your API keys (an admin may pass userId): names, first characters, last use; never the keys");
        keys.MapPost("/", CreateKey).WithName(CreateKeyOperation)
            .WithSummary("A new API key for you (an admin may name userId); the key is in this answer only: the service keeps its SHA-256");
        keys.MapDelete("/{id:guid}", RevokeKey).WithName("RevokeKey").WithSummary("Revoke a key: requests with it are refused from now on");
        return app;
    }

    public static async Task<Ok<MeView>> Me(HttpContext context, TrainingDb db, IOptions<AuthOptions> auth, CancellationToken cancellationToken)
    {
        Caller caller = Caller.From(context);
        string mode = auth.Value.Mode == AuthMode.Open ? "open" : "keys";
        if (caller.IsViewer)
        {
            return TypedResults.Ok(new MeView(context.User.FindFirst(System.Security.Claims.ClaimTypes.NameIdentifier)!.Value, "viewer", Caller.ViewerRole, null, caller.SharedJob, mode));
        }

        KeyRef? key = null;
        if (Guid.TryParse(context.User.FindFirst(Caller.KeyClaim)?.Value, out Guid keyId))
        {
            key = await db.ApiKeys.Where(k => k.Id == keyId).Select(k => new KeyRef(k.Id, k.Name)).FirstOrDefaultAsync(cancellationToken);
        }

        return TypedResults.Ok(new MeView(caller.Owner, context.User.Identity!.Name!, caller.Role, key, null, mode));
    }

    public static async Task<Ok<UserView[]>> ListUsers(TrainingDb db, CancellationToken cancellationToken) =>
        TypedResults.Ok(await db.Users.AsNoTracking().OrderBy(u => u.CreatedAt)
            .Select(u => new UserView(u.Id, u.Name, u.Role, u.CreatedAt, u.DisabledAt)).ToArrayAsync(cancellationToken));

    public static async Task<Results<Created<CreatedUser>, ValidationProblem, ProblemHttpResult>> CreateUser(
        CreateUserRequest request, [AsParameters] AccessServices services, CancellationToken cancellationToken)
    {
        var errors = new Dictionary<string, string[]>();
        if (NameError(request.Name, services.Auth.Value.MaxNameLength) is { } nameError)
        {
            errors["name"] = [nameError];
        }

        string role = request.Role ?? Caller.UserRole;
        if (role is not (Caller.AdminRole or Caller.UserRole))
        {
            errors["role"] = [$"role must be \"admin\" or \"user\", got \"{Shown(role)}\""];
        }

        if (errors.Count > 0)
        {
            return Problems.Invalid(errors, "The user cannot be created");
        }

        string name = request.Name!.Trim();
        TrainingDb db = services.Db;
        await using var write = await db.Database.BeginTransactionAsync(cancellationToken);
        if (await db.Users.AnyAsync(u => u.Name == name, cancellationToken))
        {
            return Problems.Conflict($"There is already a user named {name}.");
        }

        int max = services.Auth.Value.MaxUsers;
        if (await db.Users.CountAsync(cancellationToken) >= max)
        {
            return Limit("Auth:MaxUsers", $"There are {max:N0} users, the limit (configuration Auth:MaxUsers), removed ones included.");
        }

        DateTime now = services.Clock.GetUtcNow().UtcDateTime;
        var user = new UserRecord { Id = "u" + Guid.CreateVersion7().ToString("N"), Name = name, Role = role, CreatedAt = now };
        db.Users.Add(user);
        (ApiKeyRecord record, string secret) = NewKey(user.Id, "first key", now);
        db.ApiKeys.Add(record);
        await db.SaveChangesAsync(cancellationToken);
        await write.CommitAsync(cancellationToken);
        return TypedResults.Created($"/users/{user.Id}", new CreatedUser(View(user), Created(record, secret)));
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> RemoveUser(string id, [AsParameters] AccessServices services, CancellationToken cancellationToken)
    {
        if (id == services.Caller.Owner)
        {
            return Problems.Conflict("You cannot remove yourself: another admin can (so there is always one).");
        }

        DateTime now = services.Clock.GetUtcNow().UtcDateTime;
        int removed = await services.Db.Users.Where(u => u.Id == id && u.DisabledAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(u => u.DisabledAt, now), cancellationToken);
        if (removed == 0)
        {
            return await services.Db.Users.AnyAsync(u => u.Id == id, cancellationToken)
                ? Problems.Conflict($"User {Shown(id)} is already removed.")
                : Problems.NotFound("id", $"There is no user {Shown(id)}.");
        }

        await services.Db.ApiKeys.Where(k => k.UserId == id && k.RevokedAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(k => k.RevokedAt, now), cancellationToken);
        services.Connections.Revoke(System.Security.Claims.ClaimTypes.NameIdentifier, id);
        return TypedResults.NoContent();
    }

    public static async Task<Results<Ok<KeyView[]>, ProblemHttpResult>> ListKeys(
        [AsParameters] AccessServices services, string? userId = null, CancellationToken cancellationToken = default)
    {
        if (Whose(services.Caller, userId) is not { } owner)
        {
            return Problems.NotFound("userId", $"There is no user {Shown(userId!)}.");
        }

        return TypedResults.Ok(await services.Db.ApiKeys.AsNoTracking().Where(k => k.UserId == owner).OrderBy(k => k.CreatedAt)
            .Select(k => new KeyView(k.Id, k.Name, k.Prefix, k.UserId, k.CreatedAt, k.LastUsedAt, k.RevokedAt)).ToArrayAsync(cancellationToken));
    }

    public static async Task<Results<Created<CreatedKey>, ValidationProblem, ProblemHttpResult>> CreateKey(
        CreateKeyRequest request, [AsParameters] AccessServices services, CancellationToken cancellationToken)
    {
        if (NameError(request.Name, services.Auth.Value.MaxNameLength) is { } nameError)
        {
            return Problems.Invalid(new Dictionary<string, string[]> { ["name"] = [nameError] }, "The key cannot be created");
        }

        TrainingDb db = services.Db;
        if (Whose(services.Caller, request.UserId) is not { } owner
            || !await db.Users.AnyAsync(u => u.Id == owner && u.DisabledAt == null, cancellationToken))
        {
            return Problems.NotFound("userId", $"There is no user {Shown(request.UserId ?? services.Caller.Owner)}.");
        }

        int max = services.Auth.Value.MaxKeysPerUser;
        await using var write = await db.Database.BeginTransactionAsync(cancellationToken);
        List<ApiKeyRecord> held = await db.ApiKeys.Where(k => k.UserId == owner).OrderBy(k => k.RevokedAt).ToListAsync(cancellationToken);
        if (held.Count(k => k.RevokedAt is null) >= max)
        {
            return Limit("Auth:MaxKeysPerUser", $"The user holds {max:N0} active keys, the limit (configuration Auth:MaxKeysPerUser); revoke one first.");
        }

        // Revoked keys stay listed (when, which) but not forever: past 2 × the limit the oldest revoked ones go.
        db.ApiKeys.RemoveRange(held.Where(k => k.RevokedAt is not null).Take(Math.Max(0, held.Count + 1 - 2 * max)));
        DateTime now = services.Clock.GetUtcNow().UtcDateTime;
        (ApiKeyRecord record, string secret) = NewKey(owner, request.Name!.Trim(), now);
        db.ApiKeys.Add(record);
        await db.SaveChangesAsync(cancellationToken);
        await write.CommitAsync(cancellationToken);
        return TypedResults.Created($"/keys/{record.Id}", Created(record, secret));
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> RevokeKey(Guid id, [AsParameters] AccessServices services, CancellationToken cancellationToken)
    {
        Caller caller = services.Caller;
        ApiKeyRecord? key = await services.Db.ApiKeys.FirstOrDefaultAsync(k => k.Id == id && (caller.IsAdmin || k.UserId == caller.Owner), cancellationToken);
        if (key is null)
        {
            return Problems.NotFound("id", $"There is no key {id}.");
        }

        if (key.RevokedAt is null)
        {
            key.RevokedAt = services.Clock.GetUtcNow().UtcDateTime;
            await services.Db.SaveChangesAsync(cancellationToken);
        }

        services.Connections.Revoke(Caller.KeyClaim, id.ToString());
        return TypedResults.NoContent();
    }

    /// <summary>Whose keys a request means: the caller's own, or (admin only) another user's; null for a user naming someone else.</summary>
    private static string? Whose(Caller caller, string? userId) =>
        userId is null || userId == caller.Owner ? caller.Owner : caller.IsAdmin ? userId : null;

    private static (ApiKeyRecord Record, string Secret) NewKey(string userId, string name, DateTime now)
    {
        string secret = ApiKeys.New();
        return (ApiKeys.Record(userId, name, secret, now), secret);
    }

    private static CreatedKey Created(ApiKeyRecord k, string secret) => new(k.Id, k.Name, k.Prefix, k.UserId, k.CreatedAt, secret);

    private static UserView View(UserRecord u) => new(u.Id, u.Name, u.Role, u.CreatedAt, u.DisabledAt);

    /// <summary>A name: 1 to max characters, no control characters.</summary>
    internal static string? NameError(string? name, int max) =>
        string.IsNullOrWhiteSpace(name) ? "name is required"
        : name.Trim().Length > max ? string.Create(CultureInfo.InvariantCulture, $"name must be at most {max} characters (configuration Auth:MaxNameLength), got {name.Length:N0}")
        : name.Any(char.IsControl) ? "name must not contain control characters"
        : null;

    internal static ProblemHttpResult Limit(string key, string detail) => TypedResults.Problem(
        detail, statusCode: StatusCodes.Status422UnprocessableEntity, title: "Over a limit", extensions: new Dictionary<string, object?> { ["limit"] = key });

    private static string Shown(string value) => value.Length <= 80 ? value : value[..80] + "…";
}
