using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using TrainingService.Api.Persistence;
using TrainingService.Api.Tests.Jobs;
using TrainingService.Api.Tests.Service;
using TrainingService.Contracts.Streaming;
using TrainingService.Contracts.Sweeps;
using TrainingService.Training.Sweeps;

namespace TrainingService.Api.Tests.Sweeps;

/// <summary>POST /sweeps and what follows: trials as ordinary jobs, parallelism, asha's cuts, divergence, cancel, the leaderboard.</summary>
public sealed class SweepTests
{
    [Fact]
    public async Task GridTrialsAreOrdinaryJobsLinkedToTheSweepAndNeverMoreActiveThanItsParallelism()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory(new() { ["Jobs:Concurrency"] = "3" });
        using HttpClient client = factory.CreateClient();
        Guid dataset = await JobHarness.CreateShapesAsync(client, samples: 128);
        (HttpResponseMessage response, JsonElement created) = await PostAsync(client, $$"""
            { "name": "lr x width",
              "base": { "datasetId": "{{dataset}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 2, "batchSize": 32 } },
              "searchSpace": [ { "path": "hyperparameters.learningRate", "choice": [0.01, 0.05] },
                               { "path": "layers.conv1.filters", "choice": [2, 4] } ],
              "parallelism": 2 }
            """);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Guid sweepId = created.GetProperty("id").GetGuid();
        Assert.Equal($"/sweeps/{sweepId}", response.Headers.Location!.AbsolutePath);
        Assert.Equal(4, created.GetProperty("trials").GetInt32());
        Assert.Equal("validationAccuracy", created.GetProperty("metric").GetString());
        Assert.Equal("maximize", created.GetProperty("goal").GetString());

        JsonElement sweep = await WaitForSweepAsync(client, sweepId, "Succeeded");
        JsonElement[] trials = [.. sweep.GetProperty("trialList").EnumerateArray()];
        // Nested-loop order, the last dimension fastest.
        Assert.Equal(["0.01/2", "0.01/4", "0.05/2", "0.05/4"], trials.Select(t => $"{t.GetProperty("params").GetProperty("hyperparameters.learningRate")}/{t.GetProperty("params").GetProperty("layers.conv1.filters")}"));
        Assert.All(trials, t => Assert.Equal("Completed", t.GetProperty("status").GetString()));

