using System.Buffers;
using System.Buffers.Text;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using TrainingService.Contracts.Specs;
using TrainingService.Training.Data;
using static Stats;

/// <summary>
/// Issue 15's fan-out: 4 jobs training at once on one node (Jobs:Concurrency 4, one thread each), first with no viewer,
/// then with <c>--viewers</c> SignalR viewers spread evenly over them, rounds alternating. The viewers live in a
/// separate process (this program's hidden <c>viewers</c> mode): raw WebSockets speaking SignalR's JSON protocol, as a
/// browser does, each subscribed from seq 0, reading only each event's seq, kind and time. Measured: the latency of every
/// step the server stamped within the window, from its end on the server (the event's time; one clock) to its receipt,
/// however late; the seqs each viewer got (every one of 1..lastSeq exactly once, in order); the jobs' total training
/// speed against the same jobs with no viewer; the viewers' own CPU and the bytes they received.
/// </summary>
internal static class FanOut
{
    private static readonly JsonSerializerOptions s_json = new(JsonSerializerDefaults.Web) { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public static async Task RunAsync(ImageDataset data, ModelSpec model, string[] args)
    {
        int viewers = Option(args, "--viewers", 500), jobs = Option(args, "--jobs", 4), rounds = Option(args, "--rounds", 2);
        int warm = Option(args, "--warm", 15), seconds = Option(args, "--seconds", 30);
        const int Batch = 64;
        using ServiceUnderTest service = await ServiceUnderTest.StartAsync(data, model, "--Jobs:Concurrency", jobs.ToString(CultureInfo.InvariantCulture));
        Console.WriteLine($"Fan-out: {jobs} LeNet-5 jobs at once on one node (Jobs:Concurrency {jobs}), batch {Batch}, stats every 10 steps, "
            + $"{data.Train.Count} Fashion-MNIST images; {viewers} viewers in a separate process; {warm} s warm, {seconds} s window, {rounds} rounds");
        var cases = new List<Case>();
        for (int round = 0; round < rounds; round++)
        {
            foreach (int count in round % 2 == 0 ? new[] { 0, viewers } : [viewers, 0])
            {
                Case measured = await MeasureAsync(service, jobs, count, Batch, warm, seconds);
                measured.Round = round + 1;
                cases.Add(measured);
                Console.WriteLine(measured.Row());
            }
        }

        List<double> ratios = [];
        for (int round = 1; round <= rounds; round++)
        {
            ratios.Add(cases.Single(c => c.Round == round && c.Viewers > 0).ImagesPerSecond / cases.Single(c => c.Round == round && c.Viewers == 0).ImagesPerSecond);
        }

        Console.WriteLine();
        Console.WriteLine("| round | viewers | jobs' images/s | steps received | p50 ms | p90 ms | p99 ms | max ms | events received | lost | duplicate | out of order | viewers' CPU, cores | received, MB/s |");
        Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (Case c in cases)
        {
            Console.WriteLine(c.Row());
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"jobs' images/s with {viewers} viewers ÷ with none, median of per-round ratios: {Median(ratios):F3} ({string.Join(" ", ratios.Select(r => r.ToString("F3", CultureInfo.InvariantCulture)))})"));
        List<ViewerReport> reports = [.. cases.Where(c => c.Report is not null).Select(c => c.Report!)];
        double worstP99 = reports.Max(r => r.P99);
        long wrong = reports.Sum(r => r.Lost + r.Duplicate + r.OutOfOrder + r.Incomplete);
        Summary.Add($"fan-out, {viewers} viewers of {jobs} jobs: step → viewer p99 ms (worst round)", worstP99, "F1", "< 250", worstP99 < 250);
        Summary.Add($"fan-out: lost, duplicate, out-of-order seqs and viewers left short", wrong, "F0", "0", wrong == 0);
        Summary.Add($"fan-out: the jobs' images/s with viewers ÷ without", Median(ratios), "F3", "≥ 0.9", Median(ratios) >= 0.9);
    }

    private sealed class Case
    {
        public int Round { get; set; }

        public int Viewers { get; init; }

        public double ImagesPerSecond { get; init; }

        public ViewerReport? Report { get; init; }

