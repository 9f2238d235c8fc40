using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using TrainingService.Api.Persistence;
using TrainingService.Api.Quotas;
using TrainingService.Api.Tests.Datasets;
using TrainingService.Api.Tests.Jobs;

namespace TrainingService.Api.Tests.Service;

public sealed class QuotaTests
{
    // 72 images of 1×16×16: 18,432 bytes as the storage quota counts them.
    private const string TinyShapes = """{ "kind": "shapes", "classes": 3, "samples": 60, "testSamples": 12, "imageSize": 16, "channels": 1 }""";
    private const long TinyBytes = 72 * 16 * 16;

    [Fact]
    public async Task AJobOverTheActiveJobsLimitIsRefusedWith429AndTheLimitFreesWhenAJobEnds()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory(new() { ["Jobs:MaxActiveJobsPerOwner"] = "2" });
        using HttpClient client = factory.CreateClient();
        Guid dataset = await JobHarness.CreateShapesAsync(client, samples: 64);
        string job = $$"""{ "datasetId": "{{dataset}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 10000 } }""";
        Guid first = await AcceptedAsync(client, job);
        Guid second = await AcceptedAsync(client, job);

        (HttpResponseMessage refused, _) = await JobHarness.PostJobAsync(client, job);

        JsonElement problem = await ServiceHarness.AssertProblemAsync(refused, HttpStatusCode.TooManyRequests);
        Assert.Equal("Jobs:MaxActiveJobsPerOwner", problem.GetProperty("limit").GetString());
        Assert.Contains("Jobs:MaxActiveJobsPerOwner", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.False(refused.Headers.Contains("Retry-After")); // it frees when a job ends, not after a time
        Assert.Equal([second, first], await ServiceHarness.ListIdsAsync(client, ""));

        (await ServiceHarness.PostAsync(client, $"/jobs/{second}/cancel")).Dispose();
        await JobHarness.WaitForStateAsync(client, second, "Cancelled");
        Guid third = await AcceptedAsync(client, job);
        await CancelAllAsync(client, [first, third]);
    }

    [Fact]
    public async Task ParallelJobCreationsAtTheLimitPassExactlyAsManyAsItAllows()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory(new() { ["Jobs:MaxActiveJobsPerOwner"] = "3" });
        using HttpClient client = factory.CreateClient();
        Guid dataset = await JobHarness.CreateShapesAsync(client, samples: 64);
        string job = $$"""{ "datasetId": "{{dataset}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 10000 } }""";

