using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using SkiaSharp;
using TrainingService.Api.Tests.Jobs;
using Xunit.Abstractions;

namespace TrainingService.Api.Tests.Service;

/// <summary>The attacks of issue 12 on models, jobs and predictions, each with the bound it now meets (figures to the test output).</summary>
public sealed class HostileInputTests(ITestOutputHelper output)
{
    [Fact]
    public async Task AFiveMegabyteModelNameIsRefusedWith413AndNothingIsStoredOrListed()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        string body = $$"""{ "name": "{{new string('x', 5 << 20)}}", "spec": {{JobHarness.TinySpec}} }""";

        using HttpResponseMessage response = await PostJsonAsync(client, "/models", body);
        string answer = await response.Content.ReadAsStringAsync();
        string listed = await client.GetStringAsync(new Uri("/models", UriKind.Relative));
        output.WriteLine($"POST /models {body.Length:N0} bytes in: {(int)response.StatusCode}, {answer.Length:N0} bytes answered; GET /models then answers {listed.Length:N0} bytes");

        JsonElement problem = await ServiceHarness.AssertProblemAsync(response, HttpStatusCode.RequestEntityTooLarge);
        Assert.Equal(["body"], ServiceHarness.FieldsOf(problem));
        Assert.Contains("Requests:MaxJsonBodyBytes", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.True(answer.Length < 1024, $"{answer.Length} bytes answered");
        Assert.Empty(JsonSerializer.Deserialize<JsonElement>(listed).GetProperty("items").EnumerateArray());
    }

    [Theory]
    [InlineData(5 << 20, HttpStatusCode.RequestEntityTooLarge)] // the attack: over the body cap
    [InlineData(900_000, HttpStatusCode.BadRequest)] // under it: over the name's cap
    public async Task AHugeSpecNameIsNeitherStoredNorListed(int length, HttpStatusCode refusal)
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        Guid dataset = await JobHarness.CreateShapesAsync(client, samples: 64);
        string spec = JobHarness.TinySpec.Replace("{ \"input\"", $$"""{ "name": "{{new string('x', length)}}", "input" """, StringComparison.Ordinal);

        using HttpResponseMessage model = await PostJsonAsync(client, "/models", $$"""{ "name": "tiny", "spec": {{spec}} }""");
        using HttpResponseMessage job = await PostJsonAsync(client, "/jobs",
            $$"""{ "datasetId": "{{dataset}}", "model": {{spec}}, "hyperparameters": { "epochs": 1 } }""");
        string models = await client.GetStringAsync(new Uri("/models", UriKind.Relative));
        string jobs = await client.GetStringAsync(new Uri("/jobs", UriKind.Relative));
        output.WriteLine($"spec name of {length:N0} characters: POST /models {(int)model.StatusCode}, POST /jobs {(int)job.StatusCode}; "
            + $"GET /models then answers {models.Length:N0} bytes, GET /jobs {jobs.Length:N0} bytes");

        foreach ((HttpResponseMessage response, string field) in new[] { (model, "spec.name"), (job, "model.name") })
        {
            JsonElement problem = await ServiceHarness.AssertProblemAsync(response, refusal);
            Assert.Equal([refusal == HttpStatusCode.BadRequest ? field : "body"], ServiceHarness.FieldsOf(problem));
        }

