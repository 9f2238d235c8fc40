using System.Security.Cryptography;
using System.Text;

namespace TrainingService.Api.Access;

/// <summary>
/// API keys: "tsk_" and 32 random bytes in base64url (256 bits). Only a key's SHA-256 is stored: a key is random and
/// long, so a plain hash cannot be reversed by guessing (a slow password hash would only slow every request down).
/// </summary>
public static class ApiKeys
{
    public const string Prefix = "tsk_";

    /// <summary>Share tokens start with this; they are not keys.</summary>
    public const string SharePrefix = "tss_";

    /// <summary>A configured key (Auth:AdminKey) is at least this long, so it is not guessable either.</summary>
    public const int MinConfiguredLength = 32;

    public static string New() => Prefix + Base64Url(RandomNumberGenerator.GetBytes(32));

    /// <summary>The record kept of <paramref name="key"/>: its hash and first characters, never the key.</summary>
    public static Persistence.ApiKeyRecord Record(string userId, string name, string key, DateTime now) => new()
    {
        Id = Guid.CreateVersion7(),
        UserId = userId,
        Name = name,
        Prefix = Shown(key),
        Hash = Hash(key),
        CreatedAt = now,
    };

    public static string Hash(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    /// <summary>What a list shows of a key: its first 8 characters.</summary>
    public static string Shown(string key) => key[..Math.Min(8, key.Length)];

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
