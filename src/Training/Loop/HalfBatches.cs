using System.Runtime.ExceptionServices;
using TorchSharp;
using static TorchSharp.torch;

namespace TrainingService.Training.Loop;

/// <summary>
/// A job's second training thread. With two or more intra-op threads, a step splits its batch into two halves whose
/// forward and backward passes run at once, one on the job's thread and one here, each with half the job's threads;
/// autograd adds the two halves' gradients into the shared parameters (a + b: the same sum whichever half ends first),
/// then the job's thread steps the optimiser. Two single-threaded passes that meet once a step keep two cores busier
/// than one pass whose every operation splits its work between two threads and waits for both (docs/benchmarks.md,
/// "Two half-batches at once").
/// </summary>
internal sealed class HalfBatches : IDisposable
{
    private readonly Thread _thread;
    private readonly int _threads;
    private readonly SemaphoreSlim _go = new(0);
    private readonly SemaphoreSlim _done = new(0);
    private Action? _work;
    private Exception? _fault;
    private volatile bool _stopping;

    /// <param name="threads">This thread's libtorch intra-op threads.</param>
    public HalfBatches(int threads)
    {
        _threads = threads;
        _thread = new Thread(Loop) { IsBackground = true, Name = "training half" };
        _thread.Start();
    }

    /// <summary>
    /// Runs <paramref name="work"/> on this thread; <see cref="Wait"/> waits for it. The tensors it makes live until the
    /// next work starts (or this is disposed), so the job's thread can read them after <see cref="Wait"/>.
    /// </summary>
    public void Start(Action work)
    {
        _work = work;
        _go.Release();
    }

    /// <summary>Waits for the work started last; an exception it threw is thrown here (or dropped: the caller has its own).</summary>
    public void Wait(bool rethrow = true)
    {
        _done.Wait();
        Exception? fault = _fault;
        _fault = null;
        if (fault is not null && rethrow)
        {
            ExceptionDispatchInfo.Throw(fault);
        }
    }

    public void Dispose()
    {
        _stopping = true;
        _go.Release();
        _thread.Join();
        _go.Dispose();
        _done.Dispose();
    }

    private void Loop()
    {
        _ = get_num_threads(); // as Trainer.Run: read before setting, so this thread's count is its own
        set_num_threads(_threads);
        DisposeScope? scope = null;
        while (true)
        {
            _go.Wait();
            scope?.Dispose(); // the last work's tensors: the job's thread has done with them
            scope = null;
            if (_stopping)
            {
                return;
            }

            try
            {
                scope = NewDisposeScope();
                _work!();
            }
            catch (Exception e)
            {
                _fault = e;
            }

            _done.Release();
        }
    }
}