        public string Row() => Report is { } r
            ? string.Create(CultureInfo.InvariantCulture,
                $"| {Round} | {Viewers} | {ImagesPerSecond:F0} | {r.Steps:N0} | {r.P50:F1} | {r.P90:F1} | {r.P99:F1} | {r.Max:F1} | {r.Events:N0} | {r.Lost} | {r.Duplicate} | {r.OutOfOrder} | {r.CpuCores:F2} | {r.MegabytesPerSecond:F1} |")
            : string.Create(CultureInfo.InvariantCulture, $"| {Round} | 0 | {ImagesPerSecond:F0} | – | – | – | – | – | – | – | – | – | – | – |");
    }

    private static async Task<Case> MeasureAsync(ServiceUnderTest service, int jobCount, int viewers, int batch, int warm, int seconds)
    {
        var jobs = new List<Guid>();
        for (int i = 0; i < jobCount; i++)
        {
            jobs.Add(await service.StartJobAsync(epochs: 1000, batch, seed: i + 1));
        }

        foreach (Guid job in jobs)
        {
            while ((await JobAsync(service, job)).GetProperty("step").GetInt64() == 0)
            {
                await Task.Delay(100);
            }
        }

        using Process? generator = viewers > 0 ? StartViewers(service, jobs, viewers) : null;
        if (generator is not null)
        {
            string? line = await generator.StandardOutput.ReadLineAsync();
            if (line != "ready")
            {
                throw new InvalidOperationException($"the viewers' process did not start: {line} {await generator.StandardError.ReadToEndAsync()}");
            }
        }

        await Task.Delay(TimeSpan.FromSeconds(warm)); // the viewers catch up on the history; then live only
        generator?.StandardInput.WriteLine("measure");
        DateTime from = DateTime.UtcNow;
        await Task.Delay(TimeSpan.FromSeconds(seconds));
        DateTime to = DateTime.UtcNow;
        generator?.StandardInput.WriteLine("stop");
        // The steps stamped in the window arrive while the jobs still train as they did in it, not while four cancels
        // and their checkpoints are being written, which would stretch the window's last steps' latency.
        await Task.Delay(TimeSpan.FromSeconds(3));

        var final = new Dictionary<Guid, long>();
        foreach (Guid job in jobs)
        {
            (await service.Client.PostAsync(new Uri($"/jobs/{job}/cancel", UriKind.Relative), null)).EnsureSuccessStatusCode();
        }

        long steps = 0;
        foreach (Guid job in jobs)
        {
            JsonElement view;
            while ((view = await JobAsync(service, job)).GetProperty("state").GetString() is "Running" or "Queued" or "Paused")
            {
                await Task.Delay(100);
            }

            final[job] = view.GetProperty("lastSeq").GetInt64();
            steps += await StepsBetweenAsync(service, job, from, to);
        }

        ViewerReport? report = null;
        if (generator is not null)
        {
            generator.StandardInput.WriteLine("final " + string.Join(" ", final.Select(f => $"{f.Key}={f.Value}")));
            string? line = await generator.StandardOutput.ReadLineAsync();
            await generator.WaitForExitAsync();
            report = line is null ? throw new InvalidOperationException(await generator.StandardError.ReadToEndAsync()) : JsonSerializer.Deserialize<ViewerReport>(line, s_json);
        }

        await Task.Delay(2000); // the cancelled jobs' last checkpoints
        return new Case { Viewers = viewers, ImagesPerSecond = steps * batch / (to - from).TotalSeconds, Report = report };
    }

    private static async Task<JsonElement> JobAsync(ServiceUnderTest service, Guid job) =>
        await service.Client.GetFromJsonAsync<JsonElement>($"/jobs/{job}");

    /// <summary>The job's step events stamped within [from, to).</summary>
    private static async Task<long> StepsBetweenAsync(ServiceUnderTest service, Guid job, DateTime from, DateTime to)
    {
        long count = 0;
        for (long after = 0; ;)
        {
            JsonElement[] page = (await service.Client.GetFromJsonAsync<JsonElement[]>($"/jobs/{job}/events?afterSeq={after}&limit=10000"))!;
            if (page.Length == 0)
            {
                return count;
            }

            foreach (JsonElement e in page)
            {
                if (e.GetProperty("kind").GetString() == "step" && e.GetProperty("time").GetDateTime() is var time && time >= from && time < to)
                {
                    count++;
                }
            }

            after = page[^1].GetProperty("seq").GetInt64();
        }
    }

