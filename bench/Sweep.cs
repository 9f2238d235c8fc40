using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using TrainingService.Contracts.Specs;
using TrainingService.Training.Data;

/// <summary>
/// Issue 16's sweep figure: 16 learning-rate × width trials of LeNet-5 on Fashion-MNIST, first as a full grid, then
/// with asha (rungs at epochs 1·η^k below 9, η 3 unless --eta says, the grid shuffled by the seed; --asha-mode promotion, the
/// default, or stopping) on the same service, two trials at
/// once, one thread each. asha's training steps ÷ the grid's, and asha's best validation accuracy against the grid's
/// best. Every trial of a configuration trains the same run in both (same seed, one thread), so asha's epochs must
/// equal the grid's for the same configuration, exactly: checked, so the comparison is of the search, not of noise.
/// </summary>
internal static class Sweep
{
    public static async Task RunAsync(ImageDataset data, ModelSpec model, int epochs, int eta, string mode)
    {
        var clock = Stopwatch.StartNew();
        using ServiceUnderTest service = await ServiceUnderTest.StartAsync(data, model, warmUpJobs: 0, "--Jobs:Concurrency", "2", "--Jobs:ThreadsPerJob", "1");
        string space = """
            [ { "path": "hyperparameters.learningRate", "choice": [0.005, 0.01, 0.02, 0.05] },
              { "path": "layers.conv2.filters", "choice": [8, 16, 32, 48] } ]
            """;
        string Body(string strategy) => $$"""
            { "name": "bench {{strategy}}",
              "base": { "datasetId": "{{service.DatasetId}}", "hyperparameters": { "epochs": {{epochs}}, "batchSize": 64, "momentum": 0.9, "weightDecay": 5e-4, "schedule": "cosine", "seed": 1 },
                        "monitoring": { "statsEvery": 10 } },
              "searchSpace": {{space}}, "strategy": "{{strategy}}", "parallelism": 2, "seed": 1
              {{(strategy == "asha" ? $$""", "asha": { "minEpochs": 1, "reductionFactor": {{eta}}, "maxEpochs": {{epochs}}, "sampler": "grid", "mode": "{{mode}}" }""" : "")}} }
            """;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"LeNet-5 on {data.Train.Count:N0} Fashion-MNIST training images, validation on {data.Test!.Count:N0} test images; learning rate × conv2 filters, 4 × 4; "
            + $"SGD momentum 0.9, weight decay 5e-4, cosine, batch 64, {epochs} epochs, seed 1; asha ({mode}) η {eta} from epoch 1; 2 trials at once, 1 thread each; {Environment.ProcessorCount} cores"));

        (JsonElement grid, TimeSpan gridTime) = await RunSweepAsync(service, Body("grid"));
        (JsonElement asha, TimeSpan ashaTime) = await RunSweepAsync(service, Body("asha"));

        Dictionary<string, JsonElement> gridTrials = grid.GetProperty("trialList").EnumerateArray().ToDictionary(Key);
        var table = new StringBuilder("| learning rate | conv2 filters | grid: best val. acc. (epoch) | asha: status, epochs, best val. acc. | asha's epochs as the grid's |\n|---|---:|---:|---|---|\n");
        bool identical = true;
        foreach (JsonElement trial in asha.GetProperty("trialList").EnumerateArray()
            .OrderBy(t => t.GetProperty("params").GetProperty("hyperparameters.learningRate").GetDouble()).ThenBy(t => t.GetProperty("params").GetProperty("layers.conv2.filters").GetInt32()))
        {
            JsonElement twin = gridTrials[Key(trial)];
            double[] ours = await EpochAccuraciesAsync(service, trial.GetProperty("jobId").GetGuid());
            double[] theirs = await EpochAccuraciesAsync(service, twin.GetProperty("jobId").GetGuid());
            bool same = ours.SequenceEqual(theirs.Take(ours.Length));
            identical &= same;
            JsonElement p = trial.GetProperty("params");
            table.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {p.GetProperty("hyperparameters.learningRate")} | {p.GetProperty("layers.conv2.filters")} | {twin.GetProperty("value").GetDouble():P2} ({twin.GetProperty("valueEpoch").GetInt32()}) "
                + $"| {trial.GetProperty("status").GetString()}, {ours.Length}, {trial.GetProperty("value").GetDouble():P2} | {(same ? "yes" : "**no**")} |"));
        }

        Console.Write(table);
        long gridSteps = grid.GetProperty("steps").GetInt64(), ashaSteps = asha.GetProperty("steps").GetInt64();
        double gridBest = grid.GetProperty("best").GetProperty("value").GetDouble(), ashaBest = asha.GetProperty("best").GetProperty("value").GetDouble();
        double ratio = (double)ashaSteps / gridSteps;
        double gap = (ashaBest - gridBest) * 100;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"grid: {gridSteps:N0} steps in {gridTime.TotalMinutes:F1} min, best {gridBest:P2} (trial {grid.GetProperty("best").GetProperty("index")}); "
            + $"asha: {ashaSteps:N0} steps in {ashaTime.TotalMinutes:F1} min, best {ashaBest:P2}; steps ratio {ratio:F3}, best − grid's best {gap:+0.00;-0.00} pp; "
            + $"asha's epochs equal the grid's: {(identical ? "yes" : "no")}; {clock.Elapsed.TotalMinutes:F1} min in all"));
        Summary.Add($"sweep: asha's ({mode}, η {eta}) training steps ÷ the full grid's (16 trials)", ratio, "F3", "≤ 0.40", ratio <= 0.40);
        Summary.Add("sweep: asha's best validation accuracy − the grid's best, pp", gap, "+0.00;-0.00", "≥ −0.5", gap >= -0.5);
        Summary.Add("sweep: every asha trial's epochs as the grid's (same seed, one thread)", identical ? "yes" : "no", "identical", identical);
    }

    private static string Key(JsonElement trial) => trial.GetProperty("params").GetRawText();

    private static async Task<(JsonElement Sweep, TimeSpan Took)> RunSweepAsync(ServiceUnderTest service, string body)
    {
        var clock = Stopwatch.StartNew();
        using HttpResponseMessage response = await service.Client.PostAsync(new Uri("/sweeps", UriKind.Relative), new StringContent(body, Encoding.UTF8, "application/json"));
        JsonElement created = await response.Content.ReadFromJsonAsync<JsonElement>();
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"POST /sweeps: {(int)response.StatusCode} {created}");
        }

        Guid id = created.GetProperty("id").GetGuid();
        string last = "";
        while (true)
        {
            await Task.Delay(2000);
            JsonElement sweep = await service.Client.GetFromJsonAsync<JsonElement>($"/sweeps/{id}");
            string state = sweep.GetProperty("state").GetString()!;
            string progress = $"{sweep.GetProperty("strategy")}: {state}, {sweep.GetProperty("counts")}, {sweep.GetProperty("steps")} steps";
            if (progress != last && clock.Elapsed.TotalSeconds > 0)
            {
                Console.Error.WriteLine($"  {clock.Elapsed:mm\\:ss} {progress}");
                last = progress;
            }

            if (state != "Running")
            {
                return state == "Succeeded" ? (sweep, clock.Elapsed) : throw new InvalidOperationException($"the sweep ended {state}: {sweep}");
            }
        }
    }

    /// <summary>A trial's validation accuracy at each epoch, from its events.</summary>
    private static async Task<double[]> EpochAccuraciesAsync(ServiceUnderTest service, Guid job)
    {
        var accuracies = new List<double>();
        for (long after = 0; ;)
        {
            JsonElement[] page = [.. (await service.Client.GetFromJsonAsync<JsonElement>($"/jobs/{job}/events?afterSeq={after}&limit=10000")).EnumerateArray()];
            if (page.Length == 0)
            {
                return [.. accuracies];
            }

            accuracies.AddRange(page.Where(e => e.GetProperty("kind").GetString() == "epoch").Select(e => e.GetProperty("validationAccuracy").GetDouble()));
            after = page[^1].GetProperty("seq").GetInt64();
        }
    }
}
