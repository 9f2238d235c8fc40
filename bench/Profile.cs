using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using TorchSharp;
using TrainingService.Training.Data;
using TrainingService.Training.Models;
using TrainingService.Training.Monitoring;
using TrainingService.Training.Specs;
using static TorchSharp.torch;
using static Stats;

/// <summary>
/// Where a training step's time goes: the Trainer's step cut into phases (batch gather and normalise, zero_grad,
/// forward, loss, backward, optimizer, loss read-back, statistics on every tenth step, the dispose scope's end),
/// each timed with a Stopwatch around synchronous CPU work, beside the same phases of PyTorch's loop
/// (bench/pytorch_lenet.py --profile) in rounds alternating in one run.
/// </summary>
internal static class Profile
{
    private static readonly string[] Phases = ["batch", "zero_grad", "forward", "loss", "backward", "optimizer", "read-back", "statistics", "scope end"];

    public static bool Pool { get; set; }

    public static bool Layers { get; set; }

    public static bool Tail { get; set; }

    /// <summary><paramref name="model"/>: the peer's (lenet or vgg, bench/pytorch_lenet.py --model) for <paramref name="spec"/>.</summary>
    public static void Run(SpecAnalysis spec, ImageDataset data, int steps, int batch, int threads, int rounds, bool pytorch, string model = "lenet")
    {
        set_num_threads(threads);
        if (Pool)
        {
            // Max pooling alone, ours against libtorch's, on LeNet-5's two pool inputs.
            foreach (long[] shape in new[] { new long[] { 64, 6, 28, 28 }, [64, 16, 10, 10] })
            {
                using Tensor input = randn(shape).relu();
                for (int k = 0; k < 3; k++)
                {
                    foreach ((string name, Func<Tensor, Tensor> f) in new (string, Func<Tensor, Tensor>)[]
                    {
                        ("libtorch", x => nn.functional.max_pool2d(x, [2, 2], [2, 2])),
                        ("ours", x => TrainingService.Training.Models.MaxPool2d.Apply(x, 2, 2, 2, 2, 0, 0)),
                    })
                    {
                        long s0 = Stopwatch.GetTimestamp();
                        for (int i = 0; i < 200; i++)
                        {
                            f(input).Dispose();
                        }

                        double plain = Stopwatch.GetElapsedTime(s0).TotalMicroseconds / 200;
                        double forward = 0, backward = 0;
                        for (int i = 0; i < 200; i++)
                        {
                            using var scope = NewDisposeScope();
                            Tensor x = input.detach().requires_grad_();
                            long a = Stopwatch.GetTimestamp();
                            Tensor y = f(x);
                            long b = Stopwatch.GetTimestamp();
                            y.sum().backward();
                            long c = Stopwatch.GetTimestamp();
                            forward += Us(a, b);
                            backward += Us(b, c);
                        }

                        Console.WriteLine($"{string.Join('x', shape)} {name}: no grad {plain:F0} µs, with grad {forward / 200:F0} µs, sum+backward {backward / 200:F0} µs");
                    }

                    // Our backward's own work, without autograd around it: the gradient of a contiguous output.
                    using Tensor indices = empty([shape[0], shape[1], shape[2] / 2, shape[3] / 2], ScalarType.Int32);
                    using Tensor pooled = TrainingService.Training.Models.MaxPool2d.Forward(input, indices);
                    using Tensor gradient = randn_like(pooled);
                    long s1 = Stopwatch.GetTimestamp();
                    for (int i = 0; i < 200; i++)
                    {
                        TrainingService.Training.Models.MaxPool2d.Backward(gradient, indices, shape).Dispose();
                    }

                    Console.WriteLine($"{string.Join('x', shape)} ours: backward alone {Stopwatch.GetElapsedTime(s1).TotalMicroseconds / 200:F0} µs");
                }
            }

            return;
        }

        string title = model == "vgg" ? $"the small VGG on CIFAR-shaped {data.Channels}×{data.Height}×{data.Width} images" : "LeNet-5";
        Console.WriteLine($"### Per-phase profile: {title}, batch {batch}, {threads} threads, {steps} timed steps per block after 20 warm-up steps, {rounds} rounds; median µs per step over each block, then the median over rounds");
        var ours = Phases.ToDictionary(p => p, _ => new List<double>());
        var theirs = Phases.ToDictionary(p => p, _ => new List<double>());
        List<double> oursRate = [], theirsRate = [];
        for (int round = 0; round < rounds; round++)
        {
            (Dictionary<string, double> phases, double rate) = Block(spec, data, steps, batch);
            foreach (string p in Phases)
            {
                ours[p].Add(phases[p]);
            }

            oursRate.Add(rate);
            if (pytorch)
            {
                JsonElement result = JsonDocument.Parse(PyTorchPeer.Run(steps, batch, threads, profile: true, model)).RootElement.Clone();
                foreach (string p in Phases)
                {
                    theirs[p].Add(result.TryGetProperty(p, out JsonElement v) ? v.GetDouble() : 0);
                }

                theirsRate.Add(result.GetProperty("images_per_second").GetDouble());
            }
        }

        Console.WriteLine("| phase | TorchSharp (our step), µs | PyTorch 1.13, µs |");
        Console.WriteLine("|---|---:|---:|");
        foreach (string p in Phases)
        {
            Console.WriteLine(Inv($"| {p} | {Median(ours[p]):F0} | {(pytorch ? Median(theirs[p]).ToString("F0", CultureInfo.InvariantCulture) : "—")} |"));
        }

        Console.WriteLine(Inv($"| sum of medians | {Phases.Sum(p => Median(ours[p])):F0} | {(pytorch ? Phases.Sum(p => Median(theirs[p])).ToString("F0", CultureInfo.InvariantCulture) : "—")} |"));
        Console.WriteLine(Inv($"| images/s over the block | {Median(oursRate):F0} | {(pytorch ? Median(theirsRate).ToString("F0", CultureInfo.InvariantCulture) : "—")} |"));
    }

