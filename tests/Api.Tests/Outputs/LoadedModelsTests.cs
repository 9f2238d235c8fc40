using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using TrainingService.Api.Outputs;
using TrainingService.Api.Persistence;
using TrainingService.Api.Tests.Jobs;
using TrainingService.Api.Tests.Service;
using Xunit.Abstractions;

namespace TrainingService.Api.Tests.Outputs;

/// <summary>Measures the process's live tensors and resident memory, so it runs with no other test beside it.</summary>
[CollectionDefinition(nameof(MemoryMeasuring), DisableParallelization = true)]
public sealed class MemoryMeasuring;

/// <summary>Predictions keep a bounded number of models loaded, and the ones let go of give their memory back.</summary>
[Collection(nameof(MemoryMeasuring))]
public sealed class LoadedModelsTests(ITestOutputHelper output)
{
    // 256 inputs × 4096 units: each model holds ~4 MB of weights in native memory.
    private const string WideSpec = """
        { "input": { "channels": 1, "height": 16, "width": 16 },
          "layers": [ { "kind": "flatten" }, { "kind": "linear", "units": 4096 }, { "kind": "relu" }, { "kind": "linear", "units": 2 } ] }
        """;

    [Fact]
    public async Task PredictingOnFiftyJobsKeepsFourModelsAndGivesTheRestBack()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory(new() { ["Outputs:LoadedModels"] = "4" });
        using HttpClient client = factory.CreateClient();
        Guid dataset = await JobHarness.CreateShapesAsync(client);
        (_, JsonElement job) = await JobHarness.PostJobAsync(client, $$"""{ "datasetId": "{{dataset}}", "model": {{WideSpec}}, "hyperparameters": { "epochs": 1 } }""");
        Guid trained = job.GetProperty("id").GetGuid();
        await JobHarness.WaitForStateAsync(client, trained, "Succeeded");

        // 49 more jobs with the same weights in their own files: each is a model of its own to the cache.
        StorageOptions storage = factory.Services.GetRequiredService<IOptions<StorageOptions>>().Value;
        var jobs = new List<Guid> { trained };
        using (IServiceScope scope = factory.Services.CreateScope())
        {
            TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
            for (int i = 0; i < 49; i++)
            {
                JobRecord copy = await db.Jobs.AsNoTracking().SingleAsync(j => j.Id == trained);
                copy.Id = Guid.CreateVersion7();
                db.Jobs.Add(copy);
                Directory.CreateDirectory(storage.JobFolder(copy.Id));
                File.Copy(storage.ModelFile(trained), storage.ModelFile(copy.Id));
                jobs.Add(copy.Id);
            }

            await db.SaveChangesAsync();
        }

        LoadedModels models = factory.Services.GetRequiredService<LoadedModels>();
        var request = new { images = new[] { new float[256] } };
        async Task PredictAsync(Guid id)
        {
            using HttpResponseMessage response = await client.PostAsJsonAsync($"/jobs/{id}/predict", request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        foreach (Guid id in jobs.Take(8))
        {
            await PredictAsync(id);
        }

        (long tensors, long heap, long resident) = Measure();
        foreach (Guid id in jobs.Skip(8))
        {
            await PredictAsync(id);
        }

        (long tensorsAfter, long heapAfter, long residentAfter) = Measure();
        output.WriteLine($"after 8 jobs and after 50: live tensors {tensors} -> {tensorsAfter}, managed heap {heap >> 20} -> {heapAfter >> 20} MB, "
            + $"resident {resident >> 20} -> {residentAfter >> 20} MB; models held {models.Count}, disposed {models.Disposed}");
        Assert.Equal(4, models.Count);
        Assert.Equal(46, models.Disposed);
        // Kept, the 42 models loaded after the first measurement would hold 168 more tensors and ~170 MB.
        Assert.InRange(tensorsAfter - tensors, -4, 4);
        Assert.InRange(heapAfter - heap, long.MinValue, 40L << 20);
        Assert.InRange(residentAfter - resident, long.MinValue, 60L << 20);
    }

    // TorchSharp wraps the weights' arrays (pinned, in the managed heap) rather than copying them, so a model's memory is
    // the heap's as much as native: count both, after an aggressive collection that gives freed regions back to the system.
    private static (long Tensors, long Heap, long Resident) Measure()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        using Process self = Process.GetCurrentProcess();
        return (TorchSharp.torch.Tensor.TotalCount, GC.GetGCMemoryInfo().HeapSizeBytes, self.WorkingSet64);
    }
}
