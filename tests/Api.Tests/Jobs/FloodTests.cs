using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using TrainingService.Contracts.Streaming;
using TrainingService.Contracts.Training;
using Xunit.Abstractions;

namespace TrainingService.Api.Tests.Jobs;

/// <summary>
/// The fault campaign's flood, against the real service in its own process: a 1-million-step job with statistics every
/// step, read slowly by one client, while another job trains beside it.
/// </summary>
public sealed class FloodTests(ITestOutputHelper output)
{
    // The budget the service's memory is held to under these probes (Health:MemoryBudgetBytes): a quarter of compose's
    // default memory limit (4 GiB).
    private const long RssBudget = 1L << 30;

    [Fact]
    public async Task AMillionStepJobWithStatisticsEveryStepLeavesTheOtherJobAndTheServiceAlone()
    {
        string folder = Directory.CreateTempSubdirectory("trainingservice-flood-").FullName;
        try
        {
            using ServiceProcess service = await ServiceProcess.StartAsync(folder, "--Jobs:Concurrency", "2", "--Serilog:MinimumLevel:Default", "Error",
                "--Health:MemoryBudgetBytes", RssBudget.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "--Jobs:MaxHistoryBytesPerJob", (5L << 28).ToString(System.Globalization.CultureInfo.InvariantCulture));
            HttpClient client = service.Client;
            Guid datasetId = await JobHarness.CreateShapesAsync(client);
            string quiet = $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 100, "batchSize": 16, "seed": 7 } }""";

            // The other job alone first: what its losses are when nothing else runs.
            Guid alone = await PostAsync(client, quiet);
            await JobHarness.WaitForStateAsync(client, alone, "Succeeded", TimeSpan.FromMinutes(3));
            double[] lossesAlone = Losses(await JobHarness.HistoryAsync(client, alone));

            // The flood: 256 images at batch size 1 for 3,907 epochs (1,000,192 steps), every step measured, a deep
            // network (~160 layers and parameter tensors in each layers event). Admitted under a limit of 1.25 GiB a job:
            // thinned, it keeps ~600 MB (each step ~390 bytes with its figures, each thinned layers event ~210), under half.
            string deep = JobHarness.DeepSpec(40);
            Guid flood = await PostAsync(client,
                $$"""{ "datasetId": "{{datasetId}}", "model": {{deep}}, "hyperparameters": { "epochs": 3907, "batchSize": 1 }, "monitoring": { "statsEvery": 1 } }""");
            Assert.Equal(1_000_192, (await client.GetFromJsonAsync<JsonElement>($"/jobs/{flood}")).GetProperty("totalSteps").GetInt64());
            await WaitForSeqAsync(client, flood, 500);

            // A client reading the flood's history at ~4 KB/s.
            using var slow = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096 };
            await slow.ConnectAsync(IPAddress.Loopback, client.BaseAddress!.Port);
            await slow.SendAsync(Encoding.ASCII.GetBytes($"GET /jobs/{flood}/events?afterSeq=0&limit=10000 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                + $"Authorization: Bearer {TrainingServiceFactory.AdminKey}\r\nAccept-Encoding: identity\r\n\r\n"));
            using var stop = new CancellationTokenSource();
            Task reading = Task.Run(async () =>
            {
                var buffer = new byte[1024];
                while (!stop.IsCancellationRequested && await slow.ReceiveAsync(buffer) > 0)
                {
                    await Task.Delay(250);
                }
            });

            // The other job again, beside the flood, while its status is polled as a dashboard would.
            var watch = Stopwatch.StartNew();
            long startBytes = (await client.GetFromJsonAsync<JsonElement>($"/jobs/{flood}")).GetProperty("historyBytes").GetInt64();
            Guid beside = await PostAsync(client, quiet);
            var latencies = new List<double>();
            long peakWal = 0;
            string wal = Path.Combine(folder, "training.db-wal");
            while (true)
            {
                var poll = Stopwatch.StartNew();
                JsonElement state = await client.GetFromJsonAsync<JsonElement>($"/jobs/{beside}");
                latencies.Add(poll.Elapsed.TotalMilliseconds);
                peakWal = Math.Max(peakWal, File.Exists(wal) ? new FileInfo(wal).Length : 0);
                string current = state.GetProperty("state").GetString()!;
                Assert.True(current is "Queued" or "Running" or "Succeeded", $"the job beside the flood is {current}: {state}\nthe service's log:\n{service.RecentLog}");
                if (current == "Succeeded")
                {
                    break;
                }

                Assert.True(watch.Elapsed < TimeSpan.FromMinutes(3), "the job beside the flood did not finish");
                await Task.Delay(200);
            }

            double seconds = watch.Elapsed.TotalSeconds;
            JsonElement flooding = await client.GetFromJsonAsync<JsonElement>($"/jobs/{flood}");
            long floodBytes = flooding.GetProperty("historyBytes").GetInt64();
            Assert.True(flooding.GetProperty("state").GetString() == "Running", $"the flood is not running: {flooding}\nthe service's log:\n{service.RecentLog}");
            Assert.False(service.HasExited);
            Assert.Equal(lossesAlone, Losses(await JobHarness.HistoryAsync(client, beside))); // not touched: the same run to the last bit

            await stop.CancelAsync();
            slow.Close();
            await client.PostAsync(new Uri($"/jobs/{flood}/cancel", UriKind.Relative), null);
            JsonElement cancelled = await JobHarness.WaitForStateAsync(client, flood, "Cancelled", TimeSpan.FromMinutes(1));
            List<StreamEvent> history = await JobHarness.HistoryAsync(client, flood);
            JobHarness.AssertConsecutive(history);
            long steps = cancelled.GetProperty("step").GetInt64();
            Assert.Equal(Enumerable.Range(1, (int)steps).Select(i => (long)i), history.Where(e => e.Kind == "step").Select(e => e.Step!.Value));

            long database = new FileInfo(Path.Combine(folder, "training.db")).Length;
            latencies.Sort();
            double p99 = latencies[(int)Math.Ceiling(latencies.Count * 0.99) - 1];
            output.WriteLine($"flood: {steps:N0} steps, {history.Count:N0} events, {cancelled.GetProperty("historyBytes").GetInt64():N0} history bytes; "
                + $"{(floodBytes - startBytes) / seconds / (1 << 20):F1} MiB/s of history while the other job ran ({seconds:F1} s)");
            output.WriteLine($"database {database:N0} bytes, WAL at most {peakWal:N0}; GET /jobs/{{id}} p50 {latencies[latencies.Count / 2]:F1} ms, "
                + $"p99 {p99:F1} ms, max {latencies[^1]:F1} ms over {latencies.Count} polls; peak RSS {service.PeakRssBytes / (1 << 20):N0} MiB");
            Assert.True(floodBytes - startBytes > 4L << 20, $"the flood wrote only {floodBytes - startBytes:N0} bytes of history");
            Assert.True(peakWal <= 20L << 20, $"the WAL reached {peakWal:N0} bytes"); // journal_size_limit 16 MiB, checkpoints every 10 s
            Assert.True(database <= 2 * (cancelled.GetProperty("historyBytes").GetInt64() + (16L << 20)), $"the database is {database:N0} bytes");
            Assert.True(service.PeakRssBytes < RssBudget, $"peak RSS {service.PeakRssBytes:N0} bytes");
            JsonElement memory = (await client.GetFromJsonAsync<JsonElement>("/health/ready")).GetProperty("checks").GetProperty("memory");
            output.WriteLine($"health: memory {memory}");
            Assert.Equal("Healthy", memory.GetProperty("status").GetString());
            // A bound on starvation (status polls stuck behind the flood's writes), not a latency target: the p99 was 2.1 s
            // once on a loaded CI machine (df750d0). The figures measured are in the output above.
            Assert.True(p99 < 10_000, $"GET /jobs/{{id}} p99 {p99:F0} ms during the flood");
            await reading.WaitAsync(TimeSpan.FromSeconds(5)).ContinueWith(_ => { }, TaskScheduler.Default);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static async Task<Guid> PostAsync(HttpClient client, string json)
    {
        (HttpResponseMessage response, JsonElement job) = await JobHarness.PostJobAsync(client, json);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, job.ToString());
        return job.GetProperty("id").GetGuid();
    }

    private static async Task WaitForSeqAsync(HttpClient client, Guid jobId, long seq)
    {
        for (DateTime deadline = DateTime.UtcNow.AddMinutes(1); ; await Task.Delay(50))
        {
            JsonElement job = await client.GetFromJsonAsync<JsonElement>($"/jobs/{jobId}");
            if (job.GetProperty("lastSeq").GetInt64() >= seq)
            {
                return;
            }

            Assert.True(DateTime.UtcNow < deadline, $"job {jobId} has not reached seq {seq}: {job}");
        }
    }

    private static double[] Losses(List<StreamEvent> history) => [.. history.Where(e => e.Kind == "step").Select(e => e.Loss!.Value)];
}
