using Microsoft.AspNetCore.SignalR;
using Microsoft.EntityFrameworkCore;
using TrainingService.Api.Access;
using TrainingService.Api.Jobs;
using TrainingService.Api.Persistence;
using TrainingService.Contracts.Streaming;
using TrainingService.Contracts.Training;

namespace TrainingService.Api.Streaming;

/// <summary>
/// /hubs/training. A client calls Subscribe(jobId, afterSeq) and receives Events(jobId, events) with every event after
/// afterSeq — history first, then live — in seq order, with no gap and no duplicate; and Rewind(jobId, seq) when a run
/// resumed from a checkpoint replaced events it was sent (SubscribeAfter, on reconnecting). See docs/streaming.md.
/// </summary>
/// <remarks>
/// Every method acts for the connection's caller (its API key, or a share link's token, sent as access_token): a job
/// another user owns is "no job", as on REST; a share link's viewer may subscribe to its job and command nothing.
/// </remarks>
public sealed class TrainingHub(LiveEvents live, JobCommands commands, TrainingDb db) : Hub<ITrainingClient>
{
    /// <summary>Stream a job's events after <paramref name="afterSeq"/> (0: from the start).</summary>
    public async Task Subscribe(Guid jobId, long afterSeq)
    {
        (long persisted, int attempt) = await JobAsync(jobId);
        await live.SubscribeAsync(Context.ConnectionId, jobId, afterSeq, persisted, attempt);
    }

    /// <summary>
    /// Subscribe again after a dropped connection: <paramref name="afterSeq"/> is the last event held, <paramref name="attempt"/>
    /// the attempt of the last state event held. If a later run replaced any of the events held (the job's worker died
    /// meanwhile), Rewind says from where, before Events continues.
    /// </summary>
    public async Task SubscribeAfter(Guid jobId, long afterSeq, int attempt)
    {
        (long persisted, int current) = await JobAsync(jobId);
        // Every time, not only when the job's attempt read here is past the viewer's: the job may be claimed again
        // between that read and the subscription.
        await live.SubscribeAsync(Context.ConnectionId, jobId, afterSeq, persisted, current,
            afterSeq > 0 ? () => StreamRewinds.PointAsync(db, jobId, afterSeq, attempt, Context.ConnectionAborted) : null);
    }

    private async Task<(long LastSeq, int Attempt)> JobAsync(Guid jobId)
    {
        var job = await db.Jobs.VisibleTo(Caller).Where(j => j.Id == jobId).Select(j => new { j.LastSeq, j.Attempt })
            .FirstOrDefaultAsync(Context.ConnectionAborted);
        return job is null ? throw new HubException($"id: There is no job {jobId}.") : (job.LastSeq, job.Attempt);
    }

    public Task Unsubscribe(Guid jobId) => live.UnsubscribeAsync(Context.ConnectionId, jobId);

    /// <summary>As POST /jobs/{id}/pause; a refusal is a HubException naming the field and the reason, as for every command.</summary>
    public async Task Pause(Guid jobId) => (await commands.PauseAsync(Commander, jobId, Context.ConnectionAborted)).ThrowIfRefused();

    /// <summary>As POST /jobs/{id}/resume.</summary>
    public async Task Resume(Guid jobId) => (await commands.ResumeAsync(Commander, jobId, Context.ConnectionAborted)).ThrowIfRefused();

    /// <summary>As POST /jobs/{id}/cancel.</summary>
    public async Task Cancel(Guid jobId) => (await commands.CancelAsync(Commander, jobId, Context.ConnectionAborted)).ThrowIfRefused();

    /// <summary>As PATCH /jobs/{id}/hyperparameters.</summary>
    public async Task ChangeHyperparameters(Guid jobId, HyperparameterChange change) =>
        (await commands.ChangeHyperparametersAsync(Commander, jobId, change, Context.ConnectionAborted)).ThrowIfRefused();

    /// <summary>As POST /jobs/{id}/finish: finish now and keep the model.</summary>
    public async Task Finish(Guid jobId) => (await commands.FinishAsync(Commander, jobId, Context.ConnectionAborted)).ThrowIfRefused();

    private Caller Caller => Caller.From(Context.User);

    /// <summary>The caller, if they may command jobs: a share link's viewer may not.</summary>
    private Caller Commander => Caller is { IsViewer: false } caller
        ? caller
        : throw new HubException("A share link can watch its job, not command it.");

    public override Task OnDisconnectedAsync(Exception? exception) => live.DisconnectedAsync(Context.ConnectionId);
}
