namespace TrainingService.Contracts.Access;

/// <summary>Who the caller is. Role: "admin", "user", or "viewer" (a share link); authMode: "keys" or "open".</summary>
public sealed record MeView(string Id, string Name, string Role, KeyRef? Key, Guid? SharedJob, string AuthMode);

public sealed record KeyRef(Guid Id, string Name);

/// <summary>A user. Role: "admin" (manages users and keys, sees everything) or "user" (sees their own records).</summary>
public sealed record UserView(string Id, string Name, string Role, DateTime CreatedAt, DateTime? DisabledAt);

/// <summary>A new user; role "user" unless given.</summary>
public sealed record CreateUserRequest(string? Name, string? Role);

/// <summary>The new user and their first key; the key's secret is shown here only.</summary>
public sealed record CreatedUser(UserView User, CreatedKey Key);

/// <summary>An API key as listed: never the key itself, only its first characters.</summary>
public sealed record KeyView(Guid Id, string Name, string Prefix, string UserId, DateTime CreatedAt, DateTime? LastUsedAt, DateTime? RevokedAt);

/// <summary>A new key for the caller, or (admin only) for userId.</summary>
public sealed record CreateKeyRequest(string? Name, string? UserId);

/// <summary>A new key. Secret is the key: shown once, here; the service keeps only its hash.</summary>
public sealed record CreatedKey(Guid Id, string Name, string Prefix, string UserId, DateTime CreatedAt, string Secret);

/// <summary>A read-only link to watch a job; 24 hours unless expiresInHours says otherwise.</summary>
public sealed record CreateShareRequest(int? ExpiresInHours);

public sealed record ShareView(Guid Id, Guid JobId, DateTime CreatedAt, DateTime ExpiresAt);

/// <summary>A new share link: url opens the job's page for anyone who has it until it expires or is revoked; token is shown here only.</summary>
public sealed record CreatedShare(Guid Id, Guid JobId, DateTime CreatedAt, DateTime ExpiresAt, string Token, string Url);
