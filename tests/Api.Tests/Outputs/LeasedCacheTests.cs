using TrainingService.Api.Outputs;

namespace TrainingService.Api.Tests.Outputs;

public sealed class LeasedCacheTests
{
    private sealed class Value : IDisposable
    {
        public bool IsDisposed { get; private set; }

        public void Dispose() => IsDisposed = !IsDisposed ? true : throw new InvalidOperationException("disposed twice");
    }

    [Fact]
    public void AnEvictedValueIsDisposedWhenItsLastLeaseEnds()
    {
        using var cache = new LeasedCache<int, Value>(2);
        LeasedCache<int, Value>.Lease held = cache.Rent(1, 0, () => new Value())!;
        cache.Rent(2, 0, () => new Value())!.Dispose();
        cache.Rent(3, 0, () => new Value())!.Dispose();

        Assert.Equal(2, cache.Count);
        Assert.False(held.Value.IsDisposed); // evicted while a request still uses it
        Value first = held.Value;
        held.Dispose();
        Assert.True(first.IsDisposed);
        Assert.Equal(1, cache.Disposed);
    }

    [Fact]
    public void ANewVersionReplacesTheOldAndTheSameVersionIsNotLoadedTwice()
    {
        using var cache = new LeasedCache<int, Value>(2);
        int loads = 0;
        Value Load()
        {
            loads++;
            return new Value();
        }

        LeasedCache<int, Value>.Lease a = cache.Rent(1, "v1", Load)!;
        using (LeasedCache<int, Value>.Lease again = cache.Rent(1, "v1", Load)!)
        {
            Assert.Same(a.Value, again.Value);
        }

        Value old = a.Value;
        a.Dispose();
        using LeasedCache<int, Value>.Lease b = cache.Rent(1, "v2", Load)!;
        Assert.Equal(2, loads);
        Assert.NotSame(old, b.Value);
        Assert.True(old.IsDisposed);
        Assert.Null(cache.Rent(4, "v1", () => null));
    }

    [Fact]
    public void LeasesFromManyThreadsLeaveNothingUndisposed()
    {
        var made = new System.Collections.Concurrent.ConcurrentBag<Value>();
        var cache = new LeasedCache<int, Value>(3);
        Parallel.For(0, 2000, i =>
        {
            using LeasedCache<int, Value>.Lease lease = cache.Rent(i % 7, i / 500, () =>
            {
                var v = new Value();
                made.Add(v);
                return v;
            })!;
            Assert.False(lease.Value.IsDisposed);
        });
        cache.Dispose();

        Assert.All(made, v => Assert.True(v.IsDisposed));
        Assert.Equal(made.Count, cache.Disposed);
    }
}
