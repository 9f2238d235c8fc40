using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR.Client;
using TrainingService.Contracts.Specs;
using TrainingService.Training.Data;
using static Stats;

/// <summary>
/// Issue 14's "Measure": the scaled-out shape, each node a real process on this machine — a real PostgreSQL 15
/// (initdb/pg_ctl on loopback), a real redis-server, one api node and worker nodes sharing one data folder. Measures
/// dispatch, steering and cancel latency as the api node's hub reports them, the time to resume after a worker is
/// killed (at two lease lengths), one worker with two jobs against two workers with one job each, and the events per
/// second one api node forwards to one viewer with three workers training.
/// </summary>
/// <remarks>
/// The PostgreSQL and Redis servers and the node process are small copies of the tests' PostgresServer, RedisServer
/// and ServiceProcess (tests/Api.Tests), trimmed; the bench does not reference the test project.
/// </remarks>
internal static class ScaleOut
{
    private const string AdminKey = ServiceUnderTest.AdminKey;
    private static readonly JsonSerializerOptions s_json = new(JsonSerializerDefaults.Web);

    public static async Task RunAsync(ImageDataset data, ModelSpec model, string[] args)
    {
        int Option(string name, int fallback)
        {
            int i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
        }

        int samples = Option("--samples", 20), kills = Option("--kills", 3), rounds = Option("--rounds", 3);
        string[] parts = args.Contains("--only") ? args[(Array.IndexOf(args, "--only") + 1)].Split(',') : ["latency", "kill", "throughput", "events"];
        string root = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"trainingservice-scalebench-{Guid.NewGuid():N}")).FullName; // 755 under the usual umask: postgres runs as its own user
        Console.WriteLine($"load average at start: {File.ReadAllText("/proc/loadavg").Trim()}");
        Console.WriteLine($"LeNet-5 on {data.Train.Count} Fashion-MNIST training images (IDX upload), batch 64 unless said, stats every 10 steps; nodes: dotnet processes of src/Api, PostgreSQL 15, redis-server, all on loopback");
        try
        {
            await using var postgres = await Postgres.StartAsync(Path.Combine(root, "pg"));
            await using var redis = await RedisProcess.StartAsync(root);
            string dataFolder = Path.Combine(root, "data");
            Directory.CreateDirectory(dataFolder);
            string[] shared = ["--Database:Provider", "postgres", "--ConnectionStrings:Postgres", postgres.ConnectionString, "--ConnectionStrings:Redis", redis.ConnectionString];
            // A job's intra-op thread count is fixed when it is created, from the Jobs settings of the node that creates it
            // (JobsApi.Create: Options.JobThreads), not the worker's. api-1 creates jobs of 1 thread (the bench's cases);
            // api-2 has the defaults (one thread per core over Jobs:Concurrency 1: 2 here), for the throughput case "as deployed".
            using Node api = await Node.StartAsync(dataFolder, [.. shared, "--Role", "api", "--Telemetry:Node", "api-1", "--Jobs:ThreadsPerJob", "1"]);
            using Node api2 = await Node.StartAsync(dataFolder, [.. shared, "--Role", "api", "--Telemetry:Node", "api-2"]);
            Guid dataset = await UploadAsync(api.Client, data);
            var cluster = new Cluster(api, dataFolder, shared, dataset, model, data.Train.Count) { DefaultThreadsApi = api2 };
            if (parts.Contains("latency"))
            {
                await LatencyAsync(cluster, samples);
            }

            if (parts.Contains("kill"))
            {
                foreach (int lease in new[] { 30, 6 })
                {
                    await KillAsync(cluster, lease, kills);
                }
            }

            if (parts.Contains("throughput"))
            {
                await ThroughputAsync(cluster, rounds, Option("--window", 15), Option("--warm", 20), args.Contains("--configs") ? args[Array.IndexOf(args, "--configs") + 1].Split(',') : ["A", "B", "A2", "B2"]);
            }

            if (parts.Contains("events"))
            {
                await EventsAsync(cluster, 64, Option("--seconds", 30), header: true);
                await EventsAsync(cluster, 8, Option("--seconds", 30), header: false);
            }
        }
        finally
        {
            Console.WriteLine($"load average at end: {File.ReadAllText("/proc/loadavg").Trim()}");
            Directory.Delete(root, recursive: true);
        }
    }

    // ---- dispatch, steering and cancel latency ----

    private static async Task LatencyAsync(Cluster cluster, int samples)
    {
        using Node w1 = await cluster.WorkerAsync("lat-w1");
        using Node w2 = await cluster.WorkerAsync("lat-w2");
        await using var viewer = await Viewer.StartAsync(cluster.Api);
        var random = new Random(14);
        List<double> dispatch = [], dispatchServer = [], steer = [], steerStep = [], cancel = [];
        Console.WriteLine();
        Console.WriteLine($"### Latency: 1 api node, 2 idle workers (Jobs:Concurrency 1, Jobs:ThreadsPerJob 1), Jobs:ClaimPollMilliseconds 1000, Jobs:CommandPollMilliseconds 250 (defaults)");
        Console.WriteLine("Times from the HTTP response on the api node to the event's receipt by a SignalR viewer connected to the api node (WebSockets, no negotiation).");
        Console.WriteLine("| sample | worker | POST → Running received, ms | of which POST → Running event's time (worker clock), ms | PATCH lr → hyperparameters event received, ms | PATCH → first step at the new lr received, ms | cancel → Cancelled received, ms |");
        Console.WriteLine("|---:|---|---:|---:|---:|---:|---:|");
        // Warm-up samples, not counted, until each worker has run a job (its first loads the dataset and JIT-compiles).
        var warmed = new HashSet<string>();
        int warmups = 0;
        for (int i = int.MinValue; i < samples; i = i < 0 && (warmups < 3 || warmed.Count < 2) && warmups < 12 ? int.MinValue : Math.Max(i, -1) + 1)
        {
            await Task.Delay(300 + random.Next(1000)); // no phase lock with the workers' 1 s claim poll
            DateTime postedUtc = DateTime.UtcNow;
            Guid job = await cluster.PostJobAsync(epochs: 20, batch: 64);
            long posted = Stopwatch.GetTimestamp();
            postedUtc = postedUtc.AddTicks((DateTime.UtcNow - postedUtc).Ticks); // the response's time
            await viewer.SubscribeAsync(job);
            Received running = await viewer.WaitAsync(job, e => Kind(e) == "state" && e.GetProperty("state").GetString() == "Running", TimeSpan.FromSeconds(60));
            double toRunning = Ms(posted, running.At);
            double toRunningServer = (running.Event.GetProperty("time").GetDateTime() - postedUtc).TotalMilliseconds;
            await viewer.WaitAsync(job, e => Kind(e) == "step" && e.GetProperty("step").GetInt64() >= 20, TimeSpan.FromSeconds(60));
            string worker = (await cluster.Api.Client.GetFromJsonAsync<JsonElement>($"/jobs/{job}")).GetProperty("worker").GetString() ?? "?";

            if (i < 0)
            {
                warmups++;
                warmed.Add(worker);
            }

            double lr = 0.02 + (0.0001 * (i < 0 ? 1000 + warmups : i + 1));
            using (HttpResponseMessage patch = await cluster.Api.Client.PatchAsJsonAsync($"/jobs/{job}/hyperparameters", new { learningRate = lr, reason = "bench" }, s_json))
            {
                patch.EnsureSuccessStatusCode();
            }

            long patched = Stopwatch.GetTimestamp();
            Received changed = await viewer.WaitAsync(job, e => Kind(e) == "hyperparameters" && Math.Abs(e.GetProperty("learningRate").GetDouble() - lr) < 1e-12, TimeSpan.FromSeconds(30));
            Received stepAtLr = await viewer.WaitAsync(job, e => Kind(e) == "step" && e.TryGetProperty("learningRate", out JsonElement l) && Math.Abs(l.GetDouble() - lr) < 1e-12, TimeSpan.FromSeconds(30));
            await Task.Delay(random.Next(500)); // no phase lock with the worker's 250 ms command poll
            using (HttpResponseMessage cancelled = await cluster.Api.Client.PostAsync(new Uri($"/jobs/{job}/cancel", UriKind.Relative), null))
            {
                cancelled.EnsureSuccessStatusCode();
            }

            long cancelledAt = Stopwatch.GetTimestamp();
            Received end = await viewer.WaitAsync(job, e => Kind(e) == "state" && e.GetProperty("state").GetString() == "Cancelled", TimeSpan.FromSeconds(30));
            double toChange = Ms(patched, changed.At), toStep = Ms(patched, stepAtLr.At), toCancel = Ms(cancelledAt, end.At);
            Console.WriteLine(Inv($"| {(i < 0 ? $"warm-up {warmups}" : $"{i + 1}")} | {worker} | {toRunning:F0} | {toRunningServer:F0} | {toChange:F0} | {toStep:F0} | {toCancel:F0} |"));
            if (i >= 0)
            {
                dispatch.Add(toRunning);
                dispatchServer.Add(toRunningServer);
                steer.Add(toChange);
                steerStep.Add(toStep);
                cancel.Add(toCancel);
            }

            await viewer.UnsubscribeAsync(job);
        }

        Console.WriteLine();
        Console.WriteLine($"| {samples} samples | p50 ms | p90 ms | max ms | min ms |");
        Console.WriteLine("|---|---:|---:|---:|---:|");
        Summary("dispatch: POST /jobs response → Running received on the api node's hub", dispatch);
        Summary("  of which: POST response → Running event's time (claim, dataset, model set-up on the worker)", dispatchServer);
        Summary("steering: PATCH /jobs/{id}/hyperparameters response → hyperparameters event received", steer);
        Summary("steering: PATCH response → first step event at the new learning rate received", steerStep);
        Summary("cancel: POST /jobs/{id}/cancel response → Cancelled received", cancel);
    }

    // ---- resume after SIGKILL ----

    private static async Task KillAsync(Cluster cluster, int lease, int samples)
    {
        Console.WriteLine();
        Console.WriteLine($"### Resume after SIGKILL: Jobs:LeaseSeconds {lease} (renewed every {lease / 3.0:F0} s), 2 workers, Jobs:CheckpointEverySteps 500 (default; epoch ends checkpoint too: 200 steps an epoch here)");
        Console.WriteLine("Killed at step ≥ 230 (after the epoch-1 checkpoint at step 200). Takeover: GET /jobs/{id} on the api node polled every 50 ms until another worker holds the job. First step: the earliest step event in the history, after the kill, by its own time (the new worker's clock). Viewer: the first event with a seq beyond the job's lastSeq read on the api node just after the kill (what the dead worker had stored) (the resumed run re-trains the steps after the checkpoint under the same seqs; the viewer gets each seq once).");
        Console.WriteLine("| sample | killed | taken over by | kill → taken over, s | kill → first step of the new attempt, s | kill → viewer's next new seq, s | steps re-trained |");
        Console.WriteLine("|---:|---|---|---:|---:|---:|---:|");
        var nodes = new List<Node> { await cluster.WorkerAsync($"l{lease}-w1", lease), await cluster.WorkerAsync($"l{lease}-w2", lease) };
        int started = 2;
        List<double> takeovers = [], firstSteps = [], viewerSteps = [];
        await using var viewer = await Viewer.StartAsync(cluster.Api);
        try
        {
            for (int i = 0; i < samples; i++)
            {
                Guid job = await cluster.PostJobAsync(epochs: 20, batch: 64);
                await viewer.SubscribeAsync(job);
                await viewer.WaitAsync(job, e => Kind(e) == "step" && e.GetProperty("step").GetInt64() >= 230, TimeSpan.FromSeconds(120));
                string holder = (await cluster.Api.Client.GetFromJsonAsync<JsonElement>($"/jobs/{job}")).GetProperty("worker").GetString()!;
                Node victim = nodes.Single(n => n.Name == holder);
                DateTime killedUtc = DateTime.UtcNow;
                victim.Kill();
                long killed = Stopwatch.GetTimestamp();

                // What the dead worker had stored: its last committed events may still reach the viewer after the kill.
                long seenSeq = (await cluster.Api.Client.GetFromJsonAsync<JsonElement>($"/jobs/{job}")).GetProperty("lastSeq").GetInt64();
                long stepAtKill = (await cluster.HistoryAsync(job)).Where(e => Kind(e) == "step").Select(e => e.GetProperty("step").GetInt64()).DefaultIfEmpty(0).Max();
                string taker;
                while (true)
                {
                    JsonElement state = await cluster.Api.Client.GetFromJsonAsync<JsonElement>($"/jobs/{job}");
                    if (state.GetProperty("worker").GetString() is { } now && now != holder)
                    {
                        taker = now;
                        break;
                    }

                    if (Stopwatch.GetElapsedTime(killed) > TimeSpan.FromSeconds((lease * 3) + 30))
                    {
                        throw new InvalidOperationException($"not taken over in {Stopwatch.GetElapsedTime(killed)}: {state}");
                    }

                    await Task.Delay(50);
                }

                double takeover = Ms(killed, Stopwatch.GetTimestamp()) / 1000;
                Received next = await viewer.WaitAsync(job, e => e.GetProperty("seq").GetInt64() > seenSeq, TimeSpan.FromSeconds(120));
                JsonElement first = default;
                for (var waited = Stopwatch.StartNew(); first.ValueKind == JsonValueKind.Undefined; await Task.Delay(100))
                {
                    first = (await cluster.HistoryAsync(job)).FirstOrDefault(e => Kind(e) == "step" && e.GetProperty("time").GetDateTime() > killedUtc);
                    if (waited.Elapsed > TimeSpan.FromSeconds(60))
                    {
                        throw new InvalidOperationException("no step after the kill in the history");
                    }
                }

                double firstStep = (first.GetProperty("time").GetDateTime() - killedUtc).TotalSeconds;
                double viewerNext = Ms(killed, next.At) / 1000;
                long retrained = stepAtKill - first.GetProperty("step").GetInt64() + 1;
                Console.WriteLine(Inv($"| {i + 1} | {holder} | {taker} | {takeover:F2} | {firstStep:F2} | {viewerNext:F2} | {retrained} |"));
                takeovers.Add(takeover);
                firstSteps.Add(firstStep);
                viewerSteps.Add(viewerNext);
                await cluster.Api.Client.PostAsync(new Uri($"/jobs/{job}/cancel", UriKind.Relative), null);
                await viewer.WaitAsync(job, e => Kind(e) == "state" && e.GetProperty("state").GetString() == "Cancelled", TimeSpan.FromSeconds(30));
                await viewer.UnsubscribeAsync(job);
                nodes.Remove(victim);
                victim.Dispose();
                nodes.Add(await cluster.WorkerAsync($"l{lease}-w{++started}", lease)); // a new name: a node restarted under its old one takes its leases back at once
            }
        }
        finally
        {
            nodes.ForEach(n => n.Dispose());
        }

        Console.WriteLine();
        Console.WriteLine($"| lease {lease} s, {samples} samples | p50 s | max s | min s |");
        Console.WriteLine("|---|---:|---:|---:|");
        SummaryS("kill → another worker holds the job", takeovers);
        SummaryS("kill → first step of the new attempt (its event time)", firstSteps);
        SummaryS("kill → viewer on the api node gets a new seq", viewerSteps);
    }

    // ---- one worker, two jobs, against two workers, one job each ----

    private static async Task ThroughputAsync(Cluster cluster, int rounds, int window, int warm, string[] configs)
    {
        Console.WriteLine();
        Console.WriteLine($"### Throughput: 2 jobs, A = 1 worker with Jobs:Concurrency 2, B = 2 workers with Jobs:Concurrency 1 each, A1 = 1 worker with Jobs:Concurrency 1 and 2 threads per job (the second job queued: the single node's default), on {Environment.ProcessorCount} cores; jobs of 1 intra-op thread and of 2 (the workers' Jobs:ThreadsPerJob; before the worker decided, the creating api node did: api-1 with 1, api-2 with the defaults, 2 here)");
        Console.WriteLine($"Fresh worker processes each run (the dataset is in their shared local cache after the first). Both jobs are started, then a {window} s window is measured once both have trained for {warm} s and the workers' JIT compiler threads have gone quiet (under 0.02 of a core over 5 s; the warm-up column), then both are cancelled. Images: step events (64 images each) whose own time falls in the window, per job, over the window; sum of the two jobs. Worker cores: the worker processes' CPU time (and, of it, their \".NET Tiered Compilation\" threads', the JIT's background compiler) (user + system, /proc/pid/stat) in the window over the window. Machine busy: all CPUs (/proc/stat). Images per worker CPU-second: the sum's images over that CPU time.");
        Console.WriteLine("| round | config | threads per job | job 1 images/s | job 2 images/s | total images/s | worker cores | of which job threads | of which JIT compiler thread | machine busy | images per worker CPU-second | warm-up, s | load before → after |");
        Console.WriteLine("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        var totals = configs.ToDictionary(c => c, _ => new List<double>());
        var perCpus = configs.ToDictionary(c => c, _ => new List<double>());
        for (int round = 1; round <= rounds; round++)
        {
            // Even rounds run the configurations in reverse order, so neither always goes first on a machine that drifts.
            foreach (string config in round % 2 == 1 ? configs : configs.Reverse())
            {
                // A trailing "p": the workers run with OMP_WAIT_POLICY=PASSIVE (libgomp's threads sleep at once at a
                // barrier instead of spinning first).
                // A trailing "s": GOMP_SPINCOUNT=10000 (spin about that many rounds, a few microseconds, then sleep).
                string shape = config.TrimEnd('p', 's');
                Dictionary<string, string>? environment = config.EndsWith('p') ? new() { ["OMP_WAIT_POLICY"] = "PASSIVE" }
                    : config.EndsWith('s') ? new() { ["GOMP_SPINCOUNT"] = "10000" } : null;
                bool one = shape.StartsWith('A');
                // A1: the single node's defaults, one job at a time with a thread per core; the second job waits in the queue.
                bool queue = shape == "A1";
                // The worker that starts a job sets its threads (JobWorker.RunOnceAsync); the creating api node is kept as before.
                string[] threads = shape.EndsWith('2') || queue ? ["--Jobs:ThreadsPerJob", "2"] : [];
                List<Node> workers = one
                    ? [await cluster.WorkerAsync($"tp{round}-{config}", extra: ["--Jobs:Concurrency", queue ? "1" : "2", .. threads], environment: environment)]
                    : [.. await Task.WhenAll(cluster.WorkerAsync($"tp{round}-{config}-1", extra: threads, environment: environment), cluster.WorkerAsync($"tp{round}-{config}-2", extra: threads, environment: environment))];
                Node creator = shape.EndsWith('2') ? cluster.DefaultThreadsApi! : cluster.Api;
                try
                {
                    Guid[] jobs = [await cluster.PostJobAsync(500, 64, creator), await cluster.PostJobAsync(500, 64, creator)];
                    await cluster.WaitForStepsAsync(jobs, queue ? 1 : 2, TimeSpan.FromMinutes(3));

                    // Warm: at least `warm` s, then until the workers' JIT compiler threads have gone quiet (under 0.02 of a core
                    // over 5 s, at most 3 min more). A fresh worker compiles ~34,000 methods (ASP.NET Core, EF Core, Npgsql,
                    // SignalR, TorchSharp; tier 0, then tier 1 with PGO); two fresh workers compile them twice while sharing the
                    // cores with training, which a window of a long-lived worker pool would never see.
                    var warming = Stopwatch.StartNew();
                    await Task.Delay(TimeSpan.FromSeconds(warm));
                    for (double jitRate = double.MaxValue; jitRate > 0.02 && warming.Elapsed < TimeSpan.FromSeconds(warm + 180);)
                    {
                        double jit0 = workers.Sum(w => w.ThreadCpuSeconds(".NET Tiered"));
                        await Task.Delay(5000);
                        jitRate = (workers.Sum(w => w.ThreadCpuSeconds(".NET Tiered")) - jit0) / 5;
                    }

                    double warmed = warming.Elapsed.TotalSeconds;
                    string loadBefore = Load();
                    double cpuBefore = workers.Sum(w => w.CpuSeconds), jitBefore = workers.Sum(w => w.ThreadCpuSeconds(".NET Tiered")), jobBefore = workers.Sum(w => w.ThreadCpuSeconds("job "));
                    (long busyBefore, long totalBefore) = MachineTicks();
                    DateTime fromUtc = DateTime.UtcNow;
                    long from = Stopwatch.GetTimestamp();
                    await Task.Delay(TimeSpan.FromSeconds(window));
                    double cpu = workers.Sum(w => w.CpuSeconds) - cpuBefore, jit = workers.Sum(w => w.ThreadCpuSeconds(".NET Tiered")) - jitBefore, jobCpu = workers.Sum(w => w.ThreadCpuSeconds("job ")) - jobBefore;
                    DateTime toUtc = DateTime.UtcNow;
                    double seconds = Ms(from, Stopwatch.GetTimestamp()) / 1000;
                    (long busyAfter, long totalAfter) = MachineTicks();
                    string loadAfter = Load();
                    foreach (Guid job in jobs)
                    {
                        await cluster.Api.Client.PostAsync(new Uri($"/jobs/{job}/cancel", UriKind.Relative), null);
                    }

                    var perJob = new List<double>();
                    foreach (Guid job in jobs)
                    {
                        await cluster.WaitForStateAsync(job, "Cancelled", TimeSpan.FromMinutes(2));
                        int steps = (await cluster.HistoryAsync(job)).Count(e => Kind(e) == "step" && e.GetProperty("time").GetDateTime() is { } t && t >= fromUtc && t < toUtc);
                        perJob.Add(steps * 64 / (toUtc - fromUtc).TotalSeconds);
                    }

                    double total = perJob.Sum(), perCpu = total * seconds / cpu;
                    totals[config].Add(total);
                    perCpus[config].Add(perCpu);
                    Console.WriteLine(Inv($"| {round} | {config} | {(shape.EndsWith('2') || queue ? 2 : 1)} | {perJob[0]:F0} | {perJob[1]:F0} | {total:F0} | {cpu / seconds:F2} | {jobCpu / seconds:F2} | {jit / seconds:F2} | {(double)(busyAfter - busyBefore) / (totalAfter - totalBefore) * 100:F0}% | {perCpu:F0} | {warmed:F0} | {loadBefore} → {loadAfter} |"));
                }
                finally
                {
                    workers.ForEach(w => w.Dispose()); // idle: SIGKILL holds no lease
                }
            }
        }

        Console.WriteLine();
        Console.WriteLine("| one worker (A) against two (B) | A median total images/s | B median total images/s | median of per-round ratios B/A | A median images per worker CPU-s | B median images per worker CPU-s | median of per-round ratios B/A |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|");
        foreach ((string a, string b) in new[] { ("A", "B"), ("A1", "B"), ("A2", "B2"), ("A1", "A1p"), ("A2", "A2p"), ("B2", "B2p"), ("A1", "B2p"), ("A1", "A1s"), ("B2", "B2s"), ("A1", "B2s") })
        {
            if (!totals.ContainsKey(a) || !totals.ContainsKey(b))
            {
                continue;
            }

            Console.WriteLine(Inv($"| {a} / {b} | {Median(totals[a]):F0} | {Median(totals[b]):F0} | {Median([.. totals[b].Zip(totals[a], (y, x) => y / x)]):F3} | {Median(perCpus[a]):F0} | {Median(perCpus[b]):F0} | {Median([.. perCpus[b].Zip(perCpus[a], (y, x) => y / x)]):F3} |"));
        }
    }

    // ---- events one api node forwards ----

    private static async Task EventsAsync(Cluster cluster, int batch, int seconds, bool header)
    {
        List<Node> workers = [.. await Task.WhenAll(Enumerable.Range(1, 3).Select(i => cluster.WorkerAsync($"ev{batch}-w{i}", extra: ["--Jobs:Concurrency", "1", "--Jobs:ThreadsPerJob", "1"])))];
        try
        {
            await using var viewer = await Viewer.StartAsync(cluster.Api);
            Guid[] jobs = new Guid[3];
            for (int i = 0; i < 3; i++)
            {
                jobs[i] = await cluster.PostJobAsync(epochs: 50, batch);
                await viewer.SubscribeAsync(jobs[i]);
            }

            foreach (Guid job in jobs)
            {
                await viewer.WaitAsync(job, e => Kind(e) == "step", TimeSpan.FromMinutes(2));
            }

            // The window: all three training, the viewer caught up with their first steps.
            await Task.Delay(2000);
            string loadBefore = Load();
            double apiCpuBefore = cluster.Api.CpuSeconds;
            (long busyBefore, long totalBefore) = MachineTicks();
            long from = Stopwatch.GetTimestamp();
            await Task.Delay(TimeSpan.FromSeconds(seconds));
            long to = Stopwatch.GetTimestamp();
            double window = Ms(from, to) / 1000, apiCpu = cluster.Api.CpuSeconds - apiCpuBefore;
            (long busyAfter, long totalAfter) = MachineTicks();
            string loadAfter = Load();
            List<Received> inWindow = [.. jobs.SelectMany(viewer.All).Where(r => r.At >= from && r.At < to)];
            int[] perSecond = [.. Enumerable.Range(0, (int)window).Select(k => inWindow.Count(r => (int)(Ms(from, r.At) / 1000) == k))];
            int steps = inWindow.Count(r => Kind(r.Event) == "step");
            double lag = Percentile([.. inWindow.Where(r => Kind(r.Event) == "step").Select(r => (DateTime.UtcNow - Stopwatch.GetElapsedTime(r.At) - r.Event.GetProperty("time").GetDateTime()).TotalMilliseconds)], 0.5);

            var lastSeqs = new long[3];
            for (int i = 0; i < 3; i++)
            {
                await cluster.Api.Client.PostAsync(new Uri($"/jobs/{jobs[i]}/cancel", UriKind.Relative), null);
            }

            for (int i = 0; i < 3; i++)
            {
                lastSeqs[i] = (await cluster.WaitForStateAsync(jobs[i], "Cancelled", TimeSpan.FromMinutes(2))).GetProperty("lastSeq").GetInt64();
                long target = lastSeqs[i];
                try
                {
                    await viewer.WaitAsync(jobs[i], e => e.GetProperty("seq").GetInt64() == target, TimeSpan.FromSeconds(30));
                }
                catch (TimeoutException)
                {
                    // counted as missing below
                }
            }

            int missing = 0, duplicate = 0, outOfOrder = 0;
            long total = 0;
            for (int i = 0; i < 3; i++)
            {
                long[] seqs = [.. viewer.All(jobs[i]).Select(r => r.Event.GetProperty("seq").GetInt64())];
                total += seqs.Length;
                missing += (int)(lastSeqs[i] - seqs.Distinct().Count(s => s >= 1 && s <= lastSeqs[i]));
                duplicate += seqs.Length - seqs.Distinct().Count();
                outOfOrder += seqs.Zip(seqs.Skip(1)).Count(p => p.Second <= p.First);
            }

            if (header)
            {
                Console.WriteLine();
                Console.WriteLine($"### Events forwarded: 3 workers (Jobs:Concurrency 1, Jobs:ThreadsPerJob 1) each training one job, one viewer on the api node following all 3 from seq 0 over one WebSocket; a {seconds} s window once all 3 are training, then all 3 cancelled and the viewer's seqs checked against each job's lastSeq");
                Console.WriteLine("Lag: median of (receipt − the step event's own time) for step events in the window. Api node CPU: its process's CPU time in the window over the window.");
                Console.WriteLine("| batch | events in the window | of which steps | events/s | events received each second | step lag p50 ms | api node cores | machine busy | events checked (whole jobs) | missing seqs | duplicate seqs | out of order | load before → after |");
                Console.WriteLine("|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|");
            }

            Console.WriteLine(Inv($"| {batch} | {inWindow.Count} | {steps} | {inWindow.Count / window:F1} | {string.Join(" ", perSecond)} | {lag:F0} | {apiCpu / window:F2} | {(double)(busyAfter - busyBefore) / (totalAfter - totalBefore) * 100:F0}% | {total} | {missing} | {duplicate} | {outOfOrder} | {loadBefore} → {loadAfter} |"));
        }
        finally
        {
            workers.ForEach(w => w.Dispose());
        }
    }

    // ---- helpers ----

    private static string Load() => string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3));

    /// <summary>Busy and total jiffies of the whole machine (/proc/stat's cpu line; idle and iowait are not busy).</summary>
    private static (long Busy, long Total) MachineTicks()
    {
        long[] v = [.. File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Take(8).Select(x => long.Parse(x, CultureInfo.InvariantCulture))];
        long total = v.Sum();
        return (total - v[3] - v[4], total);
    }

    private static string Kind(JsonElement e) => e.GetProperty("kind").GetString()!;

    private static double Ms(long from, long to) => Stopwatch.GetElapsedTime(from, to).TotalMilliseconds;

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    private static double Percentile(List<double> values, double p) => Stats.Percentile([.. values.Order()], p);

    private static void Summary(string name, List<double> ms) =>
        Console.WriteLine(Inv($"| {name} | {Percentile(ms, 0.5):F0} | {Percentile(ms, 0.9):F0} | {ms.Max():F0} | {ms.Min():F0} |"));

    private static void SummaryS(string name, List<double> s) =>
        Console.WriteLine(Inv($"| {name} | {Percentile(s, 0.5):F2} | {s.Max():F2} | {s.Min():F2} |"));

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static async Task<Guid> UploadAsync(HttpClient client, ImageDataset data)
    {
        using var form = new MultipartFormDataContent
        {
            { new StringContent("bench-scale"), "name" },
            { new StringContent("idx"), "format" },
            { new ByteArrayContent(Idx(0x803, [data.Train.Count, data.Height, data.Width], data.Train.Images)), "images", "images.idx" },
            { new ByteArrayContent(Idx(0x801, [data.Train.Count], data.Train.Labels)), "labels", "labels.idx" },
        };
        using HttpResponseMessage created = await client.PostAsync(new Uri("/datasets", UriKind.Relative), form);
        created.EnsureSuccessStatusCode();
        return (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
    }

    private static byte[] Idx(int magic, int[] dimensions, byte[] payload)
    {
        var bytes = new byte[4 + (4 * dimensions.Length) + payload.Length];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(bytes, magic);
        for (int i = 0; i < dimensions.Length; i++)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + (4 * i)), dimensions[i]);
        }

        payload.CopyTo(bytes, 4 + (4 * dimensions.Length));
        return bytes;
    }

    private sealed class Cluster(Node api, string dataFolder, string[] shared, Guid dataset, ModelSpec model, int trainCount)
    {
        public Node Api => api;

        public Node? DefaultThreadsApi { get; init; }

        /// <summary>Waits until <paramref name="running"/> of the jobs have trained a step.</summary>
        public async Task WaitForStepsAsync(Guid[] jobs, int running, TimeSpan timeout)
        {
            for (var waited = Stopwatch.StartNew(); ; await Task.Delay(100))
            {
                int started = 0;
                foreach (Guid job in jobs)
                {
                    started += (await api.Client.GetFromJsonAsync<JsonElement>($"/jobs/{job}")).GetProperty("step").GetInt64() >= 1 ? 1 : 0;
                }

                if (started >= running)
                {
                    return;
                }

                if (waited.Elapsed > timeout)
                {
                    throw new InvalidOperationException($"only {started} of {jobs.Length} jobs have started, waiting for {running}");
                }
            }
        }

        public async Task WaitForStepAsync(Guid job, long step, TimeSpan timeout)
        {
            for (var waited = Stopwatch.StartNew(); ; await Task.Delay(100))
            {
                JsonElement current = await api.Client.GetFromJsonAsync<JsonElement>($"/jobs/{job}");
                if (current.GetProperty("step").GetInt64() >= step)
                {
                    return;
                }

                if (waited.Elapsed > timeout)
                {
                    throw new InvalidOperationException($"job {job} not at step {step}: {current}");
                }
            }
        }

        public int Steps(int batch) => (trainCount + batch - 1) / batch;

        public Task<Node> WorkerAsync(string name, int lease = 30, string[]? extra = null, Dictionary<string, string>? environment = null) =>
            Node.StartAsync(dataFolder, [.. shared, "--Role", "worker", "--Telemetry:Node", name, "--Jobs:LeaseSeconds", lease.ToString(CultureInfo.InvariantCulture),
                "--Jobs:Concurrency", "1", "--Jobs:ThreadsPerJob", "1", .. extra ?? []], name, environment);

        public async Task<Guid> PostJobAsync(int epochs, int batch, Node? creator = null)
        {
            var request = new
            {
                datasetId = dataset,
                model,
                hyperparameters = new { epochs, batchSize = batch, learningRate = 0.01, momentum = 0.9, validationFraction = 0.0 },
                monitoring = new { statsEvery = 10 },
            };
            using HttpResponseMessage response = await (creator ?? api).Client.PostAsJsonAsync("/jobs", request, s_json);
            if (!response.IsSuccessStatusCode)
            {
                throw new InvalidOperationException($"POST /jobs: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            }

            return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
        }

        public async Task<JsonElement> WaitForStateAsync(Guid job, string state, TimeSpan timeout)
        {
            for (var waited = Stopwatch.StartNew(); ; await Task.Delay(250))
            {
                JsonElement current = await api.Client.GetFromJsonAsync<JsonElement>($"/jobs/{job}");
                string now = current.GetProperty("state").GetString()!;
                if (now == state)
                {
                    return current;
                }

                if (now is "Failed" or "Cancelled" || waited.Elapsed > timeout)
                {
                    throw new InvalidOperationException($"job {job} is {now}, waiting for {state}: {current}");
                }
            }
        }

        public async Task<List<JsonElement>> HistoryAsync(Guid job)
        {
            List<JsonElement> all = [];
            while (true)
            {
                long after = all.Count == 0 ? 0 : all[^1].GetProperty("seq").GetInt64();
                JsonElement[] page = (await api.Client.GetFromJsonAsync<JsonElement[]>($"/jobs/{job}/events?afterSeq={after}&limit=1000"))!;
                all.AddRange(page);
                if (page.Length < 1000)
                {
                    return all;
                }
            }
        }
    }

    private readonly record struct Received(JsonElement Event, long At);

    /// <summary>One SignalR connection to the api node's hub (WebSockets, no negotiation, as the dashboard), recording each event's receipt time.</summary>
    private sealed class Viewer : IAsyncDisposable
    {
        private readonly HubConnection _connection;
        private readonly ConcurrentDictionary<Guid, List<Received>> _events = new();

        private Viewer(HubConnection connection)
        {
            _connection = connection;
            _connection.On<Guid, JsonElement[]>("Events", (job, events) =>
            {
                long at = Stopwatch.GetTimestamp();
                List<Received> list = _events.GetOrAdd(job, _ => []);
                lock (list)
                {
                    foreach (JsonElement e in events)
                    {
                        list.Add(new Received(e.Clone(), at));
                    }
                }
            });
        }

        public static async Task<Viewer> StartAsync(Node api)
        {
            HubConnection connection = new HubConnectionBuilder()
                .WithUrl(new Uri(api.Client.BaseAddress!, "/hubs/training"), o =>
                {
                    o.Transports = HttpTransportType.WebSockets;
                    o.SkipNegotiation = true;
                    o.AccessTokenProvider = () => Task.FromResult<string?>(AdminKey);
                })
                .Build();
            var viewer = new Viewer(connection);
            await connection.StartAsync();
            return viewer;
        }

        public async Task SubscribeAsync(Guid job)
        {
            _events.GetOrAdd(job, _ => []);
            await _connection.InvokeAsync("Subscribe", job, 0L);
        }

        public Task UnsubscribeAsync(Guid job) => _connection.InvokeAsync("Unsubscribe", job);

        public List<Received> All(Guid job)
        {
            List<Received> list = _events.GetOrAdd(job, _ => []);
            lock (list)
            {
                return [.. list];
            }
        }

        public long LastSeq(Guid job) => All(job).Select(r => r.Event.GetProperty("seq").GetInt64()).DefaultIfEmpty(0).Max();

        public long MaxStep(Guid job) => All(job).Where(r => Kind(r.Event) == "step").Select(r => r.Event.GetProperty("step").GetInt64()).DefaultIfEmpty(0).Max();

        /// <summary>The first event of the job matching <paramref name="match"/>, with the time it was received.</summary>
        public async Task<Received> WaitAsync(Guid job, Func<JsonElement, bool> match, TimeSpan timeout)
        {
            List<Received> list = _events.GetOrAdd(job, _ => []);
            for (var waited = Stopwatch.StartNew(); ; await Task.Delay(5))
            {
                lock (list)
                {
                    foreach (Received r in list)
                    {
                        if (match(r.Event))
                        {
                            return r;
                        }
                    }
                }

                if (waited.Elapsed > timeout)
                {
                    throw new TimeoutException($"job {job}: no matching event in {timeout} ({list.Count} received)");
                }
            }
        }

        public ValueTask DisposeAsync() => _connection.DisposeAsync();
    }

    /// <summary>The service in a child process on loopback (a trimmed copy of tests/Api.Tests/Jobs/ServiceProcess.cs); <see cref="Kill"/> is SIGKILL.</summary>
    private sealed class Node : IDisposable
    {
        private readonly Process _process;
        private readonly Queue<string> _log = new();

        private Node(Process process, HttpClient client, string name)
        {
            _process = process;
            Client = client;
            Name = name;
        }

        public HttpClient Client { get; }

        public string Name { get; }

        /// <summary>User + system CPU time of the process so far (all its threads), from /proc/pid/stat at 100 ticks a second.</summary>
        public double CpuSeconds
        {
            get
            {
                string stat = File.ReadAllText($"/proc/{_process.Id}/stat");
                string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
            }
        }

        /// <summary>CPU time so far of the process's threads whose name starts with <paramref name="prefix"/> (e.g. ".NET Tiered" for the JIT's background compiler).</summary>
        public double ThreadCpuSeconds(string prefix)
        {
            double sum = 0;
            foreach (string task in Directory.EnumerateDirectories($"/proc/{_process.Id}/task"))
            {
                try
                {
                    string stat = File.ReadAllText(Path.Combine(task, "stat"));
                    int open = stat.IndexOf('(', StringComparison.Ordinal), close = stat.LastIndexOf(')');
                    if (stat[(open + 1)..close].StartsWith(prefix, StringComparison.Ordinal))
                    {
                        string[] fields = stat[(close + 2)..].Split(' ');
                        sum += (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
                    }
                }
                catch (IOException)
                {
                    // the thread ended
                }
            }

            return sum;
        }

        public static async Task<Node> StartAsync(string dataFolder, string[] settings, string name = "api-1", Dictionary<string, string>? environment = null)
        {
            string configuration = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
            string dll = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../src/Api/bin", configuration, "net10.0/TrainingService.Api.dll"));
            string contentRoot = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../src/Api"));
            int port = FreePort();
            var start = new ProcessStartInfo("dotnet",
            [
                dll, "--contentRoot", contentRoot, "--urls", $"http://127.0.0.1:{port}", "--Storage:DataFolder", dataFolder, "--Auth:AdminKey", AdminKey,
                "--Serilog:MinimumLevel:Default", "Warning", "--RateLimits:RequestsPerMinute", "1000000", "--RateLimits:Burst", "1000000", .. settings,
            ])
            {
                WorkingDirectory = Path.GetDirectoryName(dll)!,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            foreach ((string key, string value) in environment ?? [])
            {
                start.Environment[key] = value;
            }

            if (Environment.GetEnvironmentVariable("BENCH_JIT_LOG") is { Length: > 0 } jitLog)
            {
                // Every method the node's JIT compiles, one line each with its tier (the runtime's JitDisasmSummary), to see what keeps compiling.
                start.Environment["DOTNET_JitDisasmSummary"] = "1";
                start.Environment["DOTNET_JitStdOutFile"] = Path.Combine(Directory.CreateDirectory(jitLog).FullName, $"{name}.txt");
            }

            Process process = Process.Start(start)!;
            var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromMinutes(5) };
            client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", AdminKey);
            var node = new Node(process, client, name);
            process.OutputDataReceived += (_, e) => node.Keep(e.Data);
            process.ErrorDataReceived += (_, e) => node.Keep(e.Data);
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            for (DateTime deadline = DateTime.UtcNow.AddSeconds(90); ; await Task.Delay(100))
            {
                try
                {
                    if ((await client.GetAsync(new Uri("/health/ready", UriKind.Relative))).StatusCode == HttpStatusCode.OK)
                    {
                        return node;
                    }
                }
                catch (HttpRequestException) when (!process.HasExited)
                {
                }

                if (DateTime.UtcNow > deadline || process.HasExited)
                {
                    throw new InvalidOperationException($"node {name} did not become ready:\n{node.RecentLog}");
                }
            }
        }

        public string RecentLog
        {
            get
            {
                lock (_log)
                {
                    return string.Join('\n', _log);
                }
            }
        }

        private void Keep(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (_log)
            {
                _log.Enqueue(line);
                if (_log.Count > 200)
                {
                    _log.Dequeue();
                }
            }
        }

        public void Kill()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit();
            }
        }

        public void Dispose()
        {
            Kill();
            Client.Dispose();
            _process.Dispose();
        }
    }

    /// <summary>PostgreSQL 15 (Debian's server binaries) on loopback, as the unprivileged user postgres when run as root (a trimmed copy of tests/Api.Tests/Postgres/PostgresServer.cs).</summary>
    private sealed class Postgres : IAsyncDisposable
    {
        private readonly string _folder;
        private readonly string _bin;
        private readonly int _port;

        private Postgres(string folder, string bin, int port)
        {
            _folder = folder;
            _bin = bin;
            _port = port;
        }

        public string ConnectionString => $"Host=127.0.0.1;Port={_port};Username=postgres;Database=bench;Timeout=30";

        public static async Task<Postgres> StartAsync(string folder)
        {
            string bin = Environment.GetEnvironmentVariable("PG_BIN") ?? Directory.GetDirectories("/usr/lib/postgresql").Select(v => Path.Combine(v, "bin"))
                .OrderByDescending(b => int.TryParse(Path.GetFileName(Path.GetDirectoryName(b)), out int version) ? version : 0)
                .First(b => File.Exists(Path.Combine(b, "initdb")));
            Directory.CreateDirectory(folder);
            if (IsRoot)
            {
                await RunAsync("chown", "postgres", folder);
            }

            var server = new Postgres(folder, bin, FreePort());
            await server.PgAsync("initdb", "-D", Path.Combine(folder, "data"), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync");
            await server.PgAsync("pg_ctl", "-D", Path.Combine(folder, "data"), "-l", Path.Combine(folder, "server.log"), "-w", "-t", "60",
                "-o", $"-c listen_addresses=127.0.0.1 -p {server._port} -k {folder} -c fsync=off -c synchronous_commit=off -c full_page_writes=off", "start");
            await server.PgAsync("createdb", "-h", "127.0.0.1", "-p", $"{server._port}", "-U", "postgres", "bench");
            Console.WriteLine($"PostgreSQL: {bin}, fsync off, synchronous_commit off (as the tests run it)");
            return server;
        }

        private static bool IsRoot => Environment.UserName == "root";

        private Task PgAsync(string tool, params string[] args) =>
            IsRoot ? RunAsync("runuser", ["-u", "postgres", "--", Path.Combine(_bin, tool), .. args]) : RunAsync(Path.Combine(_bin, tool), args);

        private static async Task RunAsync(string file, params string[] args)
        {
            using Process process = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = "/" })!;
            Task<string> output = process.StandardOutput.ReadToEndAsync(), error = process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync();
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited with {process.ExitCode}:\n{await output}\n{await error}");
            }
        }

        public async ValueTask DisposeAsync()
        {
            try
            {
                await PgAsync("pg_ctl", "-D", Path.Combine(_folder, "data"), "-m", "immediate", "-w", "stop");
            }
            catch (InvalidOperationException)
            {
            }
        }
    }

    /// <summary>redis-server on loopback, nothing saved (a trimmed copy of tests/Api.Tests/Redis/RedisServer.cs).</summary>
    private sealed class RedisProcess : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly int _port;

        private RedisProcess(Process process, int port)
        {
            _process = process;
            _port = port;
        }

        public string ConnectionString => $"127.0.0.1:{_port}";

        public static async Task<RedisProcess> StartAsync(string folder)
        {
            int port = FreePort();
            Process process = Process.Start(new ProcessStartInfo("redis-server", ["--port", $"{port}", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                WorkingDirectory = folder,
            })!;
            process.OutputDataReceived += (_, _) => { };
            process.ErrorDataReceived += (_, _) => { };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            for (var waited = Stopwatch.StartNew(); ; await Task.Delay(20))
            {
                try
                {
                    using var client = new TcpClient();
                    await client.ConnectAsync(IPAddress.Loopback, port);
                    return new RedisProcess(process, port);
                }
                catch (SocketException) when (waited.Elapsed < TimeSpan.FromSeconds(20) && !process.HasExited)
                {
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                _process.Kill();
            }

            await _process.WaitForExitAsync();
            _process.Dispose();
        }
    }
}
