using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using TrainingService.Api.Infrastructure;
using TrainingService.Api.Persistence;
using TrainingService.Contracts.Access;

namespace TrainingService.Api.Access;

/// <summary>
/// Share links: a job's owner (or an admin) hands out a URL that opens that one job's page, read-only, until it expires
/// or is revoked. The token is signed (<see cref="ShareTokens"/>) and names a record, so revoking takes effect at once.
/// </summary>
public static class SharesApi
{
    public const string CreateOperation = "CreateJobShare";

    public static RouteGroupBuilder MapShares(this RouteGroupBuilder jobs)
    {
        jobs.MapPost("/{id:guid}/shares", Create).WithName(CreateOperation)
            .WithSummary("A read-only link to watch this job live (its page, history, pictures and stream; not its exports or controls), "
                + "valid expiresInHours (default 24); the link is in this answer only");
        jobs.MapGet("/{id:guid}/shares", List).WithName("ListJobShares").WithSummary("The job's share links that have not expired or been revoked (no tokens)");
        jobs.MapDelete("/{id:guid}/shares/{shareId:guid}", Revoke).WithName("RevokeJobShare").WithSummary("Revoke a share link: it stops working at once");
        return jobs;
    }

    public static async Task<Results<Created<CreatedShare>, ValidationProblem, ProblemHttpResult>> Create(
        Guid id, CreateShareRequest? request, HttpRequest http, ShareTokens tokens, [AsParameters] AccessServices services, CancellationToken cancellationToken)
    {
        int maxHours = services.Auth.Value.MaxShareHours;
        int hours = request?.ExpiresInHours ?? 24;
        if (hours < 1 || hours > maxHours)
        {
            return Problems.Invalid(new Dictionary<string, string[]>
            {
                ["expiresInHours"] = [$"expiresInHours must be 1..{maxHours} (configuration Auth:MaxShareHours), got {hours}"],
            }, "The share link cannot be created");
        }

        TrainingDb db = services.Db;
        if (!await db.Jobs.VisibleTo(services.Caller).AnyAsync(j => j.Id == id, cancellationToken))
        {
            return Problems.NoSuchJob(id);
        }

        DateTime now = services.Clock.GetUtcNow().UtcDateTime;
        int max = services.Auth.Value.MaxSharesPerJob;
        await using var write = await db.Database.BeginTransactionAsync(cancellationToken);
        await db.ShareLinks.Where(s => s.JobId == id && s.ExpiresAt <= now).ExecuteDeleteAsync(cancellationToken);
        if (await db.ShareLinks.CountAsync(s => s.JobId == id, cancellationToken) >= max)
        {
            return AccessApi.Limit("Auth:MaxSharesPerJob", $"Job {id} has {max:N0} share links that have not expired, the limit (configuration Auth:MaxSharesPerJob); revoke one first.");
        }

        var share = new ShareLinkRecord { Id = Guid.CreateVersion7(), JobId = id, CreatedBy = services.Caller.Owner, CreatedAt = now, ExpiresAt = now.AddHours(hours) };
        db.ShareLinks.Add(share);
        await db.SaveChangesAsync(cancellationToken);
        await write.CommitAsync(cancellationToken);

        string token = tokens.Create(share.Id, share.ExpiresAt);
        // The token travels in the fragment: browsers send neither it to the server nor it in a Referer.
        string url = $"{http.Scheme}://{http.Host}{http.PathBase}/#/jobs/{id}?share={token}";
        return TypedResults.Created($"/jobs/{id}/shares/{share.Id}", new CreatedShare(share.Id, id, share.CreatedAt, share.ExpiresAt, token, url));
    }

    public static async Task<Results<Ok<ShareView[]>, ProblemHttpResult>> List(Guid id, [AsParameters] AccessServices services, CancellationToken cancellationToken)
    {
        if (!await services.Db.Jobs.VisibleTo(services.Caller).AnyAsync(j => j.Id == id, cancellationToken))
        {
            return Problems.NoSuchJob(id);
        }

        DateTime now = services.Clock.GetUtcNow().UtcDateTime;
        return TypedResults.Ok(await services.Db.ShareLinks.AsNoTracking().Where(s => s.JobId == id && s.ExpiresAt > now).OrderBy(s => s.CreatedAt)
            .Select(s => new ShareView(s.Id, s.JobId, s.CreatedAt, s.ExpiresAt)).ToArrayAsync(cancellationToken));
    }

    /// <summary>The record goes: a token naming no record is refused as revoked, and the job's slot is free again.</summary>
    public static async Task<Results<NoContent, ProblemHttpResult>> Revoke(Guid id, Guid shareId, [AsParameters] AccessServices services, CancellationToken cancellationToken)
    {
        if (!await services.Db.Jobs.VisibleTo(services.Caller).AnyAsync(j => j.Id == id, cancellationToken))
        {
            return Problems.NoSuchJob(id);
        }

        if (await services.Db.ShareLinks.Where(s => s.Id == shareId && s.JobId == id).ExecuteDeleteAsync(cancellationToken) == 0)
        {
            return Problems.NotFound("shareId", $"Job {id} has no share link {shareId}.");
        }

        services.Connections.Revoke(Caller.ShareClaim, shareId.ToString()); // viewers watching now stop too
        return TypedResults.NoContent();
    }
}
