namespace TrainingService.Api.Access;

public enum AuthMode
{
    /// <summary>Every request but the dashboard's files, health and Swagger needs an API key or, to watch a job, a share link.</summary>
    Keys,

    /// <summary>No keys: every request acts as the local admin. Allowed only while the service listens on loopback alone.</summary>
    Open,
}

/// <summary>Configuration section Auth.</summary>
public sealed class AuthOptions
{
    public AuthMode Mode { get; set; } = AuthMode.Keys;

    /// <summary>
    /// An admin key to accept (at least 32 characters), for deployments that set it from a secret; without it the first
    /// start creates one and writes it to the data folder's admin-key file. Empty counts as not set.
    /// </summary>
    public string? AdminKey { get; set; }

    /// <summary>Active keys one user may hold.</summary>
    public int MaxKeysPerUser { get; set; } = 20;

    /// <summary>Users, removed ones included.</summary>
    public int MaxUsers { get; set; } = 1000;

    /// <summary>Share links of one job that have not expired or been revoked.</summary>
    public int MaxSharesPerJob { get; set; } = 20;

    /// <summary>The longest a share link may live.</summary>
    public int MaxShareHours { get; set; } = 720;

    /// <summary>Names of users and keys.</summary>
    public int MaxNameLength { get; set; } = 64;
}