        Assert.True(models.Length < 100 && jobs.Length < 100, $"{models.Length:N0} and {jobs.Length:N0} bytes listed");
    }

    [Fact]
    public async Task NamesOverTheirCapsAre400sNamingTheFieldAndTheLimit()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        string longLayer = new('l', 65);
        string spec = $$"""
            { "name": "{{new string('s', 101)}}", "input": { "channels": 1, "height": 16, "width": 16 },
              "layers": [ { "kind": "flatten", "name": "{{longLayer}}" }, { "kind": "linear", "units": 2, "inputs": ["{{longLayer}}"] } ] }
            """;

        using HttpResponseMessage saved = await PostJsonAsync(client, "/models", $$"""{ "name": "{{new string('n', 101)}}", "spec": {{spec}} }""");
        JsonElement problem = await ServiceHarness.AssertProblemAsync(saved, HttpStatusCode.BadRequest);
        using HttpResponseMessage validated = await PostJsonAsync(client, "/models/validate", spec);
        JsonElement result = await validated.Content.ReadFromJsonAsync<JsonElement>();

        Assert.Superset(new HashSet<string> { "name", "spec.name", "spec.layers[0].name", "spec.layers[1].inputs" }, ServiceHarness.FieldsOf(problem));
        JsonElement errors = problem.GetProperty("errors");
        Assert.Contains("Specs:MaxNameLength", errors.GetProperty("name")[0].GetString(), StringComparison.Ordinal);
        Assert.Contains("Specs:MaxNameLength", errors.GetProperty("spec.name")[0].GetString(), StringComparison.Ordinal);
        Assert.Contains("Specs:MaxLayerNameLength", errors.GetProperty("spec.layers[0].name")[0].GetString(), StringComparison.Ordinal);
        Assert.False(result.GetProperty("valid").GetBoolean());
        Assert.Contains(result.GetProperty("errors").EnumerateArray(), e => e.GetProperty("field").GetString() == "layers[0].name");
        Assert.Empty((await client.GetFromJsonAsync<JsonElement>("/models")).GetProperty("items").EnumerateArray());
    }

    [Theory]
    [InlineData(1_300_000)] // the attack: over the body cap
    [InlineData(900_000)] // under it: the errors are listed up to the cap
    public async Task ABodyOfUnknownFieldsGetsAnAnswerOfAFewKilobytes(int bytes)
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        var body = new StringBuilder("""{ "input": { "channels": 1, "height": 16, "width": 16 }, "layers": [ { "kind": "flatten" }, { "kind": "linear", "units": 2 } ]""");
        for (int i = 0; body.Length < bytes; i++)
        {
            body.Append(", \"unknownField").Append(i).Append("\": 0");
        }

        body.Append('}');
        using HttpResponseMessage response = await PostJsonAsync(client, "/models/validate", body.ToString());
        string answer = await response.Content.ReadAsStringAsync();
        output.WriteLine($"POST /models/validate {body.Length:N0} bytes of unknown fields: {(int)response.StatusCode}, {answer.Length:N0} bytes answered");

        Assert.True(answer.Length < 32 * 1024, $"{answer.Length:N0} bytes answered");
        if (bytes > 1 << 20)
        {
            await ServiceHarness.AssertProblemAsync(response, HttpStatusCode.RequestEntityTooLarge);
        }
        else
        {
            JsonElement[] errors = [.. JsonSerializer.Deserialize<JsonElement>(answer).GetProperty("errors").EnumerateArray()];
            Assert.Equal(51, errors.Length);
            Assert.Equal("errors", errors[^1].GetProperty("field").GetString());
            Assert.Contains("Specs:MaxErrors", errors[^1].GetProperty("message").GetString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task AJobWhoseBatchNeedsMoreMemoryThanTheBudgetIsRefusedWith422AndWellKnownModelsPass()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        Guid small = await JobHarness.CreateShapesAsync(client, samples: 64);
        Guid colour = await CreateDatasetAsync(client, channels: 3, imageSize: 32);
        Guid grey = await CreateDatasetAsync(client, channels: 1, imageSize: 28);
        // One job trains at a time: this one holds the worker, so none of the jobs below ever runs.
        Guid blocker = await AcceptedAsync(client, $$"""{ "datasetId": "{{small}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 10000 } }""");
        string vgg = await PresetAsync(client, "vgg", 3, 32);
        string lenet = await PresetAsync(client, "lenet5", 1, 28);

        (HttpResponseMessage refused, _) = await JobHarness.PostJobAsync(client,
            $$"""{ "datasetId": "{{colour}}", "model": {{vgg}}, "hyperparameters": { "batchSize": 8192 } }""");
        string answer = await refused.Content.ReadAsStringAsync();
        output.WriteLine($"VGG on 3×32×32 at batch 8192: {(int)refused.StatusCode} {answer}");
        Guid vggJob = await AcceptedAsync(client, $$"""{ "datasetId": "{{colour}}", "model": {{vgg}}, "hyperparameters": { "batchSize": 128 } }""");
        Guid lenetJob = await AcceptedAsync(client, $$"""{ "datasetId": "{{grey}}", "model": {{lenet}}, "hyperparameters": { "batchSize": 64 } }""");
        Guid[] listed = await ServiceHarness.ListIdsAsync(client, "");
        foreach (Guid job in new[] { vggJob, lenetJob, blocker })
        {
            (await ServiceHarness.PostAsync(client, $"/jobs/{job}/cancel")).Dispose();
        }

        JsonElement problem = await ServiceHarness.AssertProblemAsync(refused, HttpStatusCode.UnprocessableEntity);
        Assert.Equal(["hyperparameters.batchSize"], ServiceHarness.FieldsOf(problem));
        Assert.Contains("Jobs:MemoryBudgetBytes", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal([lenetJob, vggJob, blocker], listed); // the refused job was not stored
    }

    [Fact]
    public async Task TenHugePngsInOnePredictionAreRefusedFromTheirHeadersBeforeAnyIsDecoded()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        Guid dataset = await JobHarness.CreateShapesAsync(client, samples: 64);
        Guid job = await AcceptedAsync(client, $$"""{ "datasetId": "{{dataset}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 10000 } }""");
        byte[] png;
        using (var bitmap = new SKBitmap(7000, 7000, SKColorType.Gray8, SKAlphaType.Opaque))
        {
            bitmap.Erase(SKColors.Gray);
            png = bitmap.Encode(SKEncodedImageFormat.Png, 100).ToArray();
        }

        using var files = new MultipartFormDataContent();
        for (int i = 0; i < 10; i++)
        {
            files.Add(new ByteArrayContent(png), "images", $"huge{i}.png");
        }

        GC.Collect();
        using var sampler = new PeakMemory();
        using HttpResponseMessage response = await client.PostAsync(new Uri($"/jobs/{job}/predict", UriKind.Relative), files);
        long growth = await sampler.StopAsync();
        string answer = await response.Content.ReadAsStringAsync();
        output.WriteLine($"10 PNGs of 7000×7000 ({10 * png.Length:N0} bytes in): {(int)response.StatusCode}, resident memory grew {growth / (1 << 20):N0} MiB at most; {answer}");
        (await ServiceHarness.PostAsync(client, $"/jobs/{job}/cancel")).Dispose();

        JsonElement problem = await ServiceHarness.AssertProblemAsync(response, HttpStatusCode.RequestEntityTooLarge);
        Assert.Equal(["images"], ServiceHarness.FieldsOf(problem));
        Assert.Contains("Predict:MaxPixelsPerRequest", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.True(growth < 200L << 20, $"resident memory grew {growth:N0} bytes");
    }

    [Fact]
    public async Task RequestsOverTheRateGet429NamingTheLimitWithRetryAfter()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory(new()
        {
            ["RateLimits:RequestsPerMinute"] = "60",
            ["RateLimits:Burst"] = "20",
            ["RateLimits:CreationsPerMinute"] = "1",
            ["RateLimits:CreationBurst"] = "2",
        });
        using HttpClient client = factory.CreateClient();

        var statuses = new List<HttpStatusCode>();
        HttpResponseMessage? firstRefusal = null;
        for (int i = 0; i < 300; i++)
        {
            HttpResponseMessage response = await client.GetAsync(new Uri("/models", UriKind.Relative));
            statuses.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests && firstRefusal is null)
            {
                firstRefusal = response;
            }
            else
            {
                response.Dispose();
            }
        }

        output.WriteLine($"300 back-to-back GET /models at 60/min, bursts of 20: {statuses.Count(s => s == HttpStatusCode.TooManyRequests)} answered 429");
        Assert.InRange(statuses.Count(s => s == HttpStatusCode.OK), 20, 25); // the burst, and the tokens that came back meanwhile
        Assert.NotNull(firstRefusal);
        using (firstRefusal)
        {
            JsonElement problem = await ServiceHarness.AssertProblemAsync(firstRefusal, HttpStatusCode.TooManyRequests);
            Assert.Contains("RateLimits:RequestsPerMinute", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
            Assert.True(firstRefusal.Headers.RetryAfter?.Delta is { TotalSeconds: >= 1 }, $"Retry-After: {firstRefusal.Headers.RetryAfter}");
        }

        // Creating jobs draws on its own, smaller bucket: two (refused for want of a dataset), then 429.
        HttpStatusCode[] creations = new HttpStatusCode[3];
        for (int i = 0; i < 3; i++)
        {
            using HttpResponseMessage response = await PostJsonAsync(client, "/jobs", "{}");
            creations[i] = response.StatusCode;
            if (i == 2)
            {
                JsonElement problem = await ServiceHarness.AssertProblemAsync(response, HttpStatusCode.TooManyRequests);
                Assert.Contains("RateLimits:CreationsPerMinute", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
            }
        }

        Assert.Equal([HttpStatusCode.NotFound, HttpStatusCode.NotFound, HttpStatusCode.TooManyRequests], creations);
    }

    [Theory]
    [InlineData("/jobs", """{ "hyperparameters": { "batchSize": "big" } }""", "hyperparameters.batchSize", "an integer")]
    [InlineData("/jobs", """{ "hyperparameters": { "learningRate": "fast" } }""", "hyperparameters.learningRate", "a number")]
    [InlineData("/jobs", """{ "hyperparameters": { "nesterov": 3 } }""", "hyperparameters.nesterov", "true or false")]
    [InlineData("/jobs", """{ "datasetId": "mine" }""", "datasetId", "a GUID")]
    [InlineData("/jobs", """{ "hyperparameters": { "optimizer": "rmsprop" } }""", "hyperparameters.optimizer", "one of sgd, adam, adamw")]
    [InlineData("/jobs?limit=many", null, "limit", "an integer")]
    [InlineData("/jobs?state=Sleeping", null, "state", "one of Queued, Running")]
    [InlineData("/jobs?after=last", null, "after", "a GUID")]
    public async Task BindingErrorsSayWhatToSendInJsonTermsNotDotNetTypes(string path, string? body, string field, string expected)
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();

        using HttpResponseMessage response = body is null
            ? await client.GetAsync(new Uri(path, UriKind.Relative))
            : await PostJsonAsync(client, path, body);

        JsonElement problem = await ServiceHarness.AssertProblemAsync(response, HttpStatusCode.BadRequest);
        string detail = problem.GetProperty("detail").GetString()!;
        output.WriteLine(detail);
        Assert.Equal([field], ServiceHarness.FieldsOf(problem));
        Assert.Contains(expected, detail, StringComparison.Ordinal);
        Assert.DoesNotContain("System.", detail, StringComparison.Ordinal);
        Assert.DoesNotContain("Int32", detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AJobWhoseDatasetFilesAreGoneFailsWithAPlainReasonNamingNoServerPath()
    {
        string folder = Directory.CreateTempSubdirectory("trainingservice-paths-").FullName;
        try
        {
            Guid dataset;
            await using (var first = new TrainingServiceFactory(dataFolder: folder))
            {
                using HttpClient client = first.CreateClient();
                dataset = await JobHarness.CreateShapesAsync(client, samples: 64);
            }

            Directory.Delete(Path.Combine(folder, "datasets", dataset.ToString("N")), recursive: true);
            await using var second = new TrainingServiceFactory(dataFolder: folder);
            using HttpClient again = second.CreateClient();
            Guid job = await AcceptedAsync(again, $$"""{ "datasetId": "{{dataset}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 1 } }""");
            JsonElement failed = await WaitForEndAsync(again, job);
            string error = failed.GetProperty("error").GetString() ?? "";
            string events = await again.GetStringAsync(new Uri($"/jobs/{job}/events", UriKind.Relative));
            using HttpResponseMessage predict = await again.PostAsJsonAsync($"/jobs/{job}/predict", new { images = new[] { new float[256] } });
            string conflict = await predict.Content.ReadAsStringAsync();
            output.WriteLine($"{failed.GetProperty("state").GetString()}: {error}; predict {(int)predict.StatusCode}: {conflict}");

            Assert.Equal("Failed", failed.GetProperty("state").GetString());
            Assert.False(string.IsNullOrWhiteSpace(error));
            foreach (string text in new[] { error, events, conflict })
            {
                Assert.DoesNotContain(folder, text, StringComparison.Ordinal);
                Assert.DoesNotContain("Exception:", text, StringComparison.Ordinal);
            }

            Assert.Equal(HttpStatusCode.Conflict, predict.StatusCode);
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(folder, recursive: true);
        }
    }

    private static Task<HttpResponseMessage> PostJsonAsync(HttpClient client, string path, string json) =>
        client.PostAsync(new Uri(path, UriKind.Relative), new StringContent(json, Encoding.UTF8, "application/json"));

    private static async Task<Guid> CreateDatasetAsync(HttpClient client, int channels, int imageSize)
    {
        using HttpResponseMessage response = await client.PostAsJsonAsync(
            "/datasets/builtin", new { kind = "shapes", classes = 10, samples = 64, testSamples = 16, imageSize, channels, seed = 1 });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
    }

    private static async Task<string> PresetAsync(HttpClient client, string name, int channels, int side)
    {
        JsonElement presets = await client.GetFromJsonAsync<JsonElement>($"/models/presets?channels={channels}&height={side}&width={side}&classes=10");
        return presets.EnumerateArray().First(p => p.GetProperty("name").GetString() == name).GetProperty("spec").GetRawText();
    }

    private static async Task<Guid> AcceptedAsync(HttpClient client, string json)
    {
        (HttpResponseMessage response, JsonElement job) = await JobHarness.PostJobAsync(client, json);
        using (response)
        {
            Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"{(int)response.StatusCode}: {job}");
        }

        return job.GetProperty("id").GetGuid();
    }

    private static async Task<JsonElement> WaitForEndAsync(HttpClient client, Guid job)
    {
        DateTime deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            JsonElement view = await client.GetFromJsonAsync<JsonElement>($"/jobs/{job}");
            if (view.GetProperty("state").GetString() is "Failed" or "Succeeded" or "Cancelled" || DateTime.UtcNow > deadline)
            {
                return view;
            }

            await Task.Delay(50);
        }
    }

    /// <summary>The largest growth of this process's resident memory while it runs, sampled every 5 ms.</summary>
    private sealed class PeakMemory : IDisposable
    {
        private readonly long _start = Resident();
        private readonly CancellationTokenSource _stop = new();
        private readonly Task<long> _peak;

        public PeakMemory() => _peak = Task.Run(async () =>
        {
            long peak = _start;
            while (!_stop.IsCancellationRequested)
            {
                peak = Math.Max(peak, Resident());
                await Task.Delay(5);
            }

            return Math.Max(peak, Resident());
        });

        public async Task<long> StopAsync()
        {
            await _stop.CancelAsync();
            return await _peak - _start;
        }

        public void Dispose() => _stop.Dispose();

        private static long Resident()
        {
            using var process = Process.GetCurrentProcess();
            return process.WorkingSet64;
        }
    }
}
