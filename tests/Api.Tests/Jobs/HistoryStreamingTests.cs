using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using TrainingService.Api.Persistence;
using TrainingService.Api.Streaming;
using TrainingService.Contracts.Streaming;
using TrainingService.Contracts.Training;
using Xunit.Abstractions;

namespace TrainingService.Api.Tests.Jobs;

/// <summary>Catching up on a long history and reading it slowly stay bounded: in message size, memory and WAL size.</summary>
public sealed class HistoryStreamingTests(ITestOutputHelper output)
{
    [Fact]
    public async Task LateSubscriberCatchesUpInMessagesNoneOverTheFrameCap()
    {
        const int cap = 64 * 1024;
        await using var factory = new TrainingServiceFactory(new() { ["Streaming:MaxFrameBytes"] = cap.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        using HttpClient client = factory.CreateClient();
        Guid datasetId = await JobHarness.CreateShapesAsync(client);
        (HttpResponseMessage response, JsonElement job) = await JobHarness.PostJobAsync(client,
            $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.DeepSpec(40)}}, "hyperparameters": { "epochs": 8, "batchSize": 16 }, "monitoring": { "statsEvery": 1 } }""");
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Guid jobId = job.GetProperty("id").GetGuid();
        long lastSeq = (await JobHarness.WaitForStateAsync(client, jobId, "Succeeded", TimeSpan.FromMinutes(3))).GetProperty("lastSeq").GetInt64();

        var frames = new List<(int Bytes, List<StreamEvent> Events)>();
        await using HubConnection late = JobHarness.Hub(factory);
        late.On<Guid, List<StreamEvent>>(nameof(ITrainingClient.Events), (_, events) =>
        {
            lock (frames)
            {
                frames.Add((JsonSerializer.SerializeToUtf8Bytes(events, StreamJson.Options).Length, events));
            }
        });
        await late.StartAsync();
        GC.Collect();
        long before = Environment.WorkingSet;
        long peak = before;
        var watch = Stopwatch.StartNew();
        await late.InvokeAsync("Subscribe", jobId, 0L);
        while (true)
        {
            peak = Math.Max(peak, Environment.WorkingSet);
            lock (frames)
            {
                if (frames.Count > 0 && frames[^1].Events[^1].Seq >= lastSeq)
                {
                    break;
                }
            }

            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(60), $"caught up to {frames.LastOrDefault().Events?[^1].Seq} of {lastSeq}");
            await Task.Delay(10);
        }

        List<StreamEvent> received = [.. frames.SelectMany(f => f.Events)];
        JobHarness.AssertConsecutive(received);
        Assert.Equal(lastSeq, received.Count);
        long total = frames.Sum(f => (long)f.Bytes);
        int largest = frames.Max(f => f.Bytes);
        output.WriteLine($"{received.Count} events, {total:N0} bytes of JSON in {frames.Count} messages, largest {largest:N0} "
            + $"(cap {cap:N0}); caught up in {watch.ElapsedMilliseconds} ms; working set {before >> 20} MiB before, peak {peak >> 20} MiB");
        Assert.True(total > 20 * cap, $"the history ({total:N0} bytes) should be many frames long");
        Assert.All(frames, f => Assert.True(f.Bytes + LiveEvents.FrameOverhead <= cap, $"a message of {f.Bytes:N0} bytes of events"));
    }

    [Fact]
    public async Task SlowEventsReaderDoesNotKeepTheWalFromBeingCheckpointed()
    {
        int port = FreePort();
        // No periodic checkpoint: SQLite's own (every 1,000 pages) must keep the WAL small, which it can only while no
        // reader holds an old snapshot.
        // Small send buffers (accepted sockets inherit the listener's): the server's writes block as soon as the client
        // stops reading, rather than after megabytes in the kernel.
        await using var factory = new TrainingServiceFactory(new() { ["Storage:CheckpointSeconds"] = "3600" })
        {
            ConfigureServices = s => s.Configure<SocketTransportOptions>(o => o.CreateBoundListenSocket = endpoint =>
            {
                Socket listener = SocketTransportOptions.CreateDefaultBoundListenSocket(endpoint);
                listener.SendBufferSize = 8192;
                return listener;
            }),
        };
        factory.UseKestrel(port);
        factory.StartServer();
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/") };
        client.DefaultRequestHeaders.Authorization = new("Bearer", TrainingServiceFactory.AdminKey);
        Guid datasetId = await JobHarness.CreateShapesAsync(client, samples: 1024);
        (HttpResponseMessage response, JsonElement job) = await JobHarness.PostJobAsync(client,
            $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.DeepSpec(40)}}, "hyperparameters": { "epochs": 200, "batchSize": 16 }, "monitoring": { "statsEvery": 1 } }""");
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Guid jobId = job.GetProperty("id").GetGuid();
        string wal = Path.Combine(factory.DataFolder, "training.db-wal");
        while ((await client.GetFromJsonAsync<JsonElement>($"/jobs/{jobId}")).GetProperty("lastSeq").GetInt64() < 200)
        {
            await Task.Delay(50);
        }

