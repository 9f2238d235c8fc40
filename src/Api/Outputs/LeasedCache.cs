namespace TrainingService.Api.Outputs;

/// <summary>
/// A bounded least-recently-used cache whose values are leased. A value that is evicted, replaced by a newer version
/// or left when the cache is disposed is disposed once its last lease ends, never under a request still using it.
/// Thread-safe.
/// </summary>
public sealed class LeasedCache<TKey, TValue> : IDisposable
    where TKey : notnull
    where TValue : class
{
    private readonly int _capacity;
    private readonly Lock _gate = new();
    private readonly Dictionary<TKey, LinkedListNode<Entry>> _entries = [];
    private readonly LinkedList<Entry> _recent = []; // most recently used first
    private long _disposed;

    public LeasedCache(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _capacity = capacity;
    }

    /// <summary>How many values the cache holds.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _entries.Count;
            }
        }
    }

    /// <summary>How many values have been let go of and disposed since the cache was made.</summary>
    public long Disposed => Interlocked.Read(ref _disposed);

    /// <summary>
    /// A lease on <paramref name="key"/>'s value at <paramref name="version"/>, loaded (outside the lock) when the cache
    /// holds none or an older version; null when <paramref name="load"/> finds nothing.
    /// </summary>
    public Lease? Rent<TVersion>(TKey key, TVersion version, Func<TValue?> load)
        where TVersion : notnull
    {
        ArgumentNullException.ThrowIfNull(load);
        lock (_gate)
        {
            if (_entries.TryGetValue(key, out LinkedListNode<Entry>? node) && node.Value.Version.Equals(version))
            {
                return Use(node);
            }
        }

        TValue? value = load();
        if (value is null)
        {
            return null;
        }

        var loaded = new Entry(this, key, version, value);
        var dropped = new List<Entry>();
        Lease lease;
        lock (_gate)
        {
            if (_entries.TryGetValue(key, out LinkedListNode<Entry>? node) && node.Value.Version.Equals(version))
            {
                dropped.Add(loaded); // another request loaded the same version meanwhile
                lease = Use(node);
            }
            else
            {
                if (node is not null)
                {
                    Remove(node, dropped);
                }

                lease = Use(_entries[key] = _recent.AddFirst(loaded));
                while (_entries.Count > _capacity)
                {
                    Remove(_recent.Last!, dropped);
                }
            }
        }

        dropped.ForEach(e => e.Release());
        return lease;
    }

    /// <summary>Lets go of <paramref name="key"/>'s value (disposed once its last lease ends); nothing when it holds none.</summary>
    public void Evict(TKey key)
    {
        var dropped = new List<Entry>();
        lock (_gate)
        {
            if (_entries.TryGetValue(key, out LinkedListNode<Entry>? node))
            {
                Remove(node, dropped);
            }
        }

        dropped.ForEach(e => e.Release());
    }

    public void Dispose()
    {
        List<Entry> all;
        lock (_gate)
        {
            all = [.. _recent];
            _recent.Clear();
            _entries.Clear();
        }

        all.ForEach(e => e.Release());
    }

    private Lease Use(LinkedListNode<Entry> node)
    {
        _recent.Remove(node);
        _recent.AddFirst(node);
        node.Value.AddRef();
        return new Lease(node.Value);
    }

    private void Remove(LinkedListNode<Entry> node, List<Entry> dropped)
    {
        _recent.Remove(node);
        _entries.Remove(node.Value.Key);
        dropped.Add(node.Value);
    }

    /// <summary>A value in use: dispose it to end the use.</summary>
    public sealed class Lease : IDisposable
    {
        private Entry? _entry;

        internal Lease(Entry entry) => _entry = entry;

        public TValue Value => (_entry ?? throw new ObjectDisposedException(nameof(Lease))).Value;

        public void Dispose() => Interlocked.Exchange(ref _entry, null)?.Release();
    }

    /// <summary>A cached value and its references: the cache's own while it holds it, and one per lease.</summary>
    internal sealed class Entry(LeasedCache<TKey, TValue> cache, TKey key, object version, TValue value)
    {
        private int _references = 1;

        public TKey Key => key;

        public object Version => version;

        public TValue Value => value;

        // Only while the cache holds the entry (under its lock), so the count is at least 1 and cannot come back from 0.
        public void AddRef() => Interlocked.Increment(ref _references);

        public void Release()
        {
            if (Interlocked.Decrement(ref _references) == 0)
            {
                (value as IDisposable)?.Dispose();
                Interlocked.Increment(ref cache._disposed);
            }
        }
    }
}
