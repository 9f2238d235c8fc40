using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using TrainingService.Contracts.Specs;
using TrainingService.Training.Data;

/// <summary>
/// Issue 15's memory targets, on the real service in a child process: one LeNet-5 job of 10 epochs over the whole
/// upload (validation 10%) with /proc/&lt;pid&gt;/status sampled every second — resident memory at each epoch's end, its
/// peak (VmHWM) and the growth from epoch 2 to the last but one — then what 20 more small datasets and 100 short jobs leave
/// behind once they are done.
/// </summary>
internal static class Memory
{
    private const double MiB = 1024 * 1024;

    /// <summary>
    /// With BENCH_GCDUMP="&lt;dotnet-gcdump&gt;;&lt;folder&gt;", the service's memory map, its threads' names and a heap dump
    /// before and after part two (`dotnet-gcdump report` lists what holds the managed heap). After the readings, so it does not skew them.
    /// </summary>
    private static async Task GcDumpAsync(int pid, string name)
    {
        if (Environment.GetEnvironmentVariable("BENCH_GCDUMP")?.Split(';') is not [string tool, string folder])
        {
            return;
        }

        File.Copy($"/proc/{pid}/smaps", Path.Combine(folder, $"memory-{name}.smaps"), overwrite: true);
        File.WriteAllLines(Path.Combine(folder, $"memory-{name}.threads"), Directory.GetDirectories($"/proc/{pid}/task").Select(t => File.ReadAllText(Path.Combine(t, "comm")).Trim()));
        using var dump = System.Diagnostics.Process.Start(tool, ["collect", "-p", pid.ToString(CultureInfo.InvariantCulture), "-o", Path.Combine(folder, $"memory-{name}.gcdump")]);
        await dump.WaitForExitAsync();
    }

