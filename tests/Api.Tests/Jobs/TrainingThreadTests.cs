using TrainingService.Api.Jobs;

namespace TrainingService.Api.Tests.Jobs;

/// <summary>A worker slot's training thread: its jobs run one after another on the same thread, in the caller's context.</summary>
public sealed class TrainingThreadTests
{
    private static readonly AsyncLocal<string?> s_job = new();

    [Fact]
    public async Task WorkRunsInTurnOnOneLongLivedThreadInTheCallersContext()
    {
        using var thread = new TrainingThread("training slot test");
        var order = new List<int>();
        var threads = new HashSet<int>();
        var started = new ManualResetEventSlim();
        var release = new ManualResetEventSlim();
        Task<int> first = thread.RunAsync(() =>
        {
            started.Set();
            release.Wait(TimeSpan.FromSeconds(10));
            lock (order) { order.Add(1); }
            threads.Add(Environment.CurrentManagedThreadId);
            return 1;
        });
        Assert.True(started.Wait(TimeSpan.FromSeconds(10)));
        s_job.Value = "job-2"; // what the worker's log context is to a run: it flows in, as to a new thread
        Task<string?> second = thread.RunAsync<string?>(() =>
        {
            lock (order) { order.Add(2); }
            threads.Add(Environment.CurrentManagedThreadId);
            return s_job.Value;
        });
        Assert.False(second.IsCompleted); // waits for the first
        release.Set();
        Assert.Equal(1, await first);
        Assert.Equal("job-2", await second);
        Assert.Equal([1, 2], order);
        Assert.Single(threads);
        Assert.NotEqual(Environment.CurrentManagedThreadId, threads.Single());
        Assert.Equal("training slot test", await thread.RunAsync(() => Thread.CurrentThread.Name));
    }

    [Fact]
    public async Task AFailingRunFailsItsTaskAndTheThreadTrainsOn()
    {
        using var thread = new TrainingThread("training slot test");
        await Assert.ThrowsAsync<InvalidOperationException>(() => thread.RunAsync<int>(() => throw new InvalidOperationException("boom")));
        Assert.Equal(7, await thread.RunAsync(() => 7));
    }
}
