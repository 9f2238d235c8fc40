using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using TrainingService.Api.Persistence;

namespace TrainingService.Api.Access;

/// <summary>Authentication (API keys, share links), the three authorization policies, and the admin's first key.</summary>
public static class AccessSetup
{
    /// <summary>A user with a key (or the local admin in open mode): every endpoint without another policy.</summary>
    public const string Account = "account";

    /// <summary>Account, or a share link's viewer: the routes a job's page reads, and the hub.</summary>
    public const string Watch = "watch";

    public const string Admin = "admin";

    public static IServiceCollection AddAccess(this IServiceCollection services)
    {
        services.AddOptions<AuthOptions>().BindConfiguration("Auth")
            .Validate(o => string.IsNullOrEmpty(o.AdminKey) || o.AdminKey.Length >= ApiKeys.MinConfiguredLength,
                $"Auth:AdminKey must be at least {ApiKeys.MinConfiguredLength} characters (a random key: `openssl rand -base64 32`)")
            .Validate(o => string.IsNullOrEmpty(o.AdminKey) || !o.AdminKey.StartsWith(ApiKeys.SharePrefix, StringComparison.Ordinal), $"Auth:AdminKey must not start with {ApiKeys.SharePrefix}")
            .Validate(o => o.MaxKeysPerUser > 0 && o.MaxUsers > 0 && o.MaxSharesPerJob > 0 && o.MaxShareHours > 0 && o.MaxNameLength > 0,
                "Auth: MaxKeysPerUser, MaxUsers, MaxSharesPerJob, MaxShareHours and MaxNameLength must be positive")
            .ValidateOnStart();
        services.TryAddSingleton(TimeProvider.System);
        services.AddAuthentication(ApiKeyHandler.SchemeName).AddScheme<Microsoft.AspNetCore.Authentication.AuthenticationSchemeOptions, ApiKeyHandler>(ApiKeyHandler.SchemeName, null);
        services.AddAuthorizationBuilder()
            .AddPolicy(Account, p => p.RequireAuthenticatedUser().RequireRole(Caller.AdminRole, Caller.UserRole))
            .AddPolicy(Watch, p => p.RequireAuthenticatedUser())
            .AddPolicy(Admin, p => p.RequireAuthenticatedUser().RequireRole(Caller.AdminRole))
            .SetFallbackPolicy(new AuthorizationPolicyBuilder().RequireAuthenticatedUser().RequireRole(Caller.AdminRole, Caller.UserRole).Build());

        // Share tokens are signed with Data Protection keys kept in the data folder, so links survive restarts (and
        // nodes that share the folder accept each other's).
        services.AddDataProtection().SetApplicationName("TrainingService");
        services.AddOptions<KeyManagementOptions>().Configure<IOptions<StorageOptions>, ILoggerFactory>((options, storage, logs) =>
        {
            var folder = new DirectoryInfo(Path.Combine(storage.Value.FullDataFolder, "protection-keys"));
            if (!folder.Exists)
            {
                if (OperatingSystem.IsWindows())
                {
                    folder.Create();
                }
                else
                {
                    Directory.CreateDirectory(folder.FullName, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                }
            }

            options.XmlRepository = new FileSystemXmlRepository(folder, logs);
        });
        services.AddSingleton<ShareTokens>();
        services.AddSingleton<AdminBootstrap>();
        services.AddScoped(sp => Caller.From(sp.GetRequiredService<IHttpContextAccessor>().HttpContext?.User));
        services.AddHttpContextAccessor();
        return services;
    }

    public static Task EnsureAdminAsync(this WebApplication app) =>
        app.Services.GetRequiredService<AdminBootstrap>().EnsureAdminAsync(app.Lifetime.ApplicationStopping);

    /// <summary>Endpoints a share link's viewer may use as well (the job they watch is enforced by <see cref="Visibility"/>).</summary>
    public static TBuilder AllowViewers<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.RequireAuthorization(Watch);
}
