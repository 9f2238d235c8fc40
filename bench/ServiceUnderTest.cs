using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using TrainingService.Contracts.Specs;
using TrainingService.Training.Data;

/// <summary>
/// The real service in a child process on a loopback port with a temporary data folder: the benchmark uploads the
/// same images as the bare loop, then times whole jobs from their Running event to their Succeeded event.
/// </summary>
internal sealed class ServiceUnderTest : IDisposable
{
    private static readonly JsonSerializerOptions s_json = new(JsonSerializerDefaults.Web);

    private readonly Process _process;
    private readonly HttpClient _client;
    private readonly string _dataFolder;
    private readonly Guid _datasetId;
    private readonly ModelSpec _model;
    private readonly int _trainCount;

    private ServiceUnderTest(Process process, HttpClient client, string dataFolder, Guid datasetId, ModelSpec model, int trainCount)
    {
        _process = process;
        _client = client;
        _dataFolder = dataFolder;
        _datasetId = datasetId;
        _model = model;
        _trainCount = trainCount;
    }

    /// <summary>The service's admin key for the bench's requests (every request needs an owner since issue 12).</summary>
    internal const string AdminKey = "tsk_bench-admin-key-0123456789abcdefghijklmnopqrstuv";

    /// <summary>
    /// Starts the service, uploads <paramref name="data"/> (IDX; CIFAR's format for 3×32×32) and trains three warm-up
    /// jobs. <paramref name="settings"/> are more command-line settings for the service ("--Jobs:Concurrency", "4", …).
    /// </summary>
    public static Task<ServiceUnderTest> StartAsync(ImageDataset data, ModelSpec model, params string[] settings) =>
        StartAsync(data, model, warmUpJobs: 3, settings);

    /// <summary>As above with <paramref name="warmUpJobs"/> one-epoch jobs first (0: a service as fresh as after its start and the upload).</summary>
    public static async Task<ServiceUnderTest> StartAsync(ImageDataset data, ModelSpec model, int warmUpJobs, params string[] settings)
    {
        string configuration = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
        string api = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../src/Api/bin", configuration, "net10.0/TrainingService.Api.dll"));
        string dataFolder = Directory.CreateTempSubdirectory("trainingservice-bench-").FullName;
        int port = FreePort(); // not a fixed one: a service left over from a crashed run would answer in its place
        string contentRoot = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../src/Api")); // wwwroot: the dashboard
        var start = new ProcessStartInfo("dotnet", [api, "--contentRoot", contentRoot, "--urls", $"http://127.0.0.1:{port}", "--Storage:DataFolder", dataFolder, "--Serilog:MinimumLevel:Default", "Warning",
            "--Auth:AdminKey", AdminKey, "--RateLimits:RequestsPerMinute", "1000000", "--RateLimits:Burst", "1000000",
            "--Streaming:FrameMilliseconds", Environment.GetEnvironmentVariable("BENCH_FRAME_MS") ?? "100", .. settings])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.GetDirectoryName(api)!,
        };
        // BENCH_SERVICE_ENV="NAME=value;NAME=value": settings for the service's process only (e.g. GOMP_SPINCOUNT, DOTNET_TieredPGO).
        foreach (string setting in (Environment.GetEnvironmentVariable("BENCH_SERVICE_ENV") ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            start.Environment[setting[..setting.IndexOf('=')]] = setting[(setting.IndexOf('=') + 1)..];
        }

        Process process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromMinutes(5) };
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", AdminKey);
        try
        {
            for (int i = 0; ; i++)
            {
                try
                {
                    if ((await client.GetAsync(new Uri("/health/ready", UriKind.Relative))).IsSuccessStatusCode)
                    {
                        break;
                    }
                }
                catch (HttpRequestException) when (i < 300 && !process.HasExited)
                {
                }

                await Task.Delay(100);
            }

            Guid datasetId = await UploadAsync(client, data, "bench");
            var service = new ServiceUnderTest(process, client, dataFolder, datasetId, model, data.Train.Count);
            for (int i = 0; i < warmUpJobs; i++)
            {
                service.TrainOnce(64); // a fresh process JIT-compiles and tiers up for a few jobs; a running service has done that
            }

            return service;
        }
        catch
        {
            // Never leave the service behind: it would keep its port, its files and a core.
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit();
            }

