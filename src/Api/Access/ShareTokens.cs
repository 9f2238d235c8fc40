using System.Globalization;
using System.Security.Cryptography;
using Microsoft.AspNetCore.DataProtection;

namespace TrainingService.Api.Access;

/// <summary>
/// The token in a share link: the link's id and expiry, encrypted and signed with ASP.NET Core Data Protection (keys in
/// the data folder's protection-keys/). A forged or altered token does not decrypt; an expired one says so; a revoked
/// one is refused by its record.
/// </summary>
public sealed class ShareTokens(IDataProtectionProvider protection)
{
    private readonly IDataProtector _protector = protection.CreateProtector("TrainingService.ShareLinks.v1");

    public string Create(Guid share, DateTime expiresAt) =>
        ApiKeys.SharePrefix + _protector.Protect(string.Create(CultureInfo.InvariantCulture, $"{share:N}|{expiresAt.Ticks}"));

    /// <summary>The link id and expiry a token carries, or null for one this service did not sign.</summary>
    public (Guid Share, DateTime ExpiresAt)? Read(string token)
    {
        if (!token.StartsWith(ApiKeys.SharePrefix, StringComparison.Ordinal) || token.Length > 1024)
        {
            return null;
        }

        try
        {
            string[] parts = _protector.Unprotect(token[ApiKeys.SharePrefix.Length..]).Split('|');
            return parts.Length == 2 && Guid.TryParseExact(parts[0], "N", out Guid share)
                && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out long ticks)
                && ticks is >= 0 and <= 3155378975999999999
                ? (share, new DateTime(ticks, DateTimeKind.Utc))
                : null;
        }
        catch (CryptographicException)
        {
            return null;
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