    private static Process StartViewers(ServiceUnderTest service, List<Guid> jobs, int viewers)
    {
        var start = new ProcessStartInfo("dotnet", [typeof(FanOut).Assembly.Location, "viewers", "--url", service.BaseAddress.ToString(),
            "--key", ServiceUnderTest.AdminKey, "--viewers", viewers.ToString(CultureInfo.InvariantCulture), "--jobs", string.Join(",", jobs)])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        return Process.Start(start)!;
    }

    internal sealed record ViewerReport(long Steps, double P50, double P90, double P99, double Max, long Events, long Lost, long Duplicate, long OutOfOrder,
        long Incomplete, long Rewinds, string? Error, double CpuCores, double MegabytesPerSecond);

    /// <summary>The viewers' process: connects, subscribes, reports "ready"; "measure" starts the latency window, "stop" ends
    /// it, "final job=lastSeq …" waits for every viewer to hold its job's last seq and prints the report as JSON.</summary>
    public static async Task ViewersAsync(string[] args)
    {
        var url = new Uri(Text(args, "--url"));
        string key = Text(args, "--key");
        Guid[] jobs = [.. Text(args, "--jobs").Split(',').Select(Guid.Parse)];
        int count = Option(args, "--viewers", 500);
        var viewers = new Viewer[count];
        for (int i = 0; i < count; i++)
        {
            viewers[i] = new Viewer(jobs[i % jobs.Length]);
        }

        var hub = new Uri($"ws://{url.Authority}/hubs/training?access_token={Uri.EscapeDataString(key)}");
        using var stop = new CancellationTokenSource();
        // Open 20 at a time, as people arriving do, not 500 handshakes in one burst.
        foreach (Viewer[] group in viewers.Chunk(20))
        {
            await Task.WhenAll(group.Select(v => v.ConnectAsync(hub, stop.Token)));
        }

        Task[] loops = [.. viewers.Select(v => Task.Run(() => v.ReceiveAsync(stop.Token)))];
        _ = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                await Task.Delay(10_000, stop.Token);
                foreach (Viewer v in viewers)
                {
                    await v.PingAsync(stop.Token);
                }
            }
        });
        Console.WriteLine("ready");
        TimeSpan cpuAtStart = TimeSpan.Zero;
        DateTime measuredFrom = DateTime.UtcNow, measuredTo = DateTime.UtcNow;
        TimeSpan cpuAtEnd = TimeSpan.Zero;
        while (Console.ReadLine() is { } command)
        {
            if (command == "measure")
            {
                cpuAtStart = Process.GetCurrentProcess().TotalProcessorTime;
                measuredFrom = DateTime.UtcNow;
                Viewer.Window = (measuredFrom, DateTime.MaxValue);
            }
            else if (command == "stop")
            {
                cpuAtEnd = Process.GetCurrentProcess().TotalProcessorTime;
                measuredTo = DateTime.UtcNow;
                Viewer.Window = (measuredFrom, measuredTo);
            }
            else if (command.StartsWith("final ", StringComparison.Ordinal))
            {
                Dictionary<Guid, long> final = command[6..].Split(' ').Select(p => p.Split('=')).ToDictionary(p => Guid.Parse(p[0]), p => long.Parse(p[1], CultureInfo.InvariantCulture));
                var deadline = Stopwatch.StartNew();
                while (viewers.Any(v => v.Last < final[v.Job] && v.Error is null) && deadline.Elapsed < TimeSpan.FromSeconds(60))
                {
                    await Task.Delay(100);
                }

                await stop.CancelAsync();
                double[] latencies = [.. viewers.SelectMany(v => v.Latencies).Select(l => (double)l).Order()];
                var report = new ViewerReport(
                    latencies.Length, Percentile(latencies, 0.5), Percentile(latencies, 0.9), Percentile(latencies, 0.99), latencies.Length == 0 ? double.NaN : latencies[^1],
                    viewers.Sum(v => v.Events), viewers.Sum(v => v.Lost + Math.Max(0, final[v.Job] - v.Last)), viewers.Sum(v => v.Duplicate), viewers.Sum(v => v.OutOfOrder),
                    viewers.Count(v => v.Last != final[v.Job]), viewers.Sum(v => v.Rewinds), viewers.Select(v => v.Error).FirstOrDefault(e => e is not null),
                    (cpuAtEnd - cpuAtStart).TotalSeconds / (measuredTo - measuredFrom).TotalSeconds,
                    viewers.Sum(v => v.MeasuredBytes) / 1e6 / (measuredTo - measuredFrom).TotalSeconds);
                Console.WriteLine(JsonSerializer.Serialize(report, s_json));
                foreach (Viewer v in viewers)
                {
                    v.Dispose();
                }

                return;
            }
        }
    }

    /// <summary>One viewer: a WebSocket in SignalR's JSON protocol, subscribed to one job from seq 0.</summary>
    private sealed class Viewer(Guid job) : IDisposable
    {
        private const byte Separator = 0x1e;
        private static readonly byte[] s_ping = Encoding.UTF8.GetBytes("{\"type\":6}\u001e");

        // The measuring window: the steps whose latency counts are those the server stamped within it, whenever they
        // arrive, so a viewer that falls behind has its late steps counted, not left out; the bytes counted are those
        // received within it. Read and written under its lock (two values).
        private static readonly Lock s_windowLock = new();
        private static (DateTime From, DateTime To) s_window = (DateTime.MaxValue, DateTime.MaxValue);

        public static (DateTime From, DateTime To) Window
        {
            get
            {
                lock (s_windowLock)
                {
                    return s_window;
                }
            }

            set
            {
                lock (s_windowLock)
                {
                    s_window = value;
                }
            }
        }

        private readonly ClientWebSocket _socket = new();
        private readonly SemaphoreSlim _sending = new(1, 1);

        public Guid Job => job;

        public long Last { get; private set; }

        public long Events { get; private set; }

        /// <summary>Bytes of messages received within the window.</summary>
        public long MeasuredBytes { get; private set; }

        public long Lost { get; private set; }

        public long Duplicate { get; private set; }

        public long OutOfOrder { get; private set; }

        public long Rewinds { get; private set; }

        public string? Error { get; private set; }

        public List<float> Latencies { get; } = [];

        public void Dispose()
        {
            _socket.Dispose();
            _sending.Dispose();
        }

        public async Task ConnectAsync(Uri hub, CancellationToken cancellationToken)
        {
            await _socket.ConnectAsync(hub, cancellationToken);
            await SendAsync("{\"protocol\":\"json\",\"version\":1}\u001e", cancellationToken);
            await SendAsync($"{{\"type\":1,\"invocationId\":\"1\",\"target\":\"Subscribe\",\"arguments\":[\"{job}\",0]}}\u001e", cancellationToken);
        }

        public async Task PingAsync(CancellationToken cancellationToken)
        {
            await _sending.WaitAsync(cancellationToken);
            try
            {
                await _socket.SendAsync(s_ping, WebSocketMessageType.Text, true, cancellationToken);
            }
            finally
            {
                _sending.Release();
            }
        }

        private async Task SendAsync(string text, CancellationToken cancellationToken)
        {
            await _sending.WaitAsync(cancellationToken);
            try
            {
                await _socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, cancellationToken);
            }
            finally
            {
                _sending.Release();
            }
        }

        public async Task ReceiveAsync(CancellationToken cancellationToken)
        {
            var buffer = new ArrayBufferWriter<byte>(1 << 16);
            try
            {
                while (!cancellationToken.IsCancellationRequested)
                {
                    ValueWebSocketReceiveResult result = await _socket.ReceiveAsync(buffer.GetMemory(1 << 16), cancellationToken);
                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        Error ??= $"closed by the server: {_socket.CloseStatus} {_socket.CloseStatusDescription}";
                        return;
                    }

                    buffer.Advance(result.Count);
                    if (!result.EndOfMessage)
                    {
                        continue;
                    }

                    DateTime now = DateTime.UtcNow;
                    ReadOnlySpan<byte> received = buffer.WrittenSpan;
                    if (Window is var (from, to) && now >= from && now < to)
                    {
                        MeasuredBytes += received.Length;
                    }

                    for (int end; (end = received.IndexOf(Separator)) >= 0; received = received[(end + 1)..])
                    {
                        Handle(received[..end], now);
                    }

                    buffer.ResetWrittenCount();
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
            }
            catch (Exception ex)
            {
                Error ??= ex.Message;
            }
        }

        // {"type":1,"target":"Events","arguments":["<job>",[{"seq":…,"kind":"step","time":"…",…},…]]}: only each event's
        // seq, kind and time are read (depth 4: root, arguments, the events' array, an event).
        private void Handle(ReadOnlySpan<byte> message, DateTime now)
        {
            if (message.StartsWith(EventsMessage))
            {
                ScanEvents(message[EventsMessage.Length..], now);
                return;
            }

            var reader = new Utf8JsonReader(message);
            string? target = null;
            long seq = 0;
            bool step = false;
            DateTime time = default;
            while (reader.Read())
            {
                if (reader.TokenType == JsonTokenType.PropertyName && reader.CurrentDepth == 1)
                {
                    if (reader.ValueTextEquals("target"u8))
                    {
                        reader.Read();
                        target = reader.GetString();
                    }
                    else if (reader.ValueTextEquals("error"u8))
                    {
                        reader.Read();
                        Error ??= reader.GetString();
                    }
                    else if (reader.ValueTextEquals("type"u8))
                    {
                        reader.Read();
                        if (reader.GetInt32() == 7)
                        {
                            Error ??= "Close message from the server";
                        }
                    }
                }
                else if (target == "Rewind" && reader.TokenType == JsonTokenType.Number && reader.CurrentDepth == 2)
                {
                    Rewinds++;
                    Last = reader.GetInt64();
                }
                else if (target == "Events" && reader.CurrentDepth == 3 && reader.TokenType == JsonTokenType.StartObject)
                {
                    seq = 0;
                    step = false;
                }
                else if (target == "Events" && reader.CurrentDepth == 4 && reader.TokenType == JsonTokenType.PropertyName)
                {
                    if (reader.ValueTextEquals("seq"u8))
                    {
                        reader.Read();
                        seq = reader.GetInt64();
                    }
                    else if (reader.ValueTextEquals("kind"u8))
                    {
                        reader.Read();
                        step = reader.ValueTextEquals("step"u8);
                    }
                    else if (reader.ValueTextEquals("time"u8))
                    {
                        reader.Read();
                        time = reader.GetDateTime();
                    }
                }
                else if (target == "Events" && reader.CurrentDepth == 3 && reader.TokenType == JsonTokenType.EndObject)
                {
                    Received(seq, step, time, now);
                }
            }
        }

        private static ReadOnlySpan<byte> EventsMessage => "{\"type\":1,\"target\":\"Events\",\"arguments\":[\""u8;

        private static ReadOnlySpan<byte> EventStart => "{\"seq\":"u8;

        // An Events message as the service writes it: each event an object that opens with seq, kind and time
        // ({"seq":12,"kind":"step","time":"…",…}). A JSON string cannot hold {"seq": (its quotes would be escaped), so
        // each occurrence starts an event, and a vectorised search finds them without tokenising every layer's
        // statistics, which cost this process most of its CPU, taken from the jobs it measures on a 2-core machine.
        // Anything else in that place is an error, not skipped.
        private void ScanEvents(ReadOnlySpan<byte> rest, DateTime now)
        {
            for (int at; (at = rest.IndexOf(EventStart)) >= 0;)
            {
                rest = rest[(at + EventStart.Length)..];
                if (!Utf8Parser.TryParse(rest, out long seq, out int digits) || !rest[digits..].StartsWith(",\"kind\":\""u8))
                {
                    throw new FormatException($"an event that does not open with seq and kind: {Encoding.UTF8.GetString(rest[..Math.Min(rest.Length, 80)])}");
                }

                rest = rest[(digits + 9)..];
                int kindEnd = rest.IndexOf((byte)'"');
                bool step = rest[..kindEnd].SequenceEqual("step"u8);
                rest = rest[(kindEnd + 1)..];
                if (!rest.StartsWith(",\"time\":"u8))
                {
                    throw new FormatException($"an event whose third property is not its time: {Encoding.UTF8.GetString(rest[..Math.Min(rest.Length, 80)])}");
                }

                rest = rest[8..];
                DateTime time = default;
                if (step)
                {
                    var reader = new Utf8JsonReader(rest[..(rest[1..].IndexOf((byte)'"') + 2)]);
                    reader.Read();
                    time = reader.GetDateTime();
                }

                Received(seq, step, time, now);
            }
        }

        private void Received(long seq, bool step, DateTime time, DateTime now)
        {
            Events++;
            if (seq <= Last)
            {
                Duplicate++;
                return;
            }

            if (seq > Last + 1)
            {
                Lost += seq - Last - 1;
                OutOfOrder++;
            }

            Last = seq;
            if (step && Window is var (from, to) && time >= from && time < to)
            {
                Latencies.Add((float)(now - time).TotalMilliseconds);
            }
        }
    }

    private static int Option(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }

    private static string Text(string[] args, string name) => args[Array.IndexOf(args, name) + 1];
}
