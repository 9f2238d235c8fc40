using System.Security.Claims;
using TrainingService.Api.Persistence;

namespace TrainingService.Api.Access;

/// <summary>
/// Whom a request acts for: a user (by API key, or the local admin in open mode) or a share link's viewer. Records a
/// user creates get <see cref="Owner"/>; what a caller may see is decided here and only here (<see cref="Visibility"/>).
/// </summary>
public sealed record Caller(string Owner, string Role, Guid? SharedJob = null)
{
    public const string AdminRole = "admin";
    public const string UserRole = "user";
    public const string ViewerRole = "viewer";

    /// <summary>The claim naming the shared job of a viewer.</summary>
    public const string SharedJobClaim = "trainingservice:job";

    /// <summary>The claim naming the API key (its record's id) a user signed in with.</summary>
    public const string KeyClaim = "trainingservice:key";

    /// <summary>The claim naming the share link a viewer came with.</summary>
    public const string ShareClaim = "trainingservice:share";

    public bool IsAdmin => Role == AdminRole;

    public bool IsViewer => SharedJob is not null;

    /// <summary>No one: what a request without a principal (none reaches a handler) would be.</summary>
    public static readonly Caller Nobody = new("", ViewerRole, Guid.Empty);

    public static Caller From(ClaimsPrincipal? user)
    {
        if (user?.Identity is not { IsAuthenticated: true })
        {
            return Nobody;
        }

        string role = user.FindFirstValue(ClaimTypes.Role) ?? UserRole;
        if (role == ViewerRole)
        {
            return Guid.TryParse(user.FindFirstValue(SharedJobClaim), out Guid job) ? new("", ViewerRole, job) : Nobody;
        }

        return new(user.FindFirstValue(ClaimTypes.NameIdentifier) ?? "", role);
    }

    public static Caller From(HttpContext context) => From(context.User);
}

/// <summary>The records a caller may see: an admin all, a user their own, a viewer the shared job only.</summary>
public static class Visibility
{
    public static IQueryable<JobRecord> VisibleTo(this IQueryable<JobRecord> jobs, Caller caller) =>
        caller.SharedJob is Guid shared ? jobs.Where(j => j.Id == shared)
        : caller.IsAdmin ? jobs
        : jobs.Where(j => j.Owner == caller.Owner);

    public static IQueryable<DatasetRecord> VisibleTo(this IQueryable<DatasetRecord> datasets, Caller caller) =>
        caller.IsViewer ? datasets.Where(_ => false)
        : caller.IsAdmin ? datasets
        : datasets.Where(d => d.Owner == caller.Owner);

    public static IQueryable<SweepRecord> VisibleTo(this IQueryable<SweepRecord> sweeps, Caller caller) =>
        caller.IsViewer ? sweeps.Where(_ => false)
        : caller.IsAdmin ? sweeps
        : sweeps.Where(s => s.Owner == caller.Owner);

    public static IQueryable<ModelRecord> VisibleTo(this IQueryable<ModelRecord> models, Caller caller) =>
        caller.IsViewer ? models.Where(_ => false)
        : caller.IsAdmin ? models
        : models.Where(m => m.Owner == caller.Owner);
}
