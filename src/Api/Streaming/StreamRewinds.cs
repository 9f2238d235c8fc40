using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using TrainingService.Api.Persistence;
using TrainingService.Contracts.Streaming;
using TrainingService.Contracts.Training;

namespace TrainingService.Api.Streaming;

/// <summary>
/// Which events a viewer holds that a later run replaced. A run that resumes from a checkpoint behind the history
/// (its worker died, or lost its lease, after the checkpoint) drops the events after it and writes new ones under the
/// same seqs, beginning with its Running event; a viewer that was sent the old ones must drop them (Rewind). Live,
/// the truncation itself says so; a viewer that reconnects says which run its last state event came from, and every
/// later run that began at or before the seq it holds replaced what it holds from there.
/// </summary>
public static class StreamRewinds
{
    /// <summary>The filter of the partial index IX_JobEvents_States: the few rows this reads.</summary>
    public const string StatesFilter = "\"Kind\" = 'state'";

    /// <summary>
    /// The seq after which a viewer holding events up to <paramref name="heldSeq"/>, the last of its state events
    /// written by run <paramref name="attempt"/>, must drop what it holds; null if nothing it holds was replaced.
    /// </summary>
    /// <remarks>
    /// A history shorter than what the viewer holds was truncated too: the resumed run's truncation is committed before
    /// its first event (CI at df750d0: a viewer reconnecting between the two held events no run had replaced yet, and
    /// was never told). The history's end is read before its states, so a run that truncates and writes between the
    /// two reads is in the states read.
    /// </remarks>
    public static async Task<long?> PointAsync(TrainingDb db, Guid jobId, long heldSeq, int attempt, CancellationToken cancellationToken)
    {
        long persisted = await db.Jobs.AsNoTracking().Where(j => j.Id == jobId).Select(j => j.LastSeq).FirstOrDefaultAsync(cancellationToken);
        long? shorter = persisted < heldSeq ? persisted : null;
        List<string> states = await db.JobEvents.AsNoTracking()
            .Where(e => e.JobId == jobId && e.Kind == "state" && e.Seq <= heldSeq)
            .OrderBy(e => e.Seq).Select(e => e.Json).ToListAsync(cancellationToken);
        foreach (string json in states)
        {
            StreamEvent state = JsonSerializer.Deserialize<StreamEvent>(json, StreamJson.Options)!;
            if (state is { State: RunState.Running, Attempt: { } run } && run > attempt)
            {
                return Math.Min(state.Seq - 1, shorter ?? long.MaxValue); // this run's first event replaced everything from its seq on
            }
        }

        return shorter;
    }
}
