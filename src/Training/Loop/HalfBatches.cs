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
/// "Two half-batches at once"). A caller that trains job after job on one thread (the service's worker slots) keeps
/// one of these beside it and hands it to each Trainer (<see cref="TrainerOptions.Halves"/>): glibc gives a thread a
/// malloc arena for life, and a new thread per job would take the arenas in turn, each keeping a job's freed memory.
/// </summary>
public sealed class HalfBatches : IDisposable
{
    private Thread? _thread; // started by the first work: a worker slot whose jobs never split has none
    private int _threads = 1;
    private int _applied;
    private readonly SemaphoreSlim _go = new(0);
    private readonly SemaphoreSlim _done = new(0);
    private Action? _work;
    private Exception? _fault;
    private volatile bool _stopping;

    /// <summary>This thread's libtorch intra-op threads, from the next work on (1 unless set).</summary>
    public int Threads
    {
        get => _threads;
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            _threads = value;
        }
    }

    /// <summary>Frees the last work's tensors now rather than at the next work's start (a job is over).</summary>
    public void Release()
    {
        if (_thread is not null)
        {
            Start(() => { });
            Wait();
        }
    }

    /// <summary>
    /// Runs <paramref name="work"/> on this thread; <see cref="Wait"/> waits for it. The tensors it makes live until the
    /// next work starts (or this is disposed), so the job's thread can read them after <see cref="Wait"/>.
    /// </summary>
    public void Start(Action work)
    {
        ObjectDisposedException.ThrowIf(_stopping, this);
        if (_thread is null)
        {
            _thread = new Thread(Loop) { IsBackground = true, Name = "training half" };
            _thread.Start();
        }

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
        if (_stopping)
        {
            return;
        }

        _stopping = true;
        _go.Release();
        _thread?.Join();
        _go.Dispose();
        _done.Dispose();
    }

    private void Loop()
    {
        _ = get_num_threads(); // as Trainer.Run: read before setting, so this thread's count is its own
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
                if (_threads != _applied)
                {
                    set_num_threads(_threads);
                    _applied = _threads;
                }

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