        JsonElement listed = await client.GetFromJsonAsync<JsonElement>($"/jobs?sweepId={sweepId}");
        Assert.Equal(4, listed.GetProperty("items").GetArrayLength());
        long steps = 0;
        var spans = new List<(DateTime Start, DateTime End)>();
        foreach (JsonElement trial in trials)
        {
            Guid jobId = trial.GetProperty("jobId").GetGuid();
            JsonElement job = await client.GetFromJsonAsync<JsonElement>($"/jobs/{jobId}");
            Assert.Equal(sweepId, job.GetProperty("sweepId").GetGuid());
            Assert.Equal(trial.GetProperty("index").GetInt32(), job.GetProperty("sweepTrial").GetInt32());
            Assert.Equal(trial.GetProperty("params").GetProperty("hyperparameters.learningRate").GetDouble(), job.GetProperty("hyperparameters").GetProperty("learningRate").GetDouble());
            Assert.Equal(trial.GetProperty("params").GetProperty("layers.conv1.filters").GetInt32(), job.GetProperty("model").GetProperty("layers")[0].GetProperty("filters").GetInt32());
            Assert.Equal("Succeeded", job.GetProperty("state").GetString());
            // The trial's value is its best epoch's validation accuracy, as the job's own summary has it.
            Assert.Equal(job.GetProperty("bestValidationAccuracy").GetDouble(), trial.GetProperty("value").GetDouble(), 12);
            steps += job.GetProperty("step").GetInt64();
            spans.Add((job.GetProperty("startedAt").GetDateTime(), job.GetProperty("finishedAt").GetDateTime()));
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(new Uri($"/jobs/{jobId}/history?format=csv", UriKind.Relative))).StatusCode); // an ordinary job's outputs
        }

        Assert.Equal(steps, sweep.GetProperty("steps").GetInt64());
        foreach ((DateTime start, _) in spans)
        {
            int overlapping = spans.Count(s => s.Start <= start && start < s.End);
            Assert.True(overlapping <= 2, $"{overlapping} trials ran at {start:O} with parallelism 2: {string.Join(", ", spans)}");
        }

        JsonElement board = await client.GetFromJsonAsync<JsonElement>($"/sweeps/{sweepId}/leaderboard");
        double[] values = [.. board.GetProperty("ranked").EnumerateArray().Select(r => r.GetProperty("trial").GetProperty("value").GetDouble())];
        Assert.Equal(values.OrderDescending(), values);
        Assert.Equal(values[0], sweep.GetProperty("best").GetProperty("value").GetDouble());
        int bestIndex = sweep.GetProperty("best").GetProperty("index").GetInt32();

        HttpResponseMessage saved = await client.PostAsJsonAsync($"/sweeps/{sweepId}/best/model", new { name = "best of the sweep" });
        Assert.Equal(HttpStatusCode.Created, saved.StatusCode);
        JsonElement model = await client.GetFromJsonAsync<JsonElement>(saved.Headers.Location!);
        Assert.Equal(trials[bestIndex].GetProperty("params").GetProperty("layers.conv1.filters").GetInt32(), model.GetProperty("spec").GetProperty("layers")[0].GetProperty("filters").GetInt32());
    }

    [Fact]
    public async Task AshaStopsTrialsBelowTheRungsCutWithAReasonEventAndNoStepPastTheRung()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        Guid dataset = await JobHarness.CreateShapesAsync(client, samples: 256);
        // A seed whose shuffled grid puts the learning trial first: the others, which cannot learn at 1e-7, then report a
        // train loss (same initialisation, same batches) above its mean at the first rung, and asha stops them there.
        string[] space = ["""{ "path": "hyperparameters.learningRate", "choice": [0.1, 1e-7, 2e-7, 3e-7] }"""];
        List<SearchDimension> dimensions = [.. space.Select(s => JsonSerializer.Deserialize<SearchDimension>(s, JsonSerializerOptions.Web)!)];
        int seed = Enumerable.Range(1, 100).First(s => SearchSpace.Trials(dimensions, SweepStrategy.Asha, true, 4, s)[0]["hyperparameters.learningRate"]!.GetValue<double>() == 0.1);
        (HttpResponseMessage response, JsonElement created) = await PostAsync(client, $$"""
            { "base": { "datasetId": "{{dataset}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "batchSize": 32, "momentum": 0 } },
              "searchSpace": [ {{space[0]}} ], "strategy": "asha", "seed": {{seed}}, "parallelism": 1,
              "metric": { "name": "trainLoss" }, "asha": { "minEpochs": 1, "reductionFactor": 2, "maxEpochs": 3, "sampler": "grid", "mode": "stopping" } }
            """);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Equal("minimize", created.GetProperty("goal").GetString());
        Assert.Equal([1, 2], created.GetProperty("settings").GetProperty("rungs").EnumerateArray().Select(r => r.GetInt32()));
        JsonElement sweep = await WaitForSweepAsync(client, created.GetProperty("id").GetGuid(), "Succeeded");

        JsonElement[] trials = [.. sweep.GetProperty("trialList").EnumerateArray()];
        Assert.Equal("Completed", trials[0].GetProperty("status").GetString());
        const long StepsPerEpoch = 8; // 256 samples, batch 32 (validation on the test split)
        long steps = 3 * StepsPerEpoch;
        foreach (JsonElement trial in trials[1..])
        {
            // Stopped at the first rung, or at the second when the learning trial's first epoch overshot.
            Assert.Equal("Stopped", trial.GetProperty("status").GetString());
            Assert.Equal("asha-cut", trial.GetProperty("stopCode").GetString());
            Guid jobId = trial.GetProperty("jobId").GetGuid();
            List<StreamEvent> history = await JobHarness.HistoryAsync(client, jobId);
            StreamEvent last = history.Last(e => e.Kind == "state");
            Assert.Equal("asha-cut", last.Code);
            int rung = history.Where(e => e.Kind == "epoch").Max(e => e.Epoch!.Value);
            Assert.True(last.Reason?.Contains($"asha: at the rung of epoch {rung}, trainLoss", StringComparison.Ordinal), $"trial {trial}: {last.Reason}");
            Assert.Equal(rung * StepsPerEpoch, history.Where(e => e.Kind == "step").Max(e => e.Step)); // not one step past the rung
            steps += rung * StepsPerEpoch;
            JsonElement job = await client.GetFromJsonAsync<JsonElement>($"/jobs/{jobId}");
            Assert.Equal("Cancelled", job.GetProperty("state").GetString());
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(new Uri($"/jobs/{jobId}/export?format=onnx", UriKind.Relative))).StatusCode);
        }

        // The leaderboard's rung reports replay the decisions: each judged against the ones before it.
        JsonElement board = await client.GetFromJsonAsync<JsonElement>($"/sweeps/{created.GetProperty("id").GetGuid()}/leaderboard");
        Assert.Equal(0, board.GetProperty("ranked")[0].GetProperty("trial").GetProperty("index").GetInt32());
        JsonElement[] firstRung = [.. board.GetProperty("ranked").EnumerateArray().SelectMany(r => r.GetProperty("rungs").EnumerateArray()).Where(r => r.GetProperty("epoch").GetInt32() == 1)];
        Assert.Equal(4, firstRung.Length);
        Assert.Single(firstRung, r => r.GetProperty("cutoff").ValueKind == JsonValueKind.Null);
        foreach (JsonElement report in board.GetProperty("ranked").EnumerateArray().SelectMany(r => r.GetProperty("rungs").EnumerateArray()))
        {
            if (report.GetProperty("cutoff") is { ValueKind: JsonValueKind.Number } cut)
            {
                Assert.Equal(report.GetProperty("value").GetDouble() <= cut.GetDouble(), report.GetProperty("continued").GetBoolean()); // minimise: at or under the cut goes on
            }
        }

        Assert.Equal(1, sweep.GetProperty("counts").GetProperty("Completed").GetInt32());
        Assert.Equal(3, sweep.GetProperty("counts").GetProperty("Stopped").GetInt32());
        Assert.Equal(steps, sweep.GetProperty("steps").GetInt64());
    }

    [Fact]
    public async Task AshaPromotionWaitsAtRungsHoldingNoPlaceAndTrainsOnTheBestAsIfNeverPaused()
    {
        // One active job per owner and one trial at a time: a trial waiting at a rung must hold neither, or nothing else
        // could start.
        await using TrainingServiceFactory factory = ServiceHarness.Factory(new() { ["Jobs:MaxActiveJobsPerOwner"] = "1", ["Sweeps:PollMilliseconds"] = "50" });
        using HttpClient client = factory.CreateClient();
        await RunAshaPromotionAsync(client);
    }

    /// <summary>
    /// A sweep that fails (its dataset deleted) cuts the trials waiting at a rung, but not one whose worker still held its
    /// lease as it paused: that state is made here by ending the sweep under a waiting trial. Every trial left waiting at
    /// a rung (and any that pauses there afterwards) is then cut as at a sweep's end, its last state event saying so.
    /// </summary>
    [Fact]
    public async Task TrialsLeftWaitingAtARungOfASweepThatEndedAreCut()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory(new() { ["Sweeps:PollMilliseconds"] = "50" });
        using HttpClient client = factory.CreateClient();
        Guid dataset = await JobHarness.CreateShapesAsync(client, samples: 256);
        (HttpResponseMessage response, JsonElement created) = await PostAsync(client, $$"""
            { "base": { "datasetId": "{{dataset}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "batchSize": 32 } },
              "searchSpace": [ { "path": "hyperparameters.learningRate", "choice": [0.02, 0.01, 0.005, 0.001] } ], "strategy": "asha", "parallelism": 1,
              "metric": { "name": "trainLoss" }, "asha": { "minEpochs": 2, "reductionFactor": 2, "maxEpochs": 8, "sampler": "grid" } }
            """);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Guid sweepId = created.GetProperty("id").GetGuid();
        await WaitAsync(client, sweepId, s => s.GetProperty("trialList").EnumerateArray().Any(t => t.GetProperty("status").GetString() == "Waiting"));
        using (IServiceScope scope = factory.Services.CreateScope())
        {
            TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
            Assert.Equal(1, await db.Sweeps.Where(s => s.Id == sweepId).ExecuteUpdateAsync(u => u
                .SetProperty(s => s.State, TrainingService.Contracts.Training.RunState.Failed).SetProperty(s => s.Error, "ended under a waiting trial")
                .SetProperty(s => s.FinishedAt, DateTime.UtcNow)));
        }

        // No trial stays waiting; the one cut (at least the one caught waiting) says why, in its job and its last event.
        JsonElement sweep = await WaitAsync(client, sweepId, s => s.GetProperty("trialList").EnumerateArray()
            .All(t => t.GetProperty("status").GetString() is not ("Waiting" or "Running" or "Pending")));
        JsonElement[] cut = [.. sweep.GetProperty("trialList").EnumerateArray().Where(t => t.GetProperty("stopCode").GetString() == "asha-cut")];
        Assert.NotEmpty(cut);
        foreach (JsonElement t in cut)
        {
            Assert.Contains("when the sweep ended", t.GetProperty("stopReason").GetString(), StringComparison.Ordinal);
            StreamEvent last = (await CutHistoryAsync(client, t.GetProperty("jobId").GetGuid())).Last(e => e.Kind == "state");
            Assert.Equal(("asha-cut", TrainingService.Contracts.Training.RunState.Cancelled), (last.Code, last.State));
        }

        Assert.Equal("Failed", sweep.GetProperty("state").GetString());
    }

    /// <summary>
    /// A trial's history once its last state event is the asha cut (up to 30 s): the event pump writes that event after
    /// the transaction that cut it and ended the sweep, so on a loaded machine the sweep can be seen ended before it.
    /// </summary>
    private static async Task<List<StreamEvent>> CutHistoryAsync(HttpClient client, Guid jobId)
    {
        for (DateTime deadline = DateTime.UtcNow.AddSeconds(30); ; await Task.Delay(100))
        {
            List<StreamEvent> history = await JobHarness.HistoryAsync(client, jobId);
            if (history.Last(e => e.Kind == "state").Code == "asha-cut" || DateTime.UtcNow > deadline)
            {
                return history;
            }
        }
    }

    /// <summary>
    /// Four trials, one at a time, η 2, rungs at epochs 2 and 4 of 8, ranked by train loss: first in the grid's order the
    /// one that learns (lr 0.02), then three whose rates are too small to move a float32 weight, so they keep the initial
    /// loss. The learner waits at rung 2 (the first report there: ⌊1/2⌋ = 0 may go on), is promoted once a second report
    /// comes, waits again at rung 4 and is promoted again when a second trial reaches it; the best non-learner goes on to
    /// rung 4 at the fourth report; the rest are cut as the sweep ends. (8 + 4 + 2 + 2) × 8 = 128 steps; the grid 256.
    /// </summary>
    internal static async Task RunAshaPromotionAsync(HttpClient client)
    {
        Guid dataset = await JobHarness.CreateShapesAsync(client, samples: 256);
        string[] space = ["""{ "path": "hyperparameters.learningRate", "choice": [0.02, 1e-12, 2e-12, 3e-12] }"""];
        List<SearchDimension> dimensions = [.. space.Select(s => JsonSerializer.Deserialize<SearchDimension>(s, JsonSerializerOptions.Web)!)];
        int seed = Enumerable.Range(1, 100).First(s => SearchSpace.Trials(dimensions, SweepStrategy.Asha, true, 4, s)[0]["hyperparameters.learningRate"]!.GetValue<double>() == 0.02);
        (HttpResponseMessage response, JsonElement created) = await PostAsync(client, $$"""
            { "base": { "datasetId": "{{dataset}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "batchSize": 32, "momentum": 0 } },
              "searchSpace": [ {{space[0]}} ], "strategy": "asha", "seed": {{seed}}, "parallelism": 1,
              "metric": { "name": "trainLoss" }, "asha": { "minEpochs": 2, "reductionFactor": 2, "maxEpochs": 8, "sampler": "grid" } }
            """);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Equal("promotion", created.GetProperty("settings").GetProperty("asha").GetProperty("mode").GetString());
        Guid sweepId = created.GetProperty("id").GetGuid();

        // Caught waiting: its job paused with code asha-rung and the reason, and a person's resume refused (a trial
        // promoted between the two reads is no longer paused: then another try).
        string? refusal = null;
        for (int attempt = 0; refusal is null || !refusal.Contains("waiting at asha's rung", StringComparison.Ordinal); attempt++)
        {
            Assert.True(attempt < 20, $"no trial refused a resume as waiting at a rung: {refusal}");
            JsonElement waiting = await WaitAsync(client, sweepId, s => s.GetProperty("trialList").EnumerateArray().Any(t => t.GetProperty("status").GetString() == "Waiting"));
            JsonElement trial = waiting.GetProperty("trialList").EnumerateArray().Last(t => t.GetProperty("status").GetString() == "Waiting");
            Assert.Contains("asha: waiting at the rung of epoch", trial.GetProperty("stopReason").GetString(), StringComparison.Ordinal);
            HttpResponseMessage resume = await ServiceHarness.PostAsync(client, $"/jobs/{trial.GetProperty("jobId").GetGuid()}/resume");
            Assert.Equal(HttpStatusCode.Conflict, resume.StatusCode);
            refusal = (await resume.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("detail").GetString();
        }

        JsonElement sweep = await WaitForSweepAsync(client, sweepId, "Succeeded");
        JsonElement[] trials = [.. sweep.GetProperty("trialList").EnumerateArray()];
        Assert.True(trials[0].GetProperty("status").GetString() == "Completed", (await client.GetFromJsonAsync<JsonElement>($"/sweeps/{sweepId}/leaderboard")).ToString());
        Assert.All(trials[1..], t => Assert.Equal("Stopped", t.GetProperty("status").GetString()));
        const long StepsPerEpoch = 8; // 256 samples, batch 32
        Assert.Equal((8 + 4 + 2 + 2) * StepsPerEpoch, sweep.GetProperty("steps").GetInt64()); // the grid: 4 × 8 epochs

        foreach (JsonElement t in trials[1..])
        {
            List<StreamEvent> history = await CutHistoryAsync(client, t.GetProperty("jobId").GetGuid());
            JobHarness.AssertConsecutive(history);
            int rung = history.Where(e => e.Kind == "epoch").Max(e => e.Epoch!.Value);
            Assert.Equal(rung * StepsPerEpoch, history.Where(e => e.Kind == "step").Max(e => e.Step)); // not one step past its last rung
            StreamEvent[] states = [.. history.Where(e => e.Kind == "state")];
            Assert.True(states is [.., { Code: "asha-rung" }, _], // it waited there, then was cut
                $"trial {t.GetProperty("jobId")}'s states: {string.Join("; ", states.Select(e => $"{e.Seq} {e.State} {e.Code} {e.Reason}"))}");
            Assert.Equal(TrainingService.Contracts.Training.RunState.Paused, states[^2].State);
            Assert.Equal("asha-cut", states[^1].Code);
            Assert.Contains($"asha: at the rung of epoch {rung}, trainLoss", states[^1].Reason, StringComparison.Ordinal);
            Assert.Contains("was not among the best 1/2 of the", states[^1].Reason, StringComparison.Ordinal);
        }

        // The learner paused twice and trained on each time from its checkpoint: its losses are those of the same
        // job run straight through.
        Guid bestJob = trials[0].GetProperty("jobId").GetGuid();
        List<StreamEvent> best = await JobHarness.HistoryAsync(client, bestJob);
        JobHarness.AssertConsecutive(best);
        Assert.Equal(2, best.Count(e => e.Kind == "state" && e.Code == "asha-rung"));
        JsonElement bestView = await client.GetFromJsonAsync<JsonElement>($"/jobs/{bestJob}");
        (HttpResponseMessage straightResponse, JsonElement straight) = await JobHarness.PostJobAsync(client, $$"""
            { "datasetId": "{{dataset}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": {{bestView.GetProperty("hyperparameters").GetRawText()}} }
            """);
        Assert.Equal(HttpStatusCode.Accepted, straightResponse.StatusCode);
        Guid straightId = straight.GetProperty("id").GetGuid();
        await JobHarness.WaitForStateAsync(client, straightId, "Succeeded");
        double?[] Losses(List<StreamEvent> events) => [.. events.Where(e => e.Kind == "step").OrderBy(e => e.Step).Select(e => e.Loss)];
        Assert.Equal(Losses(await JobHarness.HistoryAsync(client, straightId)), Losses(best));

        // The leaderboard: at each rung, promoted reports carry the cut they beat; the rest the cut they missed.
        JsonElement board = await client.GetFromJsonAsync<JsonElement>($"/sweeps/{sweepId}/leaderboard");
        var reports = board.GetProperty("ranked").EnumerateArray().SelectMany(r => r.GetProperty("rungs").EnumerateArray()
            .Select(g => (Trial: r.GetProperty("trial").GetProperty("index").GetInt32(), Epoch: g.GetProperty("epoch").GetInt32(), Value: g.GetProperty("value").GetDouble(),
                Cut: g.GetProperty("cutoff").GetDouble(), Continued: g.GetProperty("continued").GetBoolean(), Waiting: g.GetProperty("waiting").GetBoolean()))).ToList();
        Assert.Equal(4, reports.Count(r => r.Epoch == 2));
        Assert.Equal(2, reports.Count(r => r.Epoch == 2 && r.Continued));
        Assert.Equal(2, reports.Count(r => r.Epoch == 4));
        Assert.Equal(1, reports.Count(r => r.Epoch == 4 && r.Continued));
        Assert.All(reports, r => Assert.False(r.Waiting));
        Assert.All(reports, r => Assert.True(r.Continued ? r.Value <= r.Cut : r.Value >= r.Cut, r.ToString())); // a loss: the best, at or under the cut, go on
        Assert.Contains(reports, r => r.Trial == 0 && r.Epoch == 4 && r.Continued);
    }

    [Fact]
    public async Task ConcurrentRungReportsAreJudgedOneAtATimeInTheOrderTheyCame()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory(new() { ["Jobs:Concurrency"] = "3" });
        using HttpClient client = factory.CreateClient();
        await RunConcurrentAshaAsync(client);
    }

    /// <summary>
    /// Six trials, three at a time, reporting at rungs 1 and 2 at nearly the same moments: each report must have been
    /// judged against exactly the reports before it (its earlier count is its place, its cut their quantile).
    /// </summary>
    internal static async Task RunConcurrentAshaAsync(HttpClient client)
    {
        Guid dataset = await JobHarness.CreateShapesAsync(client, samples: 128);
        (HttpResponseMessage response, JsonElement created) = await PostAsync(client, $$"""
            { "base": { "datasetId": "{{dataset}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "batchSize": 32 } },
              "searchSpace": [ { "path": "hyperparameters.learningRate", "logUniform": { "min": 1e-4, "max": 0.2 } } ],
              "strategy": "asha", "trials": 6, "parallelism": 3, "asha": { "minEpochs": 1, "reductionFactor": 2, "maxEpochs": 4, "mode": "stopping" } }
            """);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Guid sweepId = created.GetProperty("id").GetGuid();
        JsonElement sweep = await WaitForSweepAsync(client, sweepId, "Succeeded", TimeSpan.FromSeconds(180));
        Assert.All(sweep.GetProperty("trialList").EnumerateArray(), t => Assert.True(t.GetProperty("status").GetString() is "Completed" or "Stopped", t.ToString()));
        JsonElement board = await client.GetFromJsonAsync<JsonElement>($"/sweeps/{sweepId}/leaderboard");
        var reports = board.GetProperty("ranked").EnumerateArray().SelectMany(r => r.GetProperty("rungs").EnumerateArray())
            .Select(r => (Epoch: r.GetProperty("epoch").GetInt32(), Value: r.GetProperty("value").GetDouble(), Earlier: r.GetProperty("earlier").GetInt32(),
                Cut: r.GetProperty("cutoff").ValueKind == JsonValueKind.Number ? r.GetProperty("cutoff").GetDouble() : (double?)null, Continued: r.GetProperty("continued").GetBoolean()))
            .ToList();
        Assert.Equal(6, reports.Count(r => r.Epoch == 1));
        foreach (var rung in reports.GroupBy(r => r.Epoch))
        {
            var ordered = rung.OrderBy(r => r.Earlier).ToList();
            Assert.Equal(Enumerable.Range(0, ordered.Count), ordered.Select(r => r.Earlier)); // no two judged against the same reports
            for (int i = 0; i < ordered.Count; i++)
            {
                double? cut = i == 0 ? null : Asha.Quantile([.. ordered.Take(i).Select(r => r.Value)], 0.5);
                Assert.Equal(cut, ordered[i].Cut);
                Assert.Equal(cut is null || ordered[i].Value >= cut, ordered[i].Continued); // validation accuracy, maximised
            }
        }
    }

    [Fact]
    public async Task ARangeTestRunsFirstAndEveryTrialTakesItsSuggestion()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory(new() { ["Jobs:Concurrency"] = "2" });
        using HttpClient client = factory.CreateClient();
        Guid dataset = await JobHarness.CreateShapesAsync(client, samples: 256);
        (HttpResponseMessage response, JsonElement created) = await PostAsync(client, $$"""
            { "base": { "datasetId": "{{dataset}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 1, "batchSize": 16 } },
              "learningRate": "fromRangeTest",
              "searchSpace": [ { "path": "layers.conv1.filters", "choice": [2, 4] } ], "parallelism": 2 }
            """);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.True(created.GetProperty("settings").GetProperty("learningRateFromRangeTest").GetBoolean());
        JsonElement sweep = await WaitForSweepAsync(client, created.GetProperty("id").GetGuid(), "Succeeded", TimeSpan.FromSeconds(180));

        Guid testId = sweep.GetProperty("rangeTestJobId").GetGuid();
        JsonElement test = await client.GetFromJsonAsync<JsonElement>($"/jobs/{testId}");
        Assert.Equal("learningRateRangeTest", test.GetProperty("sanity").GetProperty("check").GetString());
        Assert.Equal(JsonValueKind.Null, test.GetProperty("sweepTrial").ValueKind); // the sweep's, but no trial
        double suggested = (await JobHarness.HistoryAsync(client, testId)).Single(e => e.Kind == "sanity").SuggestedLearningRate!.Value;
        Assert.Equal(suggested, sweep.GetProperty("suggestedLearningRate").GetDouble());
        foreach (JsonElement trial in sweep.GetProperty("trialList").EnumerateArray())
        {
            JsonElement job = await client.GetFromJsonAsync<JsonElement>($"/jobs/{trial.GetProperty("jobId").GetGuid()}");
            Assert.Equal(suggested, job.GetProperty("hyperparameters").GetProperty("learningRate").GetDouble());
            Assert.True(job.GetProperty("createdAt").GetDateTime() >= test.GetProperty("finishedAt").GetDateTime());
        }

        Assert.Equal(3, (await client.GetFromJsonAsync<JsonElement>($"/jobs?sweepId={sweep.GetProperty("id").GetGuid()}")).GetProperty("items").GetArrayLength());
    }

    [Fact]
    public async Task ARangeAroundTheSuggestionDrawsWithinItAndAFailedTestFailsTheSweep()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory(new() { ["Jobs:Concurrency"] = "2" });
        using HttpClient client = factory.CreateClient();
        Guid dataset = await JobHarness.CreateShapesAsync(client, samples: 256);
        string Body(string rangeTest) => $$"""
            { "base": { "datasetId": "{{dataset}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 1, "batchSize": 16 } },
              "searchSpace": [ { "path": "hyperparameters.learningRate", "logUniform": { "around": "fromRangeTest", "factor": 3 } } ],
              "strategy": "random", "trials": 3, "parallelism": 2 {{rangeTest}} }
            """;
        (_, JsonElement around) = await PostAsync(client, Body(""));
        // Before the test has passed, the trials' rates are unknown.
        Assert.All(around.GetProperty("trialList").EnumerateArray(), t => Assert.Equal(JsonValueKind.Null, t.GetProperty("params").GetProperty("hyperparameters.learningRate").ValueKind));
        JsonElement sweep = await WaitForSweepAsync(client, around.GetProperty("id").GetGuid(), "Succeeded", TimeSpan.FromSeconds(180));
        double suggested = sweep.GetProperty("suggestedLearningRate").GetDouble();
        double[] rates = [.. sweep.GetProperty("trialList").EnumerateArray().Select(t => t.GetProperty("params").GetProperty("hyperparameters.learningRate").GetDouble())];
        Assert.Equal(3, rates.Distinct().Count());
        Assert.All(rates, r => Assert.InRange(r, suggested / 3, suggested * 3));

        // A range that never reaches a learning rate: the test suggests none, and the sweep fails before any trial.
        (_, JsonElement hopeless) = await PostAsync(client, Body(""", "rangeTest": { "minLearningRate": 1e-9, "maxLearningRate": 1e-8, "steps": 20 }"""));
        JsonElement failed = await WaitForSweepAsync(client, hopeless.GetProperty("id").GetGuid(), "Failed", TimeSpan.FromSeconds(120));
        Assert.StartsWith("learningRate from the range test:", failed.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal(3, failed.GetProperty("counts").GetProperty("Cancelled").GetInt32());
        Assert.Single((await client.GetFromJsonAsync<JsonElement>($"/jobs?sweepId={hopeless.GetProperty("id").GetGuid()}")).GetProperty("items").EnumerateArray());
    }

    [Fact]
    public async Task ADivergingTrialStopsAtOnceAndFreesItsSlot()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        Guid dataset = await JobHarness.CreateShapesAsync(client, samples: 256);
        (HttpResponseMessage response, JsonElement created) = await PostAsync(client, $$"""
            { "base": { "datasetId": "{{dataset}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 20, "batchSize": 16, "momentum": 0.99 } },
              "searchSpace": [ { "path": "hyperparameters.learningRate", "choice": [10, 0.01] } ], "parallelism": 1 }
            """);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        JsonElement sweep = await WaitForSweepAsync(client, created.GetProperty("id").GetGuid(), "Succeeded", TimeSpan.FromSeconds(180));
        JsonElement diverged = sweep.GetProperty("trialList")[0];
        Assert.Equal("Diverged", diverged.GetProperty("status").GetString());
        Assert.Contains("diverged", diverged.GetProperty("stopReason").GetString() ?? "", StringComparison.OrdinalIgnoreCase);
        Guid jobId = diverged.GetProperty("jobId").GetGuid();
        List<StreamEvent> history = await JobHarness.HistoryAsync(client, jobId);
        StreamEvent alert = history.First(e => e.Kind == "alert" && e.Code is "loss-explosion" or "non-finite");
        long lastStep = history.Where(e => e.Kind == "step").Max(e => e.Step!.Value);
        Assert.True(lastStep <= alert.Step + 1, $"the trial trained on to step {lastStep} after its {alert.Code} alert at step {alert.Step}");
        JsonElement job = await client.GetFromJsonAsync<JsonElement>($"/jobs/{jobId}");
        Assert.True(job.GetProperty("totalSteps").GetInt64() > lastStep);

        // The next trial started only after the diverged one ended, and it trained to its end.
        JsonElement next = await client.GetFromJsonAsync<JsonElement>($"/jobs/{sweep.GetProperty("trialList")[1].GetProperty("jobId").GetGuid()}");
        Assert.True(next.GetProperty("createdAt").GetDateTime() >= job.GetProperty("finishedAt").GetDateTime());
        Assert.Equal("Succeeded", next.GetProperty("state").GetString());
    }

    [Fact]
    public async Task CancelStopsTheActiveTrialsAndStartsNoMore()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        Guid dataset = await JobHarness.CreateShapesAsync(client, samples: 256);
        (_, JsonElement created) = await PostAsync(client, $$"""
            { "base": { "datasetId": "{{dataset}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 1000, "batchSize": 8 } },
              "searchSpace": [ { "path": "hyperparameters.learningRate", "logUniform": { "min": 0.001, "max": 0.1 } } ],
              "strategy": "random", "trials": 5, "parallelism": 1 }
            """);
        Guid sweepId = created.GetProperty("id").GetGuid();
        Guid first = await FirstJobAsync(client, sweepId);
        await JobHarness.WaitForStateAsync(client, first, "Running");

        JsonElement running = await ServiceHarness.AssertProblemAsync(await client.DeleteAsync(new Uri($"/jobs/{first}", UriKind.Relative)), HttpStatusCode.Conflict);
        Assert.Contains("still running", running.GetProperty("detail").GetString(), StringComparison.Ordinal);
        HttpResponseMessage cancel = await ServiceHarness.PostAsync(client, $"/sweeps/{sweepId}/cancel");
        Assert.Equal(HttpStatusCode.Accepted, cancel.StatusCode);
        Assert.Equal("Cancelled", (await cancel.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("state").GetString());
        JsonElement job = await JobHarness.WaitForStateAsync(client, first, "Cancelled");
        Assert.Equal("sweep-cancelled", job.GetProperty("stopCode").GetString());
        StreamEvent last = (await JobHarness.HistoryAsync(client, first)).Last(e => e.Kind == "state");
        Assert.Equal("sweep-cancelled", last.Code);

        await Task.Delay(1500); // three of the controller's polls
        JsonElement sweep = await client.GetFromJsonAsync<JsonElement>($"/sweeps/{sweepId}");
        Assert.Equal(1, (await client.GetFromJsonAsync<JsonElement>($"/jobs?sweepId={sweepId}")).GetProperty("items").GetArrayLength());
        Assert.Equal(["Cancelled", "Cancelled", "Cancelled", "Cancelled", "Cancelled"], sweep.GetProperty("trialList").EnumerateArray().Select(t => t.GetProperty("status").GetString()));
        await ServiceHarness.AssertProblemAsync(await ServiceHarness.PostAsync(client, $"/sweeps/{sweepId}/cancel"), HttpStatusCode.Conflict);

        // Once the sweep has ended its trials' jobs may go; the trial stays, saying so.
        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync(new Uri($"/jobs/{first}", UriKind.Relative))).StatusCode);
        JsonElement after = (await client.GetFromJsonAsync<JsonElement>($"/sweeps/{sweepId}")).GetProperty("trialList")[0];
        Assert.Equal(("Cancelled", "its job was deleted after the sweep ended"), (after.GetProperty("status").GetString(), after.GetProperty("stopReason").GetString()));
    }

    [Fact]
    public async Task TrialsWaitForTheOwnersActiveJobQuotaAndSweepsHaveTheirOwn()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory(new() { ["Jobs:MaxActiveJobsPerOwner"] = "1", ["Sweeps:MaxActiveSweepsPerOwner"] = "1" });
        using HttpClient client = factory.CreateClient();
        Guid dataset = await JobHarness.CreateShapesAsync(client, samples: 64);
        (_, JsonElement other) = await JobHarness.PostJobAsync(client, $$"""{ "datasetId": "{{dataset}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 10000 } }""");
        Guid otherId = other.GetProperty("id").GetGuid();
        string body = $$"""
            { "base": { "datasetId": "{{dataset}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 1 } },
              "searchSpace": [ { "path": "hyperparameters.learningRate", "choice": [0.01] } ], "parallelism": 1 }
            """;
        (HttpResponseMessage response, JsonElement created) = await PostAsync(client, body);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Guid sweepId = created.GetProperty("id").GetGuid();
        JsonElement waiting = await WaitAsync(client, sweepId, s => s.GetProperty("waiting").ValueKind == JsonValueKind.String);
        Assert.Contains("Jobs:MaxActiveJobsPerOwner", waiting.GetProperty("waiting").GetString(), StringComparison.Ordinal);
        Assert.Equal("Pending", waiting.GetProperty("trialList")[0].GetProperty("status").GetString());
        JsonElement noBest = await ServiceHarness.AssertProblemAsync(await client.PostAsJsonAsync($"/sweeps/{sweepId}/best/model", new { name = "none" }), HttpStatusCode.Conflict);
        Assert.Contains("no best trial", noBest.GetProperty("title").GetString(), StringComparison.OrdinalIgnoreCase);

        JsonElement second = await ServiceHarness.AssertProblemAsync((await PostAsync(client, body)).Response, HttpStatusCode.TooManyRequests);
        Assert.Equal("Sweeps:MaxActiveSweepsPerOwner", second.GetProperty("limit").GetString());
        await ServiceHarness.AssertProblemAsync(await client.DeleteAsync(new Uri($"/datasets/{dataset}", UriKind.Relative)), HttpStatusCode.Conflict);

        Assert.Equal(HttpStatusCode.Accepted, (await ServiceHarness.PostAsync(client, $"/jobs/{otherId}/cancel")).StatusCode);
        JsonElement done = await WaitForSweepAsync(client, sweepId, "Succeeded");
        Assert.Equal(JsonValueKind.Null, done.GetProperty("waiting").ValueKind);
    }

    [Theory]
    [InlineData("""{ "searchSpace": [] }""", "base")]
    [InlineData("""{ "base": { "sanity": { "check": "overfitSubset" } }, "searchSpace": [] }""", "base.sanity")]
    [InlineData("""{ "base": {}, "searchSpace": [] }""", "searchSpace")]
    [InlineData("""{ "base": {}, "searchSpace": [ { "path": "hyperparameters.learningRat", "choice": [0.1] } ] }""", "searchSpace[0].path")]
    [InlineData("""{ "base": {}, "searchSpace": [ { "path": "layers.conv9.filters", "choice": [4] } ] }""", "searchSpace[0].path")]
    [InlineData("""{ "base": {}, "searchSpace": [ { "path": "layers.relu1.filters", "choice": [4] } ] }""", "searchSpace[0].path")]
    [InlineData("""{ "base": {}, "searchSpace": [ { "path": "hyperparameters.epochs", "choice": [4] } ] }""", "searchSpace[0].path")]
    [InlineData("""{ "base": {}, "searchSpace": [ { "path": "hyperparameters.optimizer", "uniform": { "min": 0, "max": 1, "points": 2 } } ] }""", "searchSpace[0].uniform")]
    [InlineData("""{ "base": {}, "searchSpace": [ { "path": "layers.conv1.filters", "uniform": { "min": 2, "max": 8, "points": 2 } } ] }""", "searchSpace[0].uniform")]
    [InlineData("""{ "base": {}, "searchSpace": [ { "path": "hyperparameters.learningRate", "logUniform": { "min": 0, "max": 1, "points": 3 } } ] }""", "searchSpace[0].logUniform.min")]
    [InlineData("""{ "base": {}, "searchSpace": [ { "path": "hyperparameters.learningRate", "uniform": { "min": 0.1, "max": 0.01, "points": 3 } } ] }""", "searchSpace[0].uniform.min")]
    [InlineData("""{ "base": {}, "searchSpace": [ { "path": "hyperparameters.learningRate", "uniform": { "min": 0.01, "max": 0.1 } } ] }""", "searchSpace[0].uniform.points")]
    [InlineData("""{ "base": {}, "searchSpace": [ { "path": "hyperparameters.learningRate", "choice": [0.1], "uniform": { "min": 0.01, "max": 0.1 } } ] }""", "searchSpace[0]")]
    [InlineData("""{ "base": {}, "searchSpace": [ { "path": "hyperparameters.learningRate", "choice": [0.1] }, { "path": "hyperparameters.learningRate", "choice": [0.2] } ] }""", "searchSpace[1].path")]
    [InlineData("""{ "base": {}, "searchSpace": [ { "path": "hyperparameters.learningRate", "choice": [0.1, 20] } ] }""", "searchSpace[0]")]
    [InlineData("""{ "base": {}, "searchSpace": [ { "path": "layers.conv1.filters", "choice": [4, 0] } ] }""", "searchSpace[0]")]
    [InlineData("""{ "base": {}, "searchSpace": [ { "path": "hyperparameters.optimizer", "choice": ["sgd", "lion"] } ] }""", "searchSpace[0]")]
    [InlineData("""{ "base": {}, "searchSpace": [ { "path": "hyperparameters.learningRate", "choice": [0.1] } ], "trials": 3 }""", "trials")]
    [InlineData("""{ "base": {}, "searchSpace": [ { "path": "hyperparameters.learningRate", "logUniform": { "min": 0.001, "max": 0.1 } } ], "strategy": "random" }""", "trials")]
    [InlineData("""{ "base": {}, "searchSpace": [ { "path": "hyperparameters.learningRate", "choice": [0.1] } ], "parallelism": 0 }""", "parallelism")]
    [InlineData("""{ "base": {}, "searchSpace": [ { "path": "hyperparameters.learningRate", "choice": [0.1] } ], "asha": { "minEpochs": 1 } }""", "asha")]
    [InlineData("""{ "base": {}, "searchSpace": [ { "path": "hyperparameters.learningRate", "choice": [0.1] } ], "strategy": "asha", "trials": 1, "asha": { "minEpochs": 3, "maxEpochs": 3 } }""", "asha.minEpochs")]
    [InlineData("""{ "base": {}, "searchSpace": [ { "path": "hyperparameters.learningRate", "choice": [0.1] } ], "strategy": "asha", "trials": 1, "asha": { "reductionFactor": 1 } }""", "asha.reductionFactor")]
    [InlineData("""{ "base": { "monitoring": { "diagnostics": { "enabled": false } } }, "searchSpace": [ { "path": "hyperparameters.learningRate", "choice": [0.1] } ] }""", "base.monitoring.diagnostics.enabled")]
    [InlineData("""{ "base": { "hyperparameters": { "batchSize": 0 } }, "searchSpace": [ { "path": "hyperparameters.learningRate", "choice": [0.1] } ] }""", "base.hyperparameters.batchSize")]
    [InlineData("""{ "base": { "model": {}, "modelId": "01a2223f-0000-0000-0000-000000000000" }, "searchSpace": [] }""", "base.model")]
    [InlineData("""{ "base": {}, "searchSpace": [ { "path": "layers.conv1.filters", "choice": [4] } ], "learningRate": "sometimes" }""", "learningRate")]
    [InlineData("""{ "base": {}, "searchSpace": [ { "path": "hyperparameters.learningRate", "choice": [0.1] } ], "learningRate": "fromRangeTest" }""", "learningRate")]
    [InlineData("""{ "base": {}, "searchSpace": [ { "path": "layers.conv1.filters", "choice": [4] } ], "rangeTest": { "steps": 100 } }""", "rangeTest")]
    [InlineData("""{ "base": {}, "searchSpace": [ { "path": "layers.conv1.filters", "choice": [4] } ], "learningRate": "fromRangeTest", "rangeTest": { "steps": 5 } }""", "rangeTest.steps")]
    [InlineData("""{ "base": {}, "searchSpace": [ { "path": "hyperparameters.momentum", "logUniform": { "around": "fromRangeTest" } } ], "strategy": "random", "trials": 2 }""", "searchSpace[0].logUniform.around")]
    [InlineData("""{ "base": {}, "searchSpace": [ { "path": "hyperparameters.learningRate", "logUniform": { "around": "fromRangeTest", "factor": 1 } } ], "strategy": "random", "trials": 2 }""", "searchSpace[0].logUniform.factor")]
    [InlineData("""{ "base": {}, "searchSpace": [ { "path": "hyperparameters.learningRate", "logUniform": { "around": "fromRangeTest" } } ] }""", "searchSpace[0].logUniform.points")]
    public async Task AnInvalidSweepIsA400NamingTheFieldAndStoresNothing(string json, string field)
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        await JobHarness.CreateShapesAsync(client, samples: 64);
        JsonElement problem = await ServiceHarness.AssertProblemAsync((await PostAsync(client, json)).Response, HttpStatusCode.BadRequest);
        Assert.Contains(field, ServiceHarness.FieldsOf(problem));
        Assert.Equal(0, (await client.GetFromJsonAsync<JsonElement>("/sweeps")).GetProperty("items").GetArrayLength());
        Assert.Equal(0, (await client.GetFromJsonAsync<JsonElement>("/jobs")).GetProperty("items").GetArrayLength());
    }

    [Fact]
    public async Task ATrialThatCannotBeTrainedIsNamedWithItsSettings()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        await JobHarness.CreateShapesAsync(client, samples: 64);
        JsonElement problem = await ServiceHarness.AssertProblemAsync((await PostAsync(client, """
            { "base": {}, "searchSpace": [ { "path": "hyperparameters.momentum", "choice": [0.5] },
                                           { "path": "hyperparameters.learningRate", "choice": [0.1, 20] } ] }
            """)).Response, HttpStatusCode.BadRequest);
        string message = problem.GetProperty("errors").GetProperty("searchSpace[1]")[0].GetString()!;
        Assert.Contains("trial 1 (hyperparameters.momentum 0.5, hyperparameters.learningRate 20)", message, StringComparison.Ordinal);
        Assert.Contains("learningRate must be above 0 and at most 10", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SwaggersExampleStartsASweepAsItStands()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        Assert.Equal(HttpStatusCode.Created, (await client.PostAsJsonAsync("/datasets/builtin", new { })).StatusCode);
        JsonElement swagger = await client.GetFromJsonAsync<JsonElement>("/swagger/v1/swagger.json");
        JsonElement example = swagger.GetProperty("paths").GetProperty("/sweeps").GetProperty("post").GetProperty("requestBody")
            .GetProperty("content").GetProperty("application/json").GetProperty("example");
        (HttpResponseMessage response, JsonElement sweep) = await PostAsync(client, example.GetRawText());
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Equal(12, sweep.GetProperty("trials").GetInt32());
        Assert.Equal(HttpStatusCode.Accepted, (await ServiceHarness.PostAsync(client, $"/sweeps/{sweep.GetProperty("id").GetGuid()}/cancel")).StatusCode);
    }

    internal static async Task<(HttpResponseMessage Response, JsonElement Body)> PostAsync(HttpClient client, string json)
    {
        HttpResponseMessage response = await client.PostAsync(new Uri("/sweeps", UriKind.Relative), new StringContent(json, System.Text.Encoding.UTF8, "application/json"));
        JsonElement body = response.Content.Headers.ContentLength == 0 ? default : await response.Content.ReadFromJsonAsync<JsonElement>();
        return (response, body);
    }

    internal static Task<JsonElement> WaitForSweepAsync(HttpClient client, Guid id, string state, TimeSpan? timeout = null) =>
        WaitAsync(client, id, s => s.GetProperty("state").GetString() == state, timeout, s => s.GetProperty("state").GetString() is "Failed" or "Cancelled" or "Succeeded");

    internal static async Task<JsonElement> WaitAsync(HttpClient client, Guid id, Func<JsonElement, bool> done, TimeSpan? timeout = null, Func<JsonElement, bool>? ended = null)
    {
        DateTime deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(120));
        while (true)
        {
            JsonElement sweep = await client.GetFromJsonAsync<JsonElement>($"/sweeps/{id}");
            if (done(sweep))
            {
                return sweep;
            }

            Assert.False(ended?.Invoke(sweep) ?? false, $"sweep {id} ended otherwise: {sweep}");
            Assert.True(DateTime.UtcNow < deadline, $"sweep {id} is still not there: {sweep}");
            await Task.Delay(100);
        }
    }

    private static async Task<Guid> FirstJobAsync(HttpClient client, Guid sweepId)
    {
        JsonElement sweep = await WaitAsync(client, sweepId, s => s.GetProperty("trialList")[0].GetProperty("jobId").ValueKind == JsonValueKind.String);
        return sweep.GetProperty("trialList")[0].GetProperty("jobId").GetGuid();
    }
}
