using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using TrainingService.Contracts.Streaming;
using TrainingService.Contracts.Training;

namespace TrainingService.Api.Tests.Jobs;

/// <summary>The real service in a child process, killed with SIGKILL mid-job: nothing runs on the way out.</summary>
public sealed class CrashTests
{
    [Fact]
    public async Task JobRunningWhenTheProcessIsKilledResumesFromItsCheckpointWithContinuousSeqs()
    {
        string folder = Directory.CreateTempSubdirectory("trainingservice-crash-").FullName;
        try
        {
            Guid jobId;
            long stepAtKill;
            using (Service first = await Service.StartAsync(folder))
            {
                Guid datasetId = await JobHarness.CreateShapesAsync(first.Client, samples: 512);
                (_, JsonElement job) = await JobHarness.PostJobAsync(first.Client,
                    $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 40, "batchSize": 16 }, "monitoring": { "statsEvery": 3 } }""");
                jobId = job.GetProperty("id").GetGuid();
                do
                {
                    await Task.Delay(20);
                    stepAtKill = (await first.Client.GetFromJsonAsync<JsonElement>($"/jobs/{jobId}")).GetProperty("step").GetInt64();
                }
                while (stepAtKill < 60);

                first.Kill();
            }

            // The last step whose events were durable when the process died: a checkpoint can never be past it (a
            // checkpoint waits for the events before it), so the run must resume at or before this step.
            long persistedStep;
            await using (var db = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(folder, "training.db")};Pooling=False"))
            {
                await db.OpenAsync();
                await using var query = db.CreateCommand();
                query.CommandText = "SELECT Step FROM Jobs WHERE Id = $id";
                query.Parameters.AddWithValue("$id", jobId.ToString().ToUpperInvariant());
                persistedStep = (long)(await query.ExecuteScalarAsync())!;
            }

            using Service second = await Service.StartAsync(folder);
            JsonElement done = await JobHarness.WaitForStateAsync(second.Client, jobId, "Succeeded", TimeSpan.FromMinutes(3));

            List<StreamEvent> history = await JobHarness.HistoryAsync(second.Client, jobId);
            JobHarness.AssertConsecutive(history);
            long total = done.GetProperty("totalSteps").GetInt64();
            Assert.Equal(Enumerable.Range(1, (int)total).Select(i => (long)i), history.Where(e => e.Kind == "step").Select(e => e.Step!.Value));
            StreamEvent[] states = [.. history.Where(e => e.Kind == "state")];
            Assert.Equal([RunState.Running, RunState.Running, RunState.Succeeded], states.Select(e => e.State!.Value));
            long resumedAt = long.Parse(states[1].Reason!.Replace("resumed at step ", "", StringComparison.Ordinal), System.Globalization.CultureInfo.InvariantCulture);
            Assert.True(resumedAt > 0 && resumedAt <= persistedStep, $"resumed at step {resumedAt}; step {persistedStep} was the last persisted when the process was killed (seen at {stepAtKill} just before)");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task AnUploadCutByAKillLeavesNoFolderAfterTheNextStart()
    {
        string folder = Directory.CreateTempSubdirectory("trainingservice-crash-").FullName;
        try
        {
            string datasets = Path.Combine(folder, "datasets");
            using (Service first = await Service.StartAsync(folder))
            {
                using var stall = new CancellationTokenSource();
                using var form = new MultipartFormDataContent
                {
                    { new StringContent("cut"), "name" },
                    { new StringContent("idx"), "format" },
                    { new StreamContent(new StallingStream(4 << 20, stall.Token)), "images", "train-images.idx" },
                };
                Task<HttpResponseMessage> upload = first.Client.PostAsync(new Uri("/datasets", UriKind.Relative), form, stall.Token);
                for (DateTime deadline = DateTime.UtcNow.AddSeconds(30); ReceivedBytes(datasets) < 1 << 20; await Task.Delay(20))
                {
                    Assert.True(DateTime.UtcNow < deadline && !upload.IsCompleted, $"the upload did not arrive: {ReceivedBytes(datasets)} bytes");
                }

                first.Kill();
                stall.Cancel();
                await Assert.ThrowsAnyAsync<Exception>(() => upload);
            }

            Assert.NotEmpty(Directory.GetDirectories(datasets, ".incoming-*"));

            using Service second = await Service.StartAsync(folder);

            Assert.Empty(Directory.GetDirectories(datasets, ".incoming-*"));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task AJobDuringWhichTheProcessDiedTwiceIsSetAsideAsFailedAndNotRunAgain()
    {
        string folder = Directory.CreateTempSubdirectory("trainingservice-poison-").FullName;
        try
        {
            Guid jobId;
            using (Service first = await Service.StartAsync(folder))
            {
                Guid datasetId = await JobHarness.CreateShapesAsync(first.Client, samples: 512);
                (_, JsonElement job) = await JobHarness.PostJobAsync(first.Client,
                    $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 200, "batchSize": 16 } }""");
                jobId = job.GetProperty("id").GetGuid();
                await WaitForRunningStatesAsync(first.Client, jobId, 1);
                first.Kill();
            }