        (HttpResponseMessage Response, JsonElement Body)[] answers = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => JobHarness.PostJobAsync(client, job)));

        Assert.Equal(3, answers.Count(a => a.Response.StatusCode == HttpStatusCode.Accepted));
        Assert.Equal(7, answers.Count(a => a.Response.StatusCode == HttpStatusCode.TooManyRequests));
        Guid[] stored = await ServiceHarness.ListIdsAsync(client, "");
        Assert.Equal(3, stored.Length);
        await CancelAllAsync(client, stored);
        foreach ((HttpResponseMessage response, _) in answers)
        {
            response.Dispose();
        }
    }

    [Fact]
    public async Task ADatasetOverTheOwnersStorageIsRefusedWith413AndNothingIsKept()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory(new()
        {
            ["Uploads:MaxStorageBytesPerOwner"] = (2 * TinyBytes).ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        using HttpClient client = factory.CreateClient();
        using HttpResponseMessage first = await PostBuiltinAsync(client, TinyShapes);
        using HttpResponseMessage second = await PostBuiltinAsync(client, TinyShapes); // exactly at the limit
        Assert.Equal((HttpStatusCode.Created, HttpStatusCode.Created), (first.StatusCode, second.StatusCode));

        using HttpResponseMessage refused = await PostBuiltinAsync(client, """{ "samples": 1, "testSamples": 0, "imageSize": 16 }""");
        using HttpResponseMessage upload = await client.PostAsync(
            new Uri("/datasets", UriKind.Relative),
            DatasetFiles.Form("digits", "idx", ("images", DatasetFiles.Images(4, 8, 8)), ("labels", DatasetFiles.Labels(4, 2))));

        foreach (HttpResponseMessage response in new[] { refused, upload })
        {
            JsonElement problem = await ServiceHarness.AssertProblemAsync(response, HttpStatusCode.RequestEntityTooLarge);
            Assert.Equal("Uploads:MaxStorageBytesPerOwner", problem.GetProperty("limit").GetString());
            Assert.Contains("Uploads:MaxStorageBytesPerOwner", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }

        Assert.Equal(2, await CountDatasetsAsync(factory));
        Assert.Equal(2, Directory.GetDirectories(Path.Combine(factory.DataFolder, "datasets")).Length);
    }

    [Fact]
    public async Task ParallelDatasetsAtTheStorageLimitKeepExactlyAsManyAsFit()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory(new()
        {
            ["Uploads:MaxStorageBytesPerOwner"] = (3 * TinyBytes).ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        using HttpClient client = factory.CreateClient();

        HttpResponseMessage[] answers = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => PostBuiltinAsync(client, TinyShapes)));

        Assert.Equal(3, answers.Count(a => a.StatusCode == HttpStatusCode.Created));
        Assert.Equal(5, answers.Count(a => a.StatusCode == HttpStatusCode.RequestEntityTooLarge));
        Assert.Equal(3, await CountDatasetsAsync(factory));
        Assert.Equal(3, Directory.GetDirectories(Path.Combine(factory.DataFolder, "datasets")).Length);
        foreach (HttpResponseMessage answer in answers)
        {
            answer.Dispose();
        }
    }

    [Fact]
    public async Task UploadsBeyondTheConcurrentLimitAreRefusedWith429WhileTheOthersArrive()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory(new() { ["Uploads:MaxConcurrentPerOwner"] = "2" });
        using HttpClient client = factory.CreateClient();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        UploadSlots slots = factory.Services.GetRequiredService<UploadSlots>();

        using HttpClient direct = factory.Server.CreateClient(); // the factory's client buffers a body before sending it (redirects)
        direct.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", TrainingServiceFactory.AdminKey);
        Task<HttpResponseMessage>[] held = [.. Enumerable.Range(0, 2).Select(async i => await direct.PostAsync(
            new Uri("/datasets", UriKind.Relative), await HeldFormAsync($"held {i}", release.Task)))];
        await WaitUntilFullAsync(slots, Storage.DefaultOwner, 2);
        HttpResponseMessage[] refused = await Task.WhenAll(Enumerable.Range(0, 3).Select(i => client.PostAsync(
            new Uri("/datasets", UriKind.Relative), SmallForm($"refused {i}"))));
        release.SetResult();
        HttpResponseMessage[] accepted = await Task.WhenAll(held);

        foreach (HttpResponseMessage response in refused)
        {
            JsonElement problem = await ServiceHarness.AssertProblemAsync(response, HttpStatusCode.TooManyRequests);
            Assert.Equal("Uploads:MaxConcurrentPerOwner", problem.GetProperty("limit").GetString());
            Assert.Contains("Uploads:MaxConcurrentPerOwner", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }

        Assert.All(accepted, a => Assert.Equal(HttpStatusCode.Created, a.StatusCode));
        Assert.Equal(2, await CountDatasetsAsync(factory));
        using HttpResponseMessage after = await PostBuiltinAsync(client, TinyShapes); // the slots were given back
        Assert.Equal(HttpStatusCode.Created, after.StatusCode);
        foreach (HttpResponseMessage response in refused.Concat(accepted))
        {
            response.Dispose();
        }
    }

    private static async Task<Guid> AcceptedAsync(HttpClient client, string json)
    {
        (HttpResponseMessage response, JsonElement body) = await JobHarness.PostJobAsync(client, json);
        using (response)
        {
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            return body.GetProperty("id").GetGuid();
        }
    }

    private static async Task CancelAllAsync(HttpClient client, IEnumerable<Guid> jobs)
    {
        foreach (Guid job in jobs)
        {
            (await ServiceHarness.PostAsync(client, $"/jobs/{job}/cancel")).Dispose();
        }
    }

    private static Task<HttpResponseMessage> PostBuiltinAsync(HttpClient client, string json) =>
        client.PostAsync(new Uri("/datasets/builtin", UriKind.Relative), new StringContent(json, Encoding.UTF8, "application/json"));

    private static async Task<int> CountDatasetsAsync(TrainingServiceFactory factory)
    {
        await using AsyncServiceScope scope = factory.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<TrainingDb>().Datasets.CountAsync();
    }

    /// <summary>An IDX upload whose body stops half way until <paramref name="release"/> completes: an upload in flight.</summary>
    private static MultipartFormDataContent SmallForm(string name) =>
        DatasetFiles.Form(name, "idx", ("images", DatasetFiles.Images(16, 8, 8)), ("labels", DatasetFiles.Labels(16, 2)));

    /// <summary>Waits until <paramref name="owner"/> holds <paramref name="max"/> upload slots (a probe's slot is given back).</summary>
    private static async Task WaitUntilFullAsync(UploadSlots slots, string owner, int max)
    {
        DateTime deadline = DateTime.UtcNow.AddSeconds(30);
        while (slots.TryTake(owner, max) is { } probe)
        {
            probe.Dispose();
            Assert.True(DateTime.UtcNow < deadline, "the held uploads never reached the handler");
            await Task.Delay(20);
        }
    }

    private static async Task<HeldContent> HeldFormAsync(string name, Task release)
    {
        using MultipartFormDataContent form = SmallForm(name);
        byte[] body = await form.ReadAsByteArrayAsync();
        var held = new HeldContent(body, release);
        held.Headers.ContentType = form.Headers.ContentType;
        return held;
    }

    private sealed class HeldContent(byte[] body, Task release) : HttpContent
    {
        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
            SerializeToStreamAsync(stream, context, CancellationToken.None);

        // The test server waits for the body of a request it has answered unless its sending is cancelled.
        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
        {
            await stream.WriteAsync(body.AsMemory(0, body.Length / 2), cancellationToken);
            await stream.FlushAsync(cancellationToken);
            await release.WaitAsync(cancellationToken);
            await stream.WriteAsync(body.AsMemory(body.Length / 2), cancellationToken);
        }

        protected override bool TryComputeLength(out long length)
        {
            length = body.Length;
            return true;
        }
    }
}