            client.Dispose();
            process.Dispose();
            Directory.Delete(dataFolder, recursive: true);
            throw;
        }
    }

    /// <summary>Uploads the train split of <paramref name="data"/> (and an IDX dataset's test split) as one more dataset (IDX; CIFAR's format for 3×32×32) and returns its id.</summary>
    public Task<Guid> UploadAsync(ImageDataset data, string name) => UploadAsync(_client, data, name);

    private static async Task<Guid> UploadAsync(HttpClient client, ImageDataset data, string name)
    {
        using MultipartFormDataContent form = data.Channels == 3 ? CifarForm(data, name) : new MultipartFormDataContent
        {
            { new StringContent(name), "name" },
            { new StringContent("idx"), "format" },
            { new ByteArrayContent(Idx(0x803, [data.Train.Count, data.Height, data.Width], data.Train.Images)), "images", "images.idx" },
            { new ByteArrayContent(Idx(0x801, [data.Train.Count], data.Train.Labels)), "labels", "labels.idx" },
        };
        if (data.Channels != 3 && data.Test is { } test)
        {
            form.Add(new ByteArrayContent(Idx(0x803, [test.Count, data.Height, data.Width], test.Images)), "testImages", "test-images.idx");
            form.Add(new ByteArrayContent(Idx(0x801, [test.Count], test.Labels)), "testLabels", "test-labels.idx");
        }

        using HttpResponseMessage created = await client.PostAsync(new Uri("/datasets", UriKind.Relative), form);
        created.EnsureSuccessStatusCode();
        return (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
    }

    /// <summary>
    /// A 3×32×32 dataset in CIFAR-10's binary format, one file (IDX images have one channel): per image a label byte,
    /// then the red, green and blue planes, each row by row, as <see cref="ImageSplit"/> already holds them.
    /// </summary>
    private static MultipartFormDataContent CifarForm(ImageDataset data, string name)
    {
        if (data.Height != CifarReader.Side || data.Width != CifarReader.Side)
        {
            throw new ArgumentException($"CIFAR images are 3×32×32, not {data.Channels}×{data.Height}×{data.Width}", nameof(data));
        }

        int size = data.SampleSize;
        var records = new byte[data.Train.Count * (1 + size)];
        for (int i = 0; i < data.Train.Count; i++)
        {
            records[i * (1 + size)] = data.Train.Labels[i];
            data.Train.Images.AsSpan(i * size, size).CopyTo(records.AsSpan((i * (1 + size)) + 1));
        }

        return new MultipartFormDataContent
        {
            { new StringContent(name), "name" },
            { new StringContent("cifar"), "format" },
            { new ByteArrayContent(records), "images", "data_batch_1.bin" },
        };
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    public HttpClient Client => _client;

    /// <summary>The service's process, e.g. to read its memory.</summary>
    public Process Process => _process;

    /// <summary>The id of the dataset uploaded at the start.</summary>
    public Guid DatasetId => _datasetId;

    public Uri BaseAddress => _client.BaseAddress!;

    /// <summary>
    /// Starts a job of the benchmark's model for <paramref name="epochs"/> epochs over its images (or over
    /// <paramref name="datasetId"/>'s) and returns its id.
    /// </summary>
    public async Task<Guid> StartJobAsync(int epochs, int batch, int seed = 1, double validationFraction = 0.0, Guid? datasetId = null)
    {
        var request = new
        {
            datasetId = datasetId ?? _datasetId,
            model = _model,
            hyperparameters = new { epochs, batchSize = batch, learningRate = 0.01, momentum = 0.9, validationFraction, seed },
            monitoring = new { statsEvery = 10 },
        };
        using HttpResponseMessage response = await _client.PostAsJsonAsync("/jobs", request, s_json);
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
    }

    /// <summary>One job of one epoch; images per second between its first and last step events.</summary>
    /// <remarks>The service's worker uses one torch thread per core (2 here), like the other cases.</remarks>
    public double TrainOnce(int batch)
    {
        var request = new
        {
            datasetId = _datasetId,
            model = _model,
            hyperparameters = new { epochs = 1, batchSize = batch, learningRate = 0.01, momentum = 0.9, validationFraction = 0.0 },
            monitoring = new { statsEvery = 10 },
        };
        using HttpResponseMessage response = _client.PostAsJsonAsync("/jobs", request, s_json).GetAwaiter().GetResult();
        response.EnsureSuccessStatusCode();
        Guid jobId = response.Content.ReadFromJsonAsync<JsonElement>().GetAwaiter().GetResult().GetProperty("id").GetGuid();
        while (true)
        {
            Thread.Sleep(250); // a dashboard polling four times a second; the job's own timing comes from its events
            JsonElement job = _client.GetFromJsonAsync<JsonElement>($"/jobs/{jobId}").GetAwaiter().GetResult();
            string state = job.GetProperty("state").GetString()!;
            if (state == "Succeeded")
            {
                break;
            }

            if (state is "Failed" or "Cancelled")
            {
                throw new InvalidOperationException($"bench job {state}: {job}");
            }
        }

        // Issue 15's measure: images per second from the first step event to the last (stamped as each step ends), so a
        // job's set-up and its epoch-end work (checkpoint, weights, pictures) are not counted; the steps between are.
        DateTime[] steps = [.. _client.GetFromJsonAsync<JsonElement[]>($"/jobs/{jobId}/events?limit=10000").GetAwaiter().GetResult()!
            .Where(e => e.GetProperty("kind").GetString() == "step").Select(e => e.GetProperty("time").GetDateTime())];
        // BENCH_GAPS=1: the time between the job's step events (its stalled steps); =2: also each step over twice the median.
        if (Environment.GetEnvironmentVariable("BENCH_GAPS") is { } gapsMode)
        {
            double[] gaps = [.. steps.Zip(steps.Skip(1), (a, b) => (b - a).TotalMilliseconds)];
            double[] sorted = [.. gaps.Order()];
            double median = sorted[sorted.Length / 2];
            if (gapsMode == "2")
            {
                Console.Error.WriteLine("slow: " + string.Join(' ', gaps.Select((g, i) => (g, i)).Where(p => p.g > 2 * median).Select(p => $"{p.i + 1}:{p.g:F0}@{steps[p.i]:ss.fff}")));
            }

            Console.Error.WriteLine($"gaps: first20 {gaps.Take(20).Sum():F1} ms, rest mean {gaps.Skip(20).DefaultIfEmpty().Average():F2} median {median:F2} p90 {sorted[(int)(sorted.Length * 0.9)]:F2} "
                + $"p99 {sorted[(int)(sorted.Length * 0.99)]:F2} max {sorted[^1]:F1}; sum of gaps over 1.5× median {gaps.Where(g => g > 1.5 * median).Sum(g => g - median):F0} ms of {gaps.Sum():F0}");
        }

        return (steps.Length - 1) * batch / (steps[^1] - steps[0]).TotalSeconds;
    }

    public void Dispose()
    {
        _client.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        _process.Dispose();
        Directory.Delete(_dataFolder, recursive: true);
    }

    private static byte[] Idx(int magic, int[] dimensions, byte[] payload)
    {
        var bytes = new byte[4 + (4 * dimensions.Length) + payload.Length];
        WriteBigEndian(bytes, 0, magic);
        for (int i = 0; i < dimensions.Length; i++)
        {
            WriteBigEndian(bytes, 4 + (4 * i), dimensions[i]);
        }

        payload.CopyTo(bytes, 4 + (4 * dimensions.Length));
        return bytes;
    }

    private static void WriteBigEndian(byte[] bytes, int offset, int value) =>
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(offset), value);
}
