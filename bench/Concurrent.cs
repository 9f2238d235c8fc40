using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using TrainingService.Contracts.Specs;
using TrainingService.Training.Data;
using static Stats;

/// <summary>
/// Issue 15's concurrent jobs: one job alone on a node of defaults (Jobs:Concurrency 1, a thread per core), then 2 and
/// 4 jobs at once on nodes of Jobs:Concurrency 2 and 4 (cores ÷ concurrency threads each), each node a child process
/// started once and idle between its turns, in interleaved rounds. A configuration's total images per second runs from
/// the first step event of its jobs to the last. Every job has the same seed, and its step losses must equal, exactly,
/// those of the same job trained alone on the same node (same threads) before the rounds.
/// </summary>
internal static class Concurrent
{
    private const int Seed = 1;

    public static async Task RunAsync(ImageDataset data, ModelSpec model, int rounds)
    {
        const int Batch = 64;
        (string Name, int Jobs)[] configurations = [("1 job alone", 1), ("2 jobs at once", 2), ("4 jobs at once", 4)];
        var services = new Dictionary<string, ServiceUnderTest>();
        try
        {
            foreach (var (name, jobs) in configurations)
            {
                string[] settings = jobs == 1 ? [] : ["--Jobs:Concurrency", jobs.ToString(CultureInfo.InvariantCulture)];
                services[name] = await ServiceUnderTest.StartAsync(data, model, settings);
            }

            var reference = new Dictionary<string, double[]>();
            foreach (var (name, service) in services)
            {
                // The job alone on this node: the losses its concurrent runs must repeat, and the node's warm run.
                Guid job = await service.StartJobAsync(epochs: 1, Batch, Seed);
                reference[name] = Losses(await StepsAsync(service, [job]))[0];
            }

            var totals = configurations.ToDictionary(c => c.Name, _ => new List<double>());
            var identical = configurations.ToDictionary(c => c.Name, _ => "yes");
            for (int round = 0; round < rounds; round++)
            {
                foreach (var (name, jobs) in configurations)
                {
                    ServiceUnderTest service = services[name];
                    var started = new List<Guid>();
                    for (int i = 0; i < jobs; i++)
                    {
                        started.Add(await service.StartJobAsync(epochs: 1, Batch, Seed));
                    }

                    List<JsonElement[]> steps = await StepsAsync(service, started);
                    totals[name].Add(TotalImagesPerSecond(steps, Batch));
                    if (identical[name] == "yes" && FirstDifference(reference[name], Losses(steps)) is (int job, int step))
                    {
                        identical[name] = $"no: round {round + 1}, job {job}, step {step} first";
                    }
                }
            }

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"LeNet-5 on {data.Train.Count} Fashion-MNIST images, 1 epoch per job, batch {Batch}, stats every 10 steps, " +
                $"seed {Seed}; {Environment.ProcessorCount} cores, {rounds} interleaved rounds"));
            Console.WriteLine("| configuration | median total images/s | median of per-round ratios to 1 job alone " +
                "| total images/s per round | losses identical to the job alone |");
            Console.WriteLine("|---|---:|---:|---|---|");
            List<double> alone = totals[configurations[0].Name];
            foreach (var (name, jobs) in configurations)
            {
                int threads = Threads(jobs);
                List<double> ratios = [.. totals[name].Zip(alone, (v, a) => v / a)];
                string perRound = string.Join(" ", totals[name].Select(v => v.ToString("F0", CultureInfo.InvariantCulture)));
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {name} (Jobs:Concurrency {jobs}, {threads} thread{(threads == 1 ? "" : "s")} per job) " +
                    $"| {Median(totals[name]):F0} | {Median(ratios):F3} | {perRound} | {identical[name]} |"));
                if (jobs > 1)
                {
                    Summary.Add($"{name}: total images/s ÷ 1 job alone", Median(ratios), "F3", "≥ 0.95", Median(ratios) >= 0.95);
                    Summary.Add($"{name}: each job's losses as when trained alone", identical[name], "identical", identical[name] == "yes");
                }
            }

            // Why the reference is the node's own: a job's losses may depend on its thread count.
            (int Job, int Step)? acrossThreads = FirstDifference(reference["1 job alone"], [reference["2 jobs at once"]]);
            string verdict = acrossThreads is (_, int first) ? $"differ (step {first} first)" : "are identical";
            Console.WriteLine($"The job alone with {Threads(1)} threads and with {Threads(2)}: its losses {verdict}.");
        }
        finally
        {
            foreach (ServiceUnderTest service in services.Values)
            {
                service.Dispose();
            }
        }
    }

    /// <summary>
    /// Images per second of all the jobs together, from the first step event to the last: each job's first step ends
    /// before or near the interval's start, so (as in ServiceUnderTest.TrainOnce) it is not counted.
    /// </summary>
    private static double TotalImagesPerSecond(List<JsonElement[]> steps, int batch)
    {
        DateTime[] times = [.. steps.SelectMany(s => s).Select(e => e.GetProperty("time").GetDateTime())];
        return steps.Sum(s => s.Length - 1) * batch / (times.Max() - times.Min()).TotalSeconds;
    }

    private static List<double[]> Losses(List<JsonElement[]> steps) =>
        [.. steps.Select(s => s.Select(e => e.GetProperty("loss").GetDouble()).ToArray())];

    /// <summary>The first job (from 1) whose losses are not exactly <paramref name="reference"/>'s, and its first step that differs.</summary>
    private static (int Job, int Step)? FirstDifference(double[] reference, List<double[]> jobs)
    {
        for (int job = 0; job < jobs.Count; job++)
        {
            double[] losses = jobs[job];
            for (int step = 0; step < Math.Max(reference.Length, losses.Length); step++)
            {
                if (step >= reference.Length || step >= losses.Length || losses[step] != reference[step])
                {
                    return (job + 1, step + 1);
                }
            }
        }

        return null;
    }

    /// <summary>Waits for the jobs to succeed (polling each 4×/s, as a dashboard would), then reads their step events.</summary>
    private static async Task<List<JsonElement[]>> StepsAsync(ServiceUnderTest service, List<Guid> jobs)
    {
        foreach (Guid job in jobs)
        {
            while (true)
            {
                JsonElement view = await service.Client.GetFromJsonAsync<JsonElement>($"/jobs/{job}");
                string state = view.GetProperty("state").GetString()!;
                if (state == "Succeeded")
                {
                    break;
                }

                if (state is "Failed" or "Cancelled")
                {
                    throw new InvalidOperationException($"bench job {state}: {view}");
                }

                await Task.Delay(250);
            }
        }

        var steps = new List<JsonElement[]>();
        foreach (Guid job in jobs)
        {
            var own = new List<JsonElement>();
            for (long after = 0; ;)
            {
                string uri = $"/jobs/{job}/events?afterSeq={after}&limit=1000";
                JsonElement[] page = (await service.Client.GetFromJsonAsync<JsonElement[]>(uri))!;
                if (page.Length == 0)
                {
                    break;
                }

                own.AddRange(page.Where(e => e.GetProperty("kind").GetString() == "step"));
                after = page[^1].GetProperty("seq").GetInt64();
            }

            steps.Add([.. own]);
        }

        return steps;
    }

    /// <summary>JobOptions.JobThreads of a node with Jobs:Concurrency <paramref name="jobs"/> on this machine.</summary>
    private static int Threads(int jobs) => Math.Max(1, Environment.ProcessorCount / jobs);
}
