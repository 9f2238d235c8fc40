using System.Collections.Concurrent;
using TrainingService.Training.Loop;

namespace TrainingService.Api.Jobs;

/// <summary>
/// A worker slot's own long-lived thread, on which its jobs train one after another. glibc gives a thread a malloc arena
/// for the thread's life, and an arena keeps the top of its heap (what a run freed last) resident, since the trim
/// threshold is kept high for speed and <c>malloc_trim</c> does not shrink other arenas' tops: with a new thread for each
/// job, jobs took the arenas in turn and each kept a job's worth of freed memory (100 short jobs: +40–55 MiB,
/// docs/benchmarks.md); on one thread per slot the next job reuses what the last one freed. A job that trains in halves
/// (two or more threads) uses the slot's second long-lived thread, <see cref="Halves"/>, for the same reason.
/// </summary>
internal sealed class TrainingThread : IDisposable
{
    private readonly BlockingCollection<Action> _work = [];
    private HalfBatches? _halves;

    public TrainingThread(string name)
    {
        var thread = new Thread(() =>
        {
            foreach (Action work in _work.GetConsumingEnumerable())
            {
                work();
            }

            _halves?.Dispose();
        })
        {
            IsBackground = true,
            Name = name,
        };
        thread.Start();
    }

    /// <summary>
    /// Runs <paramref name="work"/> on this thread, after what was given before it, in the caller's execution context (as
    /// a new thread would: the log context with the job's id flows in); its result or exception.
    /// </summary>
    public Task<T> RunAsync<T>(Func<T> work)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        ExecutionContext? context = ExecutionContext.Capture();
        void Run()
        {
            try
            {
                done.SetResult(work());
            }
            catch (Exception ex)
            {
                done.SetException(ex);
            }
        }

        _work.Add(() =>
        {
            if (context is null)
            {
                Run();
            }
            else
            {
                ExecutionContext.Run(context, _ => Run(), null);
            }
        });
        return done.Task;
    }

    /// <summary>The slot's second thread for jobs trained in halves (its thread starts with the first such job); only the slot's work uses it.</summary>
    public HalfBatches Halves => _halves ??= new HalfBatches();

    /// <summary>No more work: the thread ends once what it was given is done.</summary>
    public void Dispose() => _work.CompleteAdding();
}