    private static (Dictionary<string, double> Phases, double Rate) Block(SpecAnalysis spec, ImageDataset data, int steps, int batch)
    {
        using var model = new SpecModel(spec, seed: 1);
        using var optimizer = optim.SGD(model.parameters(), 0.01, 0.9);
        var stats = new StatsCollector(model, 4096, 1);
        using Tensor images = tensor(data.Train.Images, [data.Train.Count, data.Channels, data.Height, data.Width], ScalarType.Byte);
        using Tensor labels = tensor(data.Train.Labels, ScalarType.Byte).to(ScalarType.Int64);
        using Tensor scale = tensor(data.Std.Select(s => 1f / (255f * s)).ToArray()).reshape(1, data.Channels, 1, 1);
        using Tensor shift = tensor(data.Mean.Zip(data.Std, (m, s) => -m / s).ToArray()).reshape(1, data.Channels, 1, 1);
        int[] order = [.. Enumerable.Range(0, data.Train.Count)];
        new Random(1).Shuffle(order);
        model.train();
        var times = Phases.ToDictionary(p => p, _ => new List<double>(steps));
        long[] t = new long[10];
        double[] layerTimes = new double[model.Plan.Count];
        long from = 0;
        for (int step = 0; step < steps + 20; step++)
        {
            if (step == 20)
            {
                from = Stopwatch.GetTimestamp();
            }

            int start = (step * batch) % (order.Length - batch);
            bool collect = (step + 1) % 10 == 0;
            t[0] = Stopwatch.GetTimestamp();
            var scope = NewDisposeScope();
            Tensor index = tensor(order[start..(start + batch)], ScalarType.Int32).to(ScalarType.Int64);
            Tensor x = images.index_select(0, index).to(ScalarType.Float32).mul_(scale).add_(shift);
            Tensor y = labels.index_select(0, index);
            t[1] = Stopwatch.GetTimestamp();
            optimizer.zero_grad();
            t[2] = Stopwatch.GetTimestamp();
            long s0 = 0;
            if (collect)
            {
                stats.BeginForward();
            }

            long layerStart = Stopwatch.GetTimestamp();
            if (Layers && !collect && step >= 20)
            {
                // Timing each layer costs a callback per layer: only on request, so the phases are not measured with it.
                model.LayerOutputObserver = (i, _) =>
                {
                    long now = Stopwatch.GetTimestamp();
                    layerTimes[i] += Us(layerStart, now);
                    layerStart = now;
                };
            }

            Tensor logits = model.call(x);
            model.LayerOutputObserver = null;
            t[3] = Stopwatch.GetTimestamp();
            Tensor loss = nn.functional.cross_entropy(logits, y);
            t[4] = Stopwatch.GetTimestamp();
            loss.backward();
            t[5] = Stopwatch.GetTimestamp();
            if (collect)
            {
                s0 = Stopwatch.GetTimestamp();
                stats.BeforeUpdate();
                s0 = Stopwatch.GetTimestamp() - s0;
            }

            optimizer.step();
            t[6] = Stopwatch.GetTimestamp();
            if (collect)
            {
                long s1 = Stopwatch.GetTimestamp();
                _ = stats.AfterUpdate(step + 1);
                s0 += Stopwatch.GetTimestamp() - s1;
            }

            t[7] = Stopwatch.GetTimestamp();
            _ = loss.item<float>();
            t[8] = Stopwatch.GetTimestamp();
            scope.Dispose();
            t[9] = Stopwatch.GetTimestamp();
            if (step >= 20)
            {
                times["batch"].Add(Us(t[0], t[1]));
                times["zero_grad"].Add(Us(t[1], t[2]));
                times["forward"].Add(Us(t[2], t[3])); // with statistics: their layer observers too
                times["loss"].Add(Us(t[3], t[4]));
                times["backward"].Add(Us(t[4], t[5]));
                times["optimizer"].Add(Us(t[5], t[6]) - (collect ? Stopwatch.GetElapsedTime(0, s0).TotalMicroseconds : 0));
                times["statistics"].Add(collect ? Stopwatch.GetElapsedTime(0, s0).TotalMicroseconds : 0);
                times["read-back"].Add(Us(t[7], t[8]));
                times["scope end"].Add(Us(t[8], t[9]));
                // AfterUpdate sits between the optimizer and the read-back; its time is in "statistics", not in either.
            }
        }

        double rate = steps * batch / Stopwatch.GetElapsedTime(from).TotalSeconds;
        if (Tail)
        {
            // Steps whose total is in the slowest 5%: which phase took the extra time, against that phase's median.
            double[] totals = [.. Enumerable.Range(0, steps).Select(k => Phases.Sum(p => times[p][k]))];
            double[] sorted = [.. totals.Order()];
            double cut = sorted[(int)(0.95 * steps)];
            int[] slow = [.. Enumerable.Range(0, steps).Where(k => totals[k] >= cut)];
            Console.WriteLine(Inv($"step totals µs: p50 {sorted[steps / 2]:F0}, p90 {sorted[(int)(0.9 * steps)]:F0}, p99 {sorted[(int)(0.99 * steps)]:F0}, max {sorted[^1]:F0}; time outside the timed phases {(Stopwatch.GetElapsedTime(from).TotalMicroseconds - totals.Sum()) / steps:F0} µs a step"));
            Console.WriteLine("slowest 5% of steps, mean excess over the phase's median, µs: " + string.Join(", ", Phases.Select(p => Inv($"{p} {slow.Average(k => times[p][k]) - Median(times[p]):F0}"))));
        }

        if (Layers)
        {
            Console.WriteLine("forward by layer, mean µs: " + string.Join(", ", model.Plan.Select((l, i) => $"{l.Name} {layerTimes[i] / (steps * 0.9):F0}")));
        }

        // Statistics run on one step in ten: their per-step cost is the mean, not the median (which would be 0).
        return (Phases.ToDictionary(p => p, p => p == "statistics" ? times[p].Average() : Median(times[p])), rate);
    }

    private static double Us(long from, long to) => Stopwatch.GetElapsedTime(from, to).TotalMicroseconds;

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
