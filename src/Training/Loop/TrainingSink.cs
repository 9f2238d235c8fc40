using TrainingService.Contracts.Training;

namespace TrainingService.Training.Loop;

/// <summary>
/// Where the trainer reports. Called on the training thread: implementations must return quickly. The sink numbers
/// the events (the trainer does not).
/// </summary>
public interface ITrainingSink
{
    void Publish(TrainingEvent trainingEvent);

    /// <summary>
    /// Called before a checkpoint is written: returns, once every event published so far is durable, the seq of the
    /// last one, which the checkpoint records so that a run resumed from it continues the sequence with no gap.
    /// </summary>
    long Flush();

    /// <summary>
    /// Called when a new checkpoint or final model is complete on disk, just before it replaces the last one: throws
    /// when this run may no longer write the job's files (in the service: its worker lost the job's lease).
    /// </summary>
    void BeforeReplacingFiles()
    {
    }
}

/// <summary>A person's commands to a running job: pause, resume, cancel, finish early, change hyperparameters. Obeyed between steps.</summary>
public sealed class TrainingControl : IDisposable
{
    private readonly ManualResetEventSlim _running = new(initialState: true);
    private readonly System.Collections.Concurrent.ConcurrentQueue<HyperparameterChange> _changes = new();
    private volatile bool _cancelRequested;
    private volatile bool _finishRequested;
    private volatile bool _snapshotRequested;

    public bool PauseRequested => !_running.IsSet;

    /// <summary>
    /// A pause checkpoints and ends the run (<see cref="TrainingOutcome.Paused"/>) instead of waiting on its thread for
    /// a resume: the service frees the worker, and whichever worker takes the job next continues from the checkpoint.
    /// </summary>
    public bool PauseEndsRun { get; init; }

    public bool CancelRequested => _cancelRequested;

    /// <summary>Early stop: finish now and keep the model (the run ends Succeeded with its weights).</summary>
    public bool FinishRequested => _finishRequested;

    /// <summary>New hyperparameter values, applied before the next step (in the order given).</summary>
    public void Change(HyperparameterChange change) => _changes.Enqueue(change);

    /// <summary>Pictures of what the network sees now (filters, feature maps), taken before the next step.</summary>
    public void RequestSnapshot() => _snapshotRequested = true;

    internal bool TakeSnapshotRequest()
    {
        bool requested = _snapshotRequested;
        _snapshotRequested = false;
        return requested;
    }

    public void Finish()
    {
        _finishRequested = true;
        _running.Set();
    }

    internal bool TryTakeChange(out HyperparameterChange change) => _changes.TryDequeue(out change!);

    /// <summary>Pause before the next step; a sweep gives why (<paramref name="reason"/>) and a code (asha-rung). The first pause's words win.</summary>
    public void Pause(string? reason = null, string? code = null)
    {
        if (_running.IsSet)
        {
            PauseReason = reason;
            PauseCode = code;
        }

        _running.Reset();
    }

    public void Resume()
    {
        PauseReason = null;
        PauseCode = null;
        _running.Set();
    }

    /// <summary>Why the run is paused, when the pauser said.</summary>
    public string? PauseReason { get; private set; }

    public string? PauseCode { get; private set; }

    /// <summary>Stop for good after the current step; a sweep gives why (<paramref name="reason"/>) and a code (asha-cut, diverged, sweep-cancelled).</summary>
    public void Cancel(string? reason = null, string? code = null)
    {
        if (!_cancelRequested)
        {
            CancelReason = reason;
            CancelCode = code;
        }

        _cancelRequested = true;
        _running.Set();
    }

    /// <summary>Why the run was cancelled, when the canceller said (the first cancel's words win).</summary>
    public string? CancelReason { get; private set; }

    public string? CancelCode { get; private set; }

    public void Dispose() => _running.Dispose();

    /// <summary>Blocks while paused; false when <paramref name="stop"/> fired first.</summary>
    internal bool WaitWhilePaused(CancellationToken stop)
    {
        try
        {
            _running.Wait(stop);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}

/// <summary>How a run ended.</summary>
public enum TrainingOutcome
{
    /// <summary>All epochs done.</summary>
    Succeeded,

    /// <summary>A person cancelled it.</summary>
    Cancelled,

    /// <summary>The host is stopping: a checkpoint was written and the run can resume from it.</summary>
    Interrupted,

    /// <summary>A diagnosis stopped it (NaN or infinity); the last checkpoint, from before, is kept.</summary>
    Failed,

    /// <summary>Paused with <see cref="TrainingControl.PauseEndsRun"/>: a checkpoint was written at the pause.</summary>
    Paused,
}