    /// <summary>
    /// With BENCH_MALLOC_INFO=&lt;folder&gt;: glibc's malloc_info (every arena: in use, free, mapped) of the service before and
    /// after part two, written by the service itself through gdb (attached for a moment, after the readings).
    /// </summary>
    private static async Task MallocInfoAsync(int pid, string name)
    {
        if (Environment.GetEnvironmentVariable("BENCH_MALLOC_INFO") is not { Length: > 0 } folder)
        {
            return;
        }

        string path = Path.GetFullPath(Path.Combine(folder, $"malloc-{name}.xml"));
        using var gdb = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("gdb",
            ["-p", pid.ToString(CultureInfo.InvariantCulture), "-batch", "-ex", $"call (void*)fopen(\"{path}\", \"w\")", "-ex", "call (int)malloc_info(0, $1)", "-ex", "call (int)fclose($1)"])
            { RedirectStandardOutput = true, RedirectStandardError = true })!;
        await gdb.StandardOutput.ReadToEndAsync();
        await gdb.WaitForExitAsync();
    }

    public static async Task RunAsync(ImageDataset data, ModelSpec model, int epochs, int datasets, int jobs, int smallImages, int warmUpJobs)
    {
        // Creation rate and per-owner limits off: the bench's waves of jobs and back-to-back uploads are not what they guard against.
        using ServiceUnderTest service = await ServiceUnderTest.StartAsync(
            data, model, warmUpJobs, "--RateLimits:CreationsPerMinute", "1000000", "--RateLimits:CreationBurst", "1000000", "--Jobs:MaxActiveJobsPerOwner", "1000");
        int pid = service.Process.Id;
        await Task.Delay(TimeSpan.FromSeconds(5)); // the upload's and warm-up's garbage collected, their threads idle
        Status before = Status.Read(pid);
        bool peakReset = ResetPeak(pid);
        Console.WriteLine($"LeNet-5, {data.Train.Count} Fashion-MNIST images uploaded, {warmUpJobs} warm-up jobs of one epoch; batch 64, SGD, validation 10%, stats every 10 steps, 2 threads");
        bool serverGc = Directory.GetDirectories($"/proc/{pid}/task").Any(t => File.ReadAllText(Path.Combine(t, "comm")).StartsWith(".NET Server GC", StringComparison.Ordinal));
        Console.WriteLine($"The service runs {(serverGc ? "server" : "workstation")} GC. Before the job: {before}; {(peakReset ? "peak reset (clear_refs 5): VmHWM below is the job's own" : "peak NOT reset: VmHWM below includes start, upload and warm-up")}");

        using var sampler = new Sampler(pid);
        Guid job = await service.StartJobAsync(epochs, batch: 64, validationFraction: 0.1);
        var ends = new List<(int Epoch, Status At, ManagedHeap Heap, string Losses)>();
        string state = await FollowAsync(service, job, async (epoch, e) =>
        {
            Status at = Status.Read(pid);
            sampler.Enter(epoch + 1);
            ends.Add((epoch, at, await ManagedHeap.ReadAsync(service.Client), $"{e.GetProperty("trainLoss").GetRawText()} / {(e.TryGetProperty("validationLoss", out JsonElement v) ? v.GetRawText() : "–")}"));
        });
        Status ended = Status.Read(pid); // the weights saved, the run's objects let go of
        if (state != "Succeeded")
        {
            throw new InvalidOperationException($"the measured job ended {state}: {await service.Client.GetStringAsync(new Uri($"/jobs/{job}", UriKind.Relative))}");
        }

        Console.WriteLine();
        Console.WriteLine("| epoch | resident at its end MiB | anonymous MiB | of which the managed heap, committed MiB | file-backed MiB | peak so far (VmHWM) MiB | highest 1 s sample in the epoch MiB | train / validation loss (as stored) |");
        Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|---|");
        foreach ((int epoch, Status at, ManagedHeap heap, string losses) in ends)
        {
            Console.WriteLine(F($"| {epoch} | {at.Rss / MiB:F0} | {at.Anon / MiB:F0} | {ManagedHeap.Text(heap.Committed)} | {at.File / MiB:F0} | {at.Peak / MiB:F0} | {sampler.HighestIn(epoch) / MiB:F0} | {losses} |"));
        }

        var second = ends.First(e => e.Epoch == Math.Min(2, epochs));
        // The last epoch's end is also the job's: its reading can come after the run has given its memory back
        // (NativeTuning.ReleaseFreed), so growth is read up to the epoch before it.
        var final = ends.Count > 2 ? ends[^2] : ends[^1];
        double growth = 100.0 * (final.At.Rss - second.At.Rss) / second.At.Rss;

        // Part two: many finished jobs and datasets held. Jobs go in waves under the per-owner limit of active jobs.
        await Task.Delay(TimeSpan.FromSeconds(10));
        Status settled = Status.Read(pid);
        ManagedHeap heapBefore = await ManagedHeap.ReadAsync(service.Client);
        await GcDumpAsync(pid, "before");
        await MallocInfoAsync(pid, "before");
        var small = new List<Guid>();
        for (int i = 0; i < datasets; i++)
        {
            small.Add(await service.UploadAsync(Slice(data, i * smallImages % Math.Max(1, data.Train.Count - smallImages), smallImages), $"small-{i}"));
        }

        for (int done = 0; done < jobs;)
        {
            int wave = Math.Min(10, jobs - done);
            Guid[] started = new Guid[wave];
            for (int i = 0; i < wave; i++)
            {
                started[i] = await service.StartJobAsync(epochs: 1, batch: 64, validationFraction: 0.1, datasetId: small[(done + i) % small.Count]);
            }

            foreach (Guid id in started)
            {
                string outcome = await FollowAsync(service, id, (_, _) => Task.CompletedTask);
                if (outcome != "Succeeded")
                {
                    throw new InvalidOperationException($"short job {id} ended {outcome}: {await service.Client.GetStringAsync(new Uri($"/jobs/{id}", UriKind.Relative))}");
                }
            }

            done += wave;
        }

        await Task.Delay(TimeSpan.FromSeconds(10));
        Status after = Status.Read(pid);
        ManagedHeap heapAfter = await ManagedHeap.ReadAsync(service.Client);
        await GcDumpAsync(pid, "after");
        await MallocInfoAsync(pid, "after");
        if (Environment.GetEnvironmentVariable("BENCH_GCDUMP") is not null)
        {
            await Task.Delay(TimeSpan.FromSeconds(3)); // the finalizers the dump's full collection queued have run
            Console.WriteLine($"After the heap dump's full collection: {Status.Read(pid)}");
            await GcDumpAsync(pid, "after-gc");
        }

        Console.WriteLine();
        Console.WriteLine($"Then {datasets} datasets of {smallImages} images uploaded and {jobs} jobs of one epoch on them (validation 10%), run to the end; 10 s settle before each reading");
        Console.WriteLine("| measure | before MiB | after MiB | added MiB |");
        Console.WriteLine("|---|---:|---:|---:|");
        Console.WriteLine(F($"| resident (VmRSS) | {settled.Rss / MiB:F1} | {after.Rss / MiB:F1} | {(after.Rss - settled.Rss) / MiB:F1} |"));
        Console.WriteLine(F($"| anonymous (RssAnon: managed heap, malloc arenas, tensors) | {settled.Anon / MiB:F1} | {after.Anon / MiB:F1} | {(after.Anon - settled.Anon) / MiB:F1} |"));
        Console.WriteLine(F($"| file-backed (RssFile: code and mapped files) | {settled.File / MiB:F1} | {after.File / MiB:F1} | {(after.File - settled.File) / MiB:F1} |"));
        Console.WriteLine(F($"| managed heap, live after the last GC (service /metrics) | {ManagedHeap.Text(heapBefore.Live)} | {ManagedHeap.Text(heapAfter.Live)} | {ManagedHeap.Difference(heapBefore.Live, heapAfter.Live)} |"));
        Console.WriteLine(F($"| managed heap, committed by the GC (service /metrics) | {ManagedHeap.Text(heapBefore.Committed)} | {ManagedHeap.Text(heapAfter.Committed)} | {ManagedHeap.Difference(heapBefore.Committed, heapAfter.Committed)} |"));

        Console.WriteLine();
        Console.WriteLine("| issue 15 target | measured | target | met |");
        Console.WriteLine("|---|---:|---:|---|");
        Console.WriteLine(F($"| peak resident (VmHWM) {(peakReset ? "during the job" : "since the start")} | {ended.Peak / MiB:F0} MiB ({ended.Peak / 1e6:F0} MB) | ≤ 600 MB | {(ended.Peak <= 600e6 ? "yes" : "no")} |"));
        Console.WriteLine(F($"| peak resident (VmHWM) at the end of part two | {after.Peak / MiB:F0} MiB | – | – |"));
        Console.WriteLine(F($"| growth of resident memory, epoch {second.Epoch} → {final.Epoch} | {Math.Round(growth, 1) + 0.0:+0.0;-0.0;0.0}% | ≤ 2% | {(growth <= 2 ? "yes" : "no")} |"));
        Console.WriteLine(F($"| {jobs} finished jobs + {datasets} datasets held | {(after.Rss - settled.Rss) / MiB:+0.0;-0.0} MiB ({(after.Rss - settled.Rss) / 1e6:+0.0;-0.0} MB) | < 50 MB | {(after.Rss - settled.Rss < 50e6 ? "yes" : "no")} |"));
        Summary.Add($"memory: peak resident (VmHWM) of the Fashion-MNIST LeNet-5 job, MB", ended.Peak / 1e6, "F0", "≤ 600", ended.Peak <= 600e6);
        Summary.Add($"memory: resident growth epoch {second.Epoch} → {final.Epoch}, %", Math.Round(growth, 1) + 0.0, "F1", "≤ 2", growth <= 2);
        Summary.Add($"memory: {jobs} finished jobs + {datasets} datasets held add, MB", (after.Rss - settled.Rss) / 1e6, "F1", "< 50", after.Rss - settled.Rss < 50e6);
    }

    private static string F(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    private static ImageDataset Slice(ImageDataset data, int from, int count) => data with
    {
        Train = new ImageSplit
        {
            Images = data.Train.Images[(from * data.SampleSize)..((from + count) * data.SampleSize)],
            Labels = data.Train.Labels[from..(from + count)],
        },
        Test = null,
    };

    /// <summary>
    /// Follows a job's history once a second until it ends, calling <paramref name="onEpoch"/> as each epoch event
    /// arrives (at most a second after the epoch's end); returns the final state.
    /// </summary>
    private static async Task<string> FollowAsync(ServiceUnderTest service, Guid job, Func<int, JsonElement, Task> onEpoch)
    {
        for (long seq = 0; ;)
        {
            await Task.Delay(TimeSpan.FromSeconds(1));
            JsonElement[] events = (await service.Client.GetFromJsonAsync<JsonElement[]>($"/jobs/{job}/events?afterSeq={seq}&limit=10000"))!;
            foreach (JsonElement e in events)
            {
                seq = e.GetProperty("seq").GetInt64();
                switch (e.GetProperty("kind").GetString())
                {
                    case "epoch":
                        await onEpoch(e.GetProperty("epoch").GetInt32(), e);
                        break;
                    case "state" when e.GetProperty("state").GetString() is { } ended && ended is "Succeeded" or "Failed" or "Cancelled":
                        return ended;
                }
            }
        }
    }

    /// <summary>Resets the process's VmHWM to its current resident size (Linux ≥ 4.0, the process's owner or root).</summary>
    private static bool ResetPeak(int pid)
    {
        try
        {
            File.WriteAllText($"/proc/{pid}/clear_refs", "5");
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Bytes from /proc/&lt;pid&gt;/status.</summary>
    private sealed record Status(long Rss, long Peak, long Anon, long File)
    {
        public static Status Read(int pid)
        {
            var kb = System.IO.File.ReadLines($"/proc/{pid}/status")
                .Select(l => l.Split(':', 2))
                .Where(p => p.Length == 2 && p[1].EndsWith(" kB", StringComparison.Ordinal))
                .ToDictionary(p => p[0], p => long.Parse(p[1].Trim()[..^3], CultureInfo.InvariantCulture) * 1024);
            return new Status(kb["VmRSS"], kb["VmHWM"], kb["RssAnon"], kb["RssFile"] + kb["RssShmem"]);
        }

        public override string ToString() =>
            F($"resident {Rss / MiB:F0} MiB (anonymous {Anon / MiB:F0}, file-backed {File / MiB:F0}), peak {Peak / MiB:F0} MiB");
    }

    /// <summary>Resident memory every second, the highest sample per epoch as the job's view reports it.</summary>
    private sealed class Sampler : IDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Dictionary<int, long> _highest = [];
        private readonly Task _loop;
        private int _epoch = 1;

        public Sampler(int pid) => _loop = LoopAsync(pid);

        public long HighestIn(int epoch)
        {
            lock (_highest)
            {
                return _highest.GetValueOrDefault(epoch);
            }
        }

        /// <summary>Samples from now on belong to <paramref name="epoch"/>.</summary>
        public void Enter(int epoch) => Volatile.Write(ref _epoch, epoch);

        private async Task LoopAsync(int pid)
        {
            using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                long rss = Status.Read(pid).Rss;
                int epoch = Volatile.Read(ref _epoch);
                lock (_highest)
                {
                    _highest[epoch] = Math.Max(_highest.GetValueOrDefault(epoch), rss);
                }
            }
        }

        public void Dispose()
        {
            _stop.Cancel();
            try
            {
                _loop.GetAwaiter().GetResult();
            }
            catch (OperationCanceledException)
            {
            }

            _stop.Dispose();
        }
    }

    /// <summary>
    /// The service's own figures of its managed heap (System.Runtime's metrics at /metrics): the live heap after the last
    /// collection (all generations) and the memory the GC had committed then.
    /// </summary>
    private sealed record ManagedHeap(double? Live, double? Committed)
    {
        public static async Task<ManagedHeap> ReadAsync(HttpClient client)
        {
            string[] lines = (await client.GetStringAsync(new Uri("/metrics", UriKind.Relative))).Split('\n');
            double? Sum(string metric)
            {
                double[] values = [.. lines.Where(l => l.StartsWith(metric + "{", StringComparison.Ordinal))
                    .Select(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture))];
                return values.Length > 0 ? values.Sum() : null;
            }

            return new ManagedHeap(Sum("dotnet_gc_last_collection_heap_size_bytes"), Sum("dotnet_gc_last_collection_memory_committed_size_bytes"));
        }

        public static string Difference(double? before, double? after) =>
            before is { } b && after is { } a ? F($"{(a - b) / MiB:+0.0;-0.0}") : "–";

        public static string Text(double? bytes) => bytes is { } b ? F($"{b / MiB:F1}") : "not exposed";
    }
}
