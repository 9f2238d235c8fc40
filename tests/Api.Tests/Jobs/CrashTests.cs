using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR.Client;
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
            using (ServiceProcess first = await ServiceProcess.StartAsync(folder))
            {
                Guid datasetId = await JobHarness.CreateShapesAsync(first.Client, samples: 512);
                // Far more steps than the test needs (~29,000; a step of this model takes well under a millisecond), so
                // that no lag in reading its step lets it end before the kill (40 epochs once did, in CI); once resumed
                // it is told to finish.
                (_, JsonElement job) = await JobHarness.PostJobAsync(first.Client,
                    $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 1000, "batchSize": 16 }, "monitoring": { "statsEvery": 3 } }""");
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

            using ServiceProcess second = await ServiceProcess.StartAsync(folder);
            await FinishOnceResumedAsync(second, jobId);
            JsonElement done = await JobHarness.WaitForStateAsync(second.Client, jobId, "Succeeded", TimeSpan.FromMinutes(3));

            List<StreamEvent> history = await JobHarness.HistoryAsync(second.Client, jobId);
            JobHarness.AssertConsecutive(history);
            long last = done.GetProperty("step").GetInt64();
            Assert.Equal(Enumerable.Range(1, (int)last).Select(i => (long)i), history.Where(e => e.Kind == "step").Select(e => e.Step!.Value));
            StreamEvent[] states = [.. history.Where(e => e.Kind == "state")];
            Assert.Equal([RunState.Running, RunState.Running, RunState.Succeeded], states.Select(e => e.State!.Value));
            Assert.Equal(await JobHarness.StoredHistoryBytesAsync(second.Client, jobId), done.GetProperty("historyBytes").GetInt64()); // exact after the truncation
            long resumedAt = long.Parse(states[1].Reason!.Replace("resumed at step ", "", StringComparison.Ordinal), System.Globalization.CultureInfo.InvariantCulture);
            Assert.True(resumedAt > 0 && resumedAt <= persistedStep, $"resumed at step {resumedAt}; step {persistedStep} was the last persisted when the process was killed (seen at {stepAtKill} just before)");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task AViewerReconnectingAfterACrashIsToldWhichOfItsEventsTheResumedRunReplaced()
    {
        string folder = Directory.CreateTempSubdirectory("trainingservice-crash-").FullName;
        var viewer = new HeldEvents(onlyNew: true); // after the kill the first connection may still deliver what it had
        try
        {
            Guid jobId;
            // Checkpoints at epoch ends only, and epochs of 4,096 steps: the viewer waits for 50 steps past the first
            // epoch's end, so the next checkpoint is ~4,000 steps after what it holds when the kill lands, whatever its
            // lag behind the run. (Epochs of ~200 steps and a wait for step 300, then epochs of 1,024 steps, each once let
            // the run reach the next epoch's end before the kill: CI at f78fe11 and b37511f.) 30 epochs, so that the job
            // cannot end before the kill either (3 once did, in CI); once resumed it is told to finish.
            string[] epochCheckpoints = ["--Jobs:CheckpointEverySteps", "100000"];
            using (ServiceProcess first = await ServiceProcess.StartAsync(folder, epochCheckpoints))
            {
                Guid datasetId = await JobHarness.CreateShapesAsync(first.Client, samples: 32768);
                (_, JsonElement job) = await JobHarness.PostJobAsync(first.Client,
                    $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 30, "batchSize": 8 }, "monitoring": { "statsEvery": 3 } }""");
                jobId = job.GetProperty("id").GetGuid();
                long epochSteps = job.GetProperty("totalSteps").GetInt64() / 30;
                Assert.Equal(4096, epochSteps);
                await using HubConnection before = viewer.Connect(first.Client.BaseAddress!);
                await before.StartAsync();
                await before.InvokeAsync("Subscribe", jobId, 0L);
                for (var waited = Stopwatch.StartNew(); !viewer.Events.Any(e => e.Step >= epochSteps + 50); await Task.Delay(10))
                {
                    Assert.True(waited.Elapsed < TimeSpan.FromSeconds(60), $"the viewer did not reach step {epochSteps + 50} in a minute");
                }

                first.Kill(); // past the first epoch's checkpoint: the viewer holds events the next run will replace
            }

            List<StreamEvent> beforeCrash = viewer.Events;
            int attempt = beforeCrash.Last(e => e.Kind == "state").Attempt!.Value;
            Assert.Equal(1, attempt);

            using ServiceProcess second = await ServiceProcess.StartAsync(folder, epochCheckpoints);
            await using HubConnection after = viewer.Connect(second.Client.BaseAddress!);
            await after.StartAsync();
            await after.InvokeAsync("SubscribeAfter", jobId, beforeCrash[^1].Seq, attempt);
            await FinishOnceResumedAsync(second, jobId);
            JsonElement done = await JobHarness.WaitForStateAsync(second.Client, jobId, "Succeeded", TimeSpan.FromMinutes(3));
            long lastSeq = done.GetProperty("lastSeq").GetInt64();
            await viewer.WaitForSeqAsync(lastSeq, TimeSpan.FromSeconds(15));

            List<StreamEvent> history = await JobHarness.HistoryAsync(second.Client, jobId);
            StreamEvent resumed = history.Where(e => e.State == RunState.Running).Last();
            Assert.Equal(2, resumed.Attempt);
            Assert.True(resumed.Seq <= beforeCrash[^1].Seq, $"the resumed run began at seq {resumed.Seq}, after the {beforeCrash[^1].Seq} held");
            Assert.True(viewer.Rewinds.Select(r => r.AfterSeq).SequenceEqual([resumed.Seq - 1]),
                $"the viewer holding up to seq {beforeCrash[^1].Seq} got rewinds [{string.Join(", ", viewer.Rewinds)}]; the resumed run began at seq {resumed.Seq}");
            List<StreamEvent> final = viewer.Events;
            JobHarness.AssertConsecutive(final);
            Assert.Equal(history.Select(e => (e.Seq, e.Kind, e.Step, e.State, e.Loss)), final.Select(e => (e.Seq, e.Kind, e.Step, e.State, e.Loss)));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task AKillDuringACheckpointWriteLeavesThePreviousCheckpointAndTheJobResumesFromIt()
    {
        string folder = Directory.CreateTempSubdirectory("trainingservice-crash-").FullName;
        try
        {
            Guid jobId;
            long tmpBytes;
            long intactStep;
            using (ServiceProcess first = await ServiceProcess.StartAsync(folder))
            {
                // 128 steps an epoch (2,048 images of batch 16): the first two checkpoints are the every-25-steps ones,
                // at steps 25 and 50, not an epoch end's (at 32 with 512 images: a window of 7 steps, lost once in CI).
                Guid datasetId = await JobHarness.CreateShapesAsync(first.Client, samples: 2048);
                // ~8.4 million parameters and as many momentum values: each checkpoint is ~67 MB, and 25 steps of this
                // model (the window between two checkpoints) take most of a second.
                const string Wide = """
                    { "input": { "channels": 1, "height": 16, "width": 16 },
                      "layers": [ { "kind": "flatten" }, { "kind": "linear", "units": 32768 }, { "kind": "relu" }, { "kind": "linear", "units": 2 } ] }
                    """;
                (HttpResponseMessage posted, JsonElement job) = await JobHarness.PostJobAsync(first.Client,
                    $$"""{ "datasetId": "{{datasetId}}", "model": {{Wide}}, "hyperparameters": { "epochs": 1, "batchSize": 16, "learningRate": 0.001 } }""");
                Assert.Equal(HttpStatusCode.Accepted, posted.StatusCode);
                jobId = job.GetProperty("id").GetGuid();
                string jobFolder = Path.Combine(folder, "jobs", jobId.ToString("N"));
                string checkpoint = Path.Combine(jobFolder, "checkpoint.bin");
                for (DateTime deadline = DateTime.UtcNow.AddMinutes(2); !File.Exists(checkpoint); await Task.Delay(2))
                {
                    Assert.True(DateTime.UtcNow < deadline, "no first checkpoint in 2 minutes");
                }

                // The next checkpoint's temporary file is made a named pipe: its writer blocks once the pipe is full and
                // this test stops reading, so the kill lands in the middle of the write, whatever the machine's speed.
                MakeFifo(checkpoint + ".tmp");
                // cat opens the pipe's reading end (that waits for the writer: the second checkpoint) and copies it to
                // this test, which reads 1 MiB and then stops: cat, then the writer, block with the pipes full.
                // (Not a FileStream here: .NET takes a shared flock on what it opens, refused under the writer's.)
                using var cancel = new CancellationTokenSource(TimeSpan.FromMinutes(2));
                using Process cat = Process.Start(new ProcessStartInfo("cat", [checkpoint + ".tmp"]) { RedirectStandardOutput = true })!;
                try
                {
                    Stream pipe = cat.StandardOutput.BaseStream;
                    byte[] buffer = new byte[1 << 16];
                    for (tmpBytes = 0; tmpBytes < 1 << 20;)
                    {
                        int read = await pipe.ReadAsync(buffer, cancel.Token);
                        Assert.True(read > 0, $"the checkpoint writer closed the pipe after {tmpBytes} bytes");
                        tmpBytes += read;
                    }

                    first.Kill(); // while the pipe is open: the writer dies blocked in its write, not on a broken pipe
                }
                finally
                {
                    cat.Kill();
                }

                Assert.True(File.Exists(checkpoint), "the first checkpoint is not there");
                // The complete checkpoint the kill left: the first (step 25) unless this test saw it late, after the
                // second was already in place (CI once): then the cut write is the third's, and the job resumes at 50.
                intactStep = CheckpointStep(checkpoint);
            }

            // The sweep's own log line, not the file's absence: the resumed job writes a checkpoint.bin.tmp of its own
            // (step 50) soon after the start, and on a loaded machine that one can be there when this test looks.
            using ServiceProcess again = await ServiceProcess.StartAsync(folder, "--Serilog:MinimumLevel:Override:TrainingService.Api.Persistence.StorageSweep", "Information");
            for (DateTime deadline = DateTime.UtcNow.AddSeconds(10); !again.RecentLog.Contains("Storage sweep:", StringComparison.Ordinal); await Task.Delay(20))
            {
                Assert.True(DateTime.UtcNow < deadline, $"no sweep logged in 10 s after the service was ready; its log:\n{again.RecentLog}");
            }

            Assert.Contains(", 1 half-written files (", again.RecentLog, StringComparison.Ordinal);
            JsonElement done = await JobHarness.WaitForStateAsync(again.Client, jobId, "Succeeded", TimeSpan.FromMinutes(3));
            List<StreamEvent> history = await JobHarness.HistoryAsync(again.Client, jobId);
            JobHarness.AssertConsecutive(history);
            long total = done.GetProperty("totalSteps").GetInt64();
            Assert.Equal(Enumerable.Range(1, (int)total).Select(i => (long)i), history.Where(e => e.Kind == "step").Select(e => e.Step!.Value));
            StreamEvent[] states = [.. history.Where(e => e.Kind == "state")];
            Assert.Equal([RunState.Running, RunState.Running, RunState.Succeeded], states.Select(e => e.State!.Value));
            Assert.True(intactStep is > 0 and < 128 && intactStep % 25 == 0, $"the checkpoint left on disk is at step {intactStep}, not an every-25-steps one of the epoch's 128");
            Assert.Equal($"resumed at step {intactStep}", states[1].Reason); // the complete checkpoint, not the one cut short
            Assert.InRange(tmpBytes, 1 << 20, (long)6e7); // under the ~67 MB a whole one takes
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>Once the restarted service runs the job again (its attempt 2), asks it to finish: it ends Succeeded at its next step.</summary>
    private static async Task FinishOnceResumedAsync(ServiceProcess service, Guid jobId)
    {
        for (var waited = Stopwatch.StartNew(); ; await Task.Delay(20))
        {
            JsonElement job = await service.Client.GetFromJsonAsync<JsonElement>($"/jobs/{jobId}");
            Assert.True(job.GetProperty("state").GetString() is "Queued" or "Running", $"the job is {job.GetProperty("state")} after the restart, not resumed");
            if (job.GetProperty("state").GetString() == "Running" && job.GetProperty("attempt").GetInt32() == 2)
            {
                break;
            }

            Assert.True(waited.Elapsed < TimeSpan.FromSeconds(60), "the job was not resumed in a minute");
        }

        using HttpResponseMessage finish = await Service.ServiceHarness.PostAsync(service.Client, $"/jobs/{jobId}/finish");
        Assert.Equal(HttpStatusCode.Accepted, finish.StatusCode);
    }

    /// <summary>The step a checkpoint file covers, read from its header (the format's magic string, then the position as JSON).</summary>
    private static long CheckpointStep(string path)
    {
        using var reader = new BinaryReader(File.OpenRead(path));
        Assert.Equal("TrainingService.Checkpoint/1", reader.ReadString());
        using JsonDocument position = JsonDocument.Parse(reader.ReadString());
        return position.RootElement.GetProperty("Step").GetInt64();
    }

    private static void MakeFifo(string path)
    {
        using Process mkfifo = Process.Start("mkfifo", [path])!;
        mkfifo.WaitForExit();
        Assert.True(mkfifo.ExitCode == 0, $"mkfifo {path} exited with {mkfifo.ExitCode} (the second checkpoint began before it?)");
    }

    [Fact]
    public async Task AnUploadCutByAKillLeavesNoFolderAfterTheNextStart()
    {
        string folder = Directory.CreateTempSubdirectory("trainingservice-crash-").FullName;
        try
        {
            string datasets = Path.Combine(folder, "datasets");
            using (ServiceProcess first = await ServiceProcess.StartAsync(folder))
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

            using ServiceProcess second = await ServiceProcess.StartAsync(folder);

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
            using (ServiceProcess first = await ServiceProcess.StartAsync(folder))
            {
                Guid datasetId = await JobHarness.CreateShapesAsync(first.Client, samples: 512);
                (_, JsonElement job) = await JobHarness.PostJobAsync(first.Client,
                    $$"""{ "datasetId": "{{datasetId}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 1000, "batchSize": 16 } }""");
                jobId = job.GetProperty("id").GetGuid();
                // Long enough not to end before either kill (200 epochs once did, CI at 97f5e32: ~6,400 steps take seconds
                // here); it never trains to the end. Past its first checkpoint (every 25 steps): killed before it, the job
                // would start again from nothing, its history (the first Running event too) replaced by the new run's.
                await WaitForRunningStatesAsync(first.Client, jobId, 1, minStep: 30);
                first.Kill();
            }

            using (ServiceProcess second = await ServiceProcess.StartAsync(folder))
            {
                await WaitForRunningStatesAsync(second.Client, jobId, 2); // re-queued once: it runs again
                second.Kill();
            }

            using ServiceProcess third = await ServiceProcess.StartAsync(folder);
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

    /// <summary>Until the job's history has <paramref name="count"/> Running events and a step after the last (at least <paramref name="minStep"/>).</summary>
    private static async Task WaitForRunningStatesAsync(HttpClient client, Guid jobId, int count, long minStep = 0)
    {
        for (DateTime deadline = DateTime.UtcNow.AddSeconds(60); ; await Task.Delay(200))
        {
            List<StreamEvent> history = await JobHarness.HistoryAsync(client, jobId);
            int running = history.FindLastIndex(e => e.Kind == "state" && e.State == RunState.Running);
            if (history.Count(e => e.Kind == "state" && e.State == RunState.Running) == count && history.Skip(running).Any(e => e.Kind == "step" && e.Step >= minStep))
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
}
