using Microsoft.AspNetCore.Http.HttpResults;
using TrainingService.Contracts.Jobs;

namespace TrainingService.Api.Infrastructure;

/// <summary>Listings newest first in pages: limit (1..200) and after, the last id of the page before.</summary>
internal static class Paging
{
    public const int DefaultLimit = 50;

    public const int MaxLimit = 200;

    public static ProblemHttpResult? Refuse(int limit) =>
        limit is >= 1 and <= MaxLimit ? null : Problems.Invalid("limit", $"limit must be 1..{MaxLimit}, got {limit}");

    public static ProblemHttpResult NoSuchCursor(Guid after, string what) =>
        Problems.Invalid("after", $"after names no {what} ({after}): pass the next value of the page before");

    /// <summary>The page of <paramref name="fetched"/> (up to limit + 1 rows: one more means there is a next page).</summary>
    public static Page<T> Of<T>(List<T> fetched, int limit, Func<T, Guid> id) =>
        fetched.Count > limit ? new Page<T>(fetched.GetRange(0, limit), id(fetched[limit - 1])) : new Page<T>(fetched, null);
}