        // A client that reads the history at ~4 KB/s through a small socket buffer, so the server's writes block.
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096 };
        await socket.ConnectAsync(IPAddress.Loopback, port);
        await socket.SendAsync(Encoding.ASCII.GetBytes($"GET /jobs/{jobId}/events?afterSeq=0&limit=10000 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            + $"Authorization: Bearer {TrainingServiceFactory.AdminKey}\r\nAccept-Encoding: identity\r\n\r\n"));
        long startWal = File.Exists(wal) ? new FileInfo(wal).Length : 0;
        long startSeq = (await client.GetFromJsonAsync<JsonElement>($"/jobs/{jobId}")).GetProperty("lastSeq").GetInt64();
        long maxWal = startWal, read = 0;
        var buffer = new byte[1024];
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < TimeSpan.FromSeconds(20))
        {
            read += await socket.ReceiveAsync(buffer);
            maxWal = Math.Max(maxWal, File.Exists(wal) ? new FileInfo(wal).Length : 0);
            await Task.Delay(250);
        }

        // The reader is still mid-response: with no read transaction left open, a TRUNCATE checkpoint can finish
        // (it may meet a write of the pump's now and then, never a reader for long).
        WalCheckpoints checkpoints = factory.Services.GetRequiredService<WalCheckpoints>();
        var rounds = new List<long>();
        for (int i = 0; i < 10 && !rounds.Contains(0); i++)
        {
            await checkpoints.CheckpointAsync(CancellationToken.None);
            rounds.Add(checkpoints.Last.Busy);
            await Task.Delay(100);
        }

        long endSeq = (await client.GetFromJsonAsync<JsonElement>($"/jobs/{jobId}")).GetProperty("lastSeq").GetInt64();
        socket.Close();
        List<JsonElement> meanwhile = (await client.GetFromJsonAsync<List<JsonElement>>($"/jobs/{jobId}/events?afterSeq={startSeq}&limit={endSeq - startSeq}"))!;
        long written = meanwhile.Sum(e => (long)e.GetRawText().Length);
        await client.PostAsync(new Uri($"/jobs/{jobId}/cancel", UriKind.Relative), null);
        await JobHarness.WaitForStateAsync(client, jobId, "Cancelled");
        output.WriteLine($"read {read:N0} bytes in {watch.Elapsed.TotalSeconds:F0} s while the job wrote {endSeq - startSeq:N0} events "
            + $"({written >> 10} KiB of JSON); WAL {startWal >> 10} KiB at the start, at most {maxWal >> 10} KiB; checkpoints busy: {string.Join(",", rounds)}");
        Assert.Contains(0L, rounds);
        Assert.True(written > 512L << 10, $"the job wrote only {written:N0} bytes meanwhile");
        Assert.True(maxWal <= 6L << 20, $"the WAL grew to {maxWal:N0} bytes"); // the automatic checkpoint runs at 1,000 pages (4 MiB)
    }

    [Fact]
    public async Task PeriodicCheckpointEmptiesTheWal()
    {
        await using var factory = new TrainingServiceFactory(new() { ["Storage:CheckpointSeconds"] = "3600" });
        using HttpClient client = factory.CreateClient();
        Guid datasetId = await JobHarness.CreateShapesAsync(client);
        (_, JsonElement job) = await JobHarness.PostJobAsync(client,
            $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.DeepSpec(10)}}, "hyperparameters": { "epochs": 2, "batchSize": 16 }, "monitoring": { "statsEvery": 1 } }""");
        await JobHarness.WaitForStateAsync(client, job.GetProperty("id").GetGuid(), "Succeeded");
        // A connection of the test's own, open throughout: SQLite deletes the WAL file when the database's last
        // connection closes, which the service's may all be for a moment (CI at 9394314: no WAL file to measure).
        await using var held = new SqliteConnection($"Data Source={Path.Combine(factory.DataFolder, "training.db")};Pooling=False");
        await held.OpenAsync();
        // One more write, so the WAL holds something whatever SQLite's own checkpoint (every 1,000 pages) did with the
        // job's last commits: it may have just emptied it.
        await JobHarness.CreateShapesAsync(client);
        string wal = Path.Combine(factory.DataFolder, "training.db-wal");
        long before = new FileInfo(wal).Length;

        // The job's worker may still be finishing its last writes just after the state turned Succeeded (a checkpoint
        // meeting a write is busy and tries again at the next period): a few tries, as the periodic checkpoint would
        // make; a read transaction left open would keep every one of them busy.
        WalCheckpoints checkpoints = factory.Services.GetRequiredService<WalCheckpoints>();
        var busy = new List<long>();
        for (int i = 0; i < 10 && !busy.Contains(0); i++)
        {
            await Task.Delay(i * 100);
            await checkpoints.CheckpointAsync(CancellationToken.None);
            busy.Add(checkpoints.Last.Busy);
        }

        output.WriteLine($"WAL {before:N0} bytes before, {new FileInfo(wal).Length:N0} after; {checkpoints.Last}; busy per try: {string.Join(",", busy)}");
        Assert.True(before > 0);
        Assert.Equal(0, checkpoints.Last.Busy);
        Assert.Equal(0, new FileInfo(wal).Length);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