            using (Service second = await Service.StartAsync(folder))
            {
                await WaitForRunningStatesAsync(second.Client, jobId, 2); // re-queued once: it runs again
                second.Kill();
            }

            using Service third = await Service.StartAsync(folder);
            JsonElement failed = await JobHarness.WaitForStateAsync(third.Client, jobId, "Failed", TimeSpan.FromSeconds(30));
            const string Reason = "the service process stopped 2 times while training this job; set aside so it does not crash the service again";
            Assert.Equal(Reason, failed.GetProperty("error").GetString());
            long step = failed.GetProperty("step").GetInt64();
            await Task.Delay(TimeSpan.FromSeconds(2));
            List<StreamEvent> history = await JobHarness.HistoryAsync(third.Client, jobId);
            JobHarness.AssertConsecutive(history);
            Assert.Equal(step, (await third.Client.GetFromJsonAsync<JsonElement>($"/jobs/{jobId}")).GetProperty("step").GetInt64()); // not run
            StreamEvent[] states = [.. history.Where(e => e.Kind == "state")];
            Assert.Equal([RunState.Running, RunState.Running, RunState.Failed], states.Select(e => e.State!.Value));
            Assert.Equal(Reason, history[^1].Reason);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>Until the job's history has <paramref name="count"/> Running events and a step after the last.</summary>
    private static async Task WaitForRunningStatesAsync(HttpClient client, Guid jobId, int count)
    {
        for (DateTime deadline = DateTime.UtcNow.AddSeconds(60); ; await Task.Delay(200))
        {
            List<StreamEvent> history = await JobHarness.HistoryAsync(client, jobId);
            int running = history.FindLastIndex(e => e.Kind == "state" && e.State == RunState.Running);
            if (history.Count(e => e.Kind == "state" && e.State == RunState.Running) == count && history.Skip(running).Any(e => e.Kind == "step"))
            {
                return;
            }

            Assert.True(DateTime.UtcNow < deadline, $"job {jobId} has not run {count} times: {history.Count} events");
        }
    }

    private static long ReceivedBytes(string datasets) => !Directory.Exists(datasets) ? 0
        : Directory.GetDirectories(datasets, ".incoming-*").SelectMany(d => Directory.GetFiles(d, "*", SearchOption.AllDirectories)).Sum(f => new FileInfo(f).Length);

    /// <summary>A body that sends its bytes, then waits until cancelled: an upload in flight when the process dies.</summary>
    private sealed class StallingStream(int bytes, CancellationToken stall) : Stream
    {
        private int _sent;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => _sent; set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_sent < bytes)
            {
                int n = Math.Min(buffer.Length, bytes - _sent);
                buffer.Span[..n].Fill(1);
                _sent += n;
                return n;
            }

            using var both = CancellationTokenSource.CreateLinkedTokenSource(stall, cancellationToken);
            await Task.Delay(Timeout.Infinite, both.Token);
            return 0;
        }

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    private sealed class Service : IDisposable
    {
        private readonly Process _process;

        private Service(Process process, HttpClient client)
        {
            _process = process;
            Client = client;
        }

        public HttpClient Client { get; }

        public static async Task<Service> StartAsync(string dataFolder)
        {
            int port = FreePort();
            var start = new ProcessStartInfo("dotnet",
            [
                Path.Combine(AppContext.BaseDirectory, "TrainingService.Api.dll"), "--urls", $"http://127.0.0.1:{port}",
                "--Storage:DataFolder", dataFolder, "--Auth:AdminKey", TrainingServiceFactory.AdminKey, "--Jobs:ThreadsPerJob", "1", "--Jobs:CheckpointEverySteps", "25",
                "--Serilog:MinimumLevel:Default", "Warning", "--RateLimits:RequestsPerMinute", "1000000", "--RateLimits:Burst", "1000000",
            ])
            {
                WorkingDirectory = AppContext.BaseDirectory,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            Process process = Process.Start(start)!;
            process.OutputDataReceived += (_, _) => { };
            process.ErrorDataReceived += (_, _) => { };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", TrainingServiceFactory.AdminKey);
            var service = new Service(process, client);
            for (DateTime deadline = DateTime.UtcNow.AddSeconds(60); ; await Task.Delay(100))
            {
                try
                {
                    if ((await client.GetAsync(new Uri("/health/ready", UriKind.Relative))).StatusCode == HttpStatusCode.OK)
                    {
                        return service;
                    }
                }
                catch (HttpRequestException) when (DateTime.UtcNow < deadline && !process.HasExited)
                {
                }
            }
        }

        public void Kill()
        {
            _process.Kill(entireProcessTree: true); // SIGKILL: no graceful stop, no final checkpoint
            _process.WaitForExit();
        }

        public void Dispose()
        {
            Client.Dispose();
            if (!_process.HasExited)
            {
                Kill();
            }

            _process.Dispose();
        }

        private static int FreePort()
        {
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }
    }
}
