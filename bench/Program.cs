using System.Diagnostics;
using System.Globalization;
using TorchSharp;
using TrainingService.Contracts.Training;
using TrainingService.Training.Data;
using TrainingService.Training.Loop;
using TrainingService.Training.Models;
using TrainingService.Training.Native;
using TrainingService.Training.Specs;
using static Stats;
using static TorchSharp.torch;

// Benchmarks, measured side by side in one process and reported as ratios (docs/benchmarks.md).
//   all        issue 15's table: the modes below one after another (each in its own process), then their headline figures against the targets
//   throughput [--rounds N] [--steps N] [--batch N] [--threads N] [--peers: only the bare loop, the service and PyTorch]
//              (BENCH_GAPS=1: the time between each service job's step events, to stderr; =2: its slow steps listed too)
//              --halves: only the bare loop and the same loop with each batch in two halves at once, a thread each (as the Trainer trains with 2+ threads)
//   accuracy   [--epochs N] [--model lenet5|vgg|…]  a preset on Fashion-MNIST, SGD with a cosine schedule
//   predict    [--requests N]  one-image prediction latency through the service (HTTP, JSON pixels)
//   profile    [--steps N] [--batch N] [--threads N] [--rounds N] [--pool] [--layers] [--tail] [--vgg]  a step's time by phase, beside PyTorch's
//              (bench/Profile.cs); --layers: the forward pass by layer too; --tail: the slowest steps' phases; --pool: max pooling alone, ours against libtorch's
//              --vgg: the small VGG on CIFAR-shaped images (bench/Cifar.cs) instead of LeNet-5 on Fashion-MNIST
//   latency    [--seconds N]   step end on the server → point drawn in the dashboard, with 1 and 50 clients
//   scale      [--images N] [--samples N] [--kills N] [--rounds N] [--window S] [--warm S] [--seconds S] [--only latency,kill,throughput,events] [--configs A,A1,B,A2,B2 (a trailing p: OMP_WAIT_POLICY=PASSIVE, s: GOMP_SPINCOUNT=10000)]  (BENCH_JIT_LOG=dir: each node logs what its JIT compiles)
//              api and worker nodes as processes on PostgreSQL and Redis (bench/ScaleOut.cs)
//   fanout     [--viewers 500] [--jobs 4] [--rounds 2] [--warm S] [--seconds S]  jobs training at once, with and without viewers in another process (bench/FanOut.cs)
//   concurrent [--images N] [--rounds N]  1 job alone, then 2 and 4 at once (Jobs:Concurrency 2, 4): total images/s, losses as alone (bench/Concurrent.cs)
//   cifar      [--rounds N] [--steps N] [--channels-last]  the small VGG on CIFAR-shaped 3×32×32 images, batch 128: the service against PyTorch
//              (bench/Cifar.cs); --channels-last: PyTorch with NHWC tensors too, the ratio to the faster of its two
//   sweep      [--images N] [--test N] [--epochs N] [--eta N]  16 learning-rate × width trials as a full grid, then with asha: steps and best accuracy (bench/Sweep.cs)
//   memory     [--epochs N] [--datasets N] [--jobs N] [--images N] [--warm-up N]  the service's resident memory over a 10-epoch
//              job on all 60,000 images, then after 20 small datasets and 100 short jobs (bench/Memory.cs)
string mode = args.FirstOrDefault(a => !a.StartsWith("--", StringComparison.Ordinal)) ?? "throughput";
if (mode == "all")
{
    // Issue 15's table in one go (about 20 minutes on 2 cores): each mode in its own process, so none inherits another's memory or threads.
    return Summary.RunAll([
        ["throughput", "--peers", "--rounds", "5"], ["cifar", "--rounds", "3", "--steps", "30", "--channels-last"], ["concurrent", "--rounds", "2"], ["fanout", "--rounds", "2"],
        ["memory"], ["predict"]]);
}

Summary.PrintAtExit();
// The issue's figures are ratios to PyTorch: without it, say so and stop rather than print a table without the peer.
if ((mode == "cifar" || args.Contains("--peers")) && !PyTorchPeer.Available())
{
    Console.Error.WriteLine("The PyTorch peer is missing: /usr/bin/python3 cannot import torch and numpy. "
        + "Install Debian's: apt-get install -y python3-torch libopenblas0-pthread");
    return 2;
}

if (mode == "viewers")
{
    await FanOut.ViewersAsync(args); // the fan-out's viewers, in their own process
    return 0;
}

int Option(string name, int fallback)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
}

NativeTuning.Apply(); // as the Trainer does, so the bare loop runs with the same allocator settings

const string FashionMnist = "/usr/share/datasets/fashion-mnist";
Console.WriteLine($"# {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, .NET {Environment.Version}");
ImageDataset fashion = IdxReader.Read(
    "fashion-mnist",
    Path.Combine(FashionMnist, "train-images-idx3-ubyte.gz"),
    Path.Combine(FashionMnist, "train-labels-idx1-ubyte.gz"),
    Path.Combine(FashionMnist, "t10k-images-idx3-ubyte.gz"),
    Path.Combine(FashionMnist, "t10k-labels-idx1-ubyte.gz"));
SpecAnalysis lenet = SpecAnalyzer.Analyze(ModelPresets.LeNet5());

if (mode == "accuracy")
{
    int epochs = Option("--epochs", 10);
    int i = Array.IndexOf(args, "--model");
    string modelName = i >= 0 && i + 1 < args.Length ? args[i + 1] : "lenet5";
    ModelPreset preset = ModelPresets.All().Single(p => p.Name == modelName);
    var sink = new Recorder(print: true);
    var hp = new Hyperparameters { Epochs = epochs, BatchSize = 64, LearningRate = 0.05, Momentum = 0.9, Schedule = ScheduleKind.Cosine, WeightDecay = 5e-4 };
    using var trainer = new Trainer(
        TrainingPlan.Require(SpecAnalyzer.Analyze(preset.Spec), DatasetShape.Of(fashion), hp, new MonitoringOptions { StatsEvery = 10 }, threads: Option("--threads", 2)), fashion, sink);
    using var control = new TrainingControl();
    var clock = Stopwatch.StartNew();
    trainer.Run(control, CancellationToken.None);
    Console.WriteLine($"{preset.Name} on Fashion-MNIST, {epochs} epochs {hp}: best test accuracy {sink.Epochs.Max(e => e.ValidationAccuracy):P2}, final {sink.Epochs[^1].ValidationAccuracy:P2}, {clock.Elapsed.TotalSeconds:F0} s");
    return 0;
}

if (mode == "predict")
{
    await PredictLatency.RunAsync(Subset(fashion, 6400), ModelPresets.LeNet5(), Option("--requests", 2000));
    return 0;
}

if (mode == "scale")
{
    await ScaleOut.RunAsync(Subset(fashion, Option("--images", 12800)), ModelPresets.LeNet5(), args);
    return 0;
}

if (mode == "fanout")
{
    await FanOut.RunAsync(Subset(fashion, Option("--images", 12800)), ModelPresets.LeNet5(), args);
    return 0;
}

if (mode == "sweep")
{
    ImageDataset train = Subset(fashion, Option("--images", 12000));
    int test = Option("--test", 5000);
    await Sweep.RunAsync(train with { Test = new ImageSplit { Images = fashion.Test!.Images[..(test * fashion.SampleSize)], Labels = fashion.Test.Labels[..test] } },
        ModelPresets.LeNet5(), Option("--epochs", 9), Option("--eta", 3), args.SkipWhile(a => a != "--asha-mode").Skip(1).FirstOrDefault() ?? "promotion");
    return 0;
}

if (mode == "concurrent")
{
    await Concurrent.RunAsync(Subset(fashion, Option("--images", 12800)), ModelPresets.LeNet5(), Option("--rounds", 3));
    return 0;
}

if (mode == "cifar")
{
    await Cifar.RunAsync(fashion, Option("--rounds", 3), Option("--steps", 50), args.Contains("--channels-last"), (spec, data, batch) => BareLoop(spec, data, batch));
    return 0;
}

if (mode == "memory")
{
    await Memory.RunAsync(fashion with { Test = null }, ModelPresets.LeNet5(), Option("--epochs", 10), Option("--datasets", 20), Option("--jobs", 100), Option("--images", 1000), Option("--warm-up", 1));
    return 0;
}

if (mode == "profile")
{
    Profile.Pool = args.Contains("--pool");
    Profile.Layers = args.Contains("--layers");
    Profile.Tail = args.Contains("--tail");
    if (args.Contains("--vgg"))
    {
        SpecAnalysis vgg = SpecAnalyzer.Analyze(ModelPresets.SmallVgg(3, 32, 32));
        Profile.Run(vgg, Cifar.Shaped(fashion, 6400), Option("--steps", 50), Option("--batch", 128), Option("--threads", 2), Option("--rounds", 3), PyTorchPeer.Available(), "vgg");
        return 0;
    }

    Profile.Run(lenet, Subset(fashion, 12800), Option("--steps", 300), Option("--batch", 64), Option("--threads", 2), Option("--rounds", 5), PyTorchPeer.Available());
    return 0;
}

if (mode == "latency")
{
    await Latency.RunAsync(Subset(fashion, 6400), ModelPresets.LeNet5(), Option("--seconds", 20));
    return 0;
}

int rounds = Option("--rounds", 5), steps = Option("--steps", 300), batch = Option("--batch", 64), threads = Option("--threads", 2);
set_num_threads(threads);
ImageDataset subset = Subset(fashion, steps * batch);
(string Name, Func<double> Run)[] configurations =
[
    ("bare TorchSharp loop", () => BareLoop(lenet, subset, batch)),
    ("Trainer, stats off", () => TrainerRun(lenet, subset, batch, threads, 0)),
    ("Trainer, stats every 10 steps", () => TrainerRun(lenet, subset, batch, threads, 10)),
    ("Trainer, defaults: stats every 10 steps, diagnostics, pictures at the epoch's end", () => TrainerRun(lenet, subset, batch, threads, 10, defaults: true)),
    ("Trainer, stats every step", () => TrainerRun(lenet, subset, batch, threads, 1)),
    ("Trainer, stats every 10 steps, augmentation (crop 4, flip, translate 2)", () => TrainerRun(lenet, subset, batch, threads, 10,
        augmentation: new AugmentationOptions { RandomCrop = new RandomCropOptions { Padding = 4 }, HorizontalFlip = true, Translate = 2 })),
];
if (args.Contains("--peers"))
{
    configurations = configurations[..1];
}

if (args.Contains("--halves"))
{
    configurations = [configurations[0], ("bare loop, two half-batches at once, one thread each", () => BareLoop(lenet, subset, batch, halves: true))];
}

using ServiceUnderTest? service = args.Contains("--no-service") ? null : await ServiceUnderTest.StartAsync(subset, ModelPresets.LeNet5());
if (service is not null)
{
    configurations = [.. configurations, ("the service (REST job, stats every 10 steps, events persisted, status polled 4×/s)", () => service.TrainOnce(batch))];
}

if (PyTorchPeer.Available())
{
    configurations = [.. configurations, ("PyTorch (Debian python3-torch), same loop", () => double.Parse(PyTorchPeer.Run(steps, batch, threads), CultureInfo.InvariantCulture))];
}

var results = configurations.ToDictionary(c => c.Name, _ => new List<double>());
foreach (var (name, run) in configurations)
{
    run(); // warm-up: JIT, allocator, oneDNN kernels
}

for (int round = 0; round < rounds; round++)
{
    foreach (var (name, run) in configurations)
    {
        results[name].Add(run());
    }
}

Console.WriteLine($"LeNet-5, Fashion-MNIST, batch {batch}, {threads} threads, {steps} steps per block, {rounds} interleaved rounds");
Console.WriteLine("| configuration | median images/s | median of per-round ratios to the bare loop | images/s per round |");
Console.WriteLine("|---|---:|---:|---|");
List<double> bare = results[configurations[0].Name];
foreach (var (name, _) in configurations)
{
    List<double> ratios = [.. results[name].Zip(bare, (v, b) => v / b)];
    Console.WriteLine($"| {name} | {Median(results[name]):F0} | {Median(ratios):F3} | {string.Join(" ", results[name].Select(v => v.ToString("F0", CultureInfo.InvariantCulture)))} |");
}

string serviceName = configurations.FirstOrDefault(c => c.Name.StartsWith("the service", StringComparison.Ordinal)).Name;
string pytorchName = configurations.FirstOrDefault(c => c.Name.StartsWith("PyTorch", StringComparison.Ordinal)).Name;
if (serviceName is not null && pytorchName is not null)
{
    double ratio = Median([.. results[serviceName].Zip(results[pytorchName], (v, p) => v / p)]);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"the service ÷ PyTorch, median of per-round ratios: {ratio:F3}"));
    Summary.Add($"LeNet-5 training (Fashion-MNIST, batch {batch}): the service ÷ PyTorch", ratio, "F3", "≥ 1.1", ratio >= 1.1);
}

return 0;

static ImageDataset Subset(ImageDataset data, int count) => data with
{
    Train = new ImageSplit { Images = data.Train.Images[..(count * data.SampleSize)], Labels = data.Train.Labels[..count] },
    Test = null,
};

// The same model, data path (uint8 images gathered per batch, normalised per channel), optimiser and threads
// as the Trainer, with nothing else: no events, statistics, accuracy or bookkeeping. One pass per batch, every op on
// the intra-op threads; or (halves) as the Trainer trains with 2+ threads: each batch split in two halves, forward and
// backward on a thread each with one intra-op thread, autograd adding their gradients, then one optimizer step.
static double BareLoop(SpecAnalysis spec, ImageDataset data, int batch, bool halves = false)
{
    using var model = new SpecModel(spec, seed: 1);
    using var optimizer = optim.SGD(model.parameters(), 0.01, 0.9);
    using Tensor images = tensor(data.Train.Images, [data.Train.Count, data.Channels, data.Height, data.Width], ScalarType.Byte);
    using Tensor labels = tensor(data.Train.Labels, ScalarType.Byte).to(ScalarType.Int64);
    using Tensor scale = tensor(data.Std.Select(s => 1f / (255f * s)).ToArray()).reshape(1, data.Channels, 1, 1);
    using Tensor shift = tensor(data.Mean.Zip(data.Std, (m, s) => -m / s).ToArray()).reshape(1, data.Channels, 1, 1);
    int[] order = [.. Enumerable.Range(0, data.Train.Count)];
    new Random(1).Shuffle(order);
    model.train();
    int threads = get_num_threads();
    using HalfBatches? other = halves ? new HalfBatches() : null;
    if (halves)
    {
        set_num_threads(1);
    }

    Tensor HalfLoss(Tensor x, Tensor y, long n)
    {
        Tensor loss = nn.functional.cross_entropy(model.call(x), y, reduction: nn.Reduction.Sum).div_(n);
        loss.backward();
        return loss;
    }

    var clock = Stopwatch.StartNew();
    for (int start = 0; start < order.Length; start += batch)
    {
        using var scope = NewDisposeScope();
        using Tensor index = tensor(order[start..Math.Min(start + batch, order.Length)], ScalarType.Int32).to(ScalarType.Int64);
        Tensor x = images.index_select(0, index).to(ScalarType.Float32).mul_(scale).add_(shift);
        Tensor y = labels.index_select(0, index);
        optimizer.zero_grad();
        if (other is null)
        {
            Tensor loss = nn.functional.cross_entropy(model.call(x), y);
            loss.backward();
            optimizer.step();
            _ = loss.item<float>();
        }
        else
        {
            long n = x.shape[0], h = n / 2;
            Tensor x2 = x.narrow(0, h, n - h), y2 = y.narrow(0, h, n - h);
            float loss2 = 0;
            other.Start(() => loss2 = HalfLoss(x2, y2, n).item<float>());
            float loss1 = HalfLoss(x.narrow(0, 0, h), y.narrow(0, 0, h), n).item<float>();
            other.Wait();
            optimizer.step();
            _ = loss1 + loss2;
        }
    }

    double rate = order.Length / clock.Elapsed.TotalSeconds;
    set_num_threads(threads);
    return rate;
}

// Without defaults: no diagnostics and no pictures (the figures of the earlier runs). With them: the babysitting rules
// on every step and statistics measurement, and the filters and feature maps of 16 probe images at the block's end.
static double TrainerRun(SpecAnalysis spec, ImageDataset data, int batch, int threads, int statsEvery, bool defaults = false, AugmentationOptions? augmentation = null)
{
    var hp = new Hyperparameters { Epochs = 1, BatchSize = batch, ValidationFraction = 0, Augmentation = augmentation };
    var monitoring = new MonitoringOptions { StatsEvery = statsEvery, Diagnostics = new DiagnosticsOptions { Enabled = defaults } };
    string? visuals = defaults ? Path.Combine(Path.GetTempPath(), $"bench-visuals-{Environment.ProcessId}.bin") : null;
    using var trainer = new Trainer(
        TrainingPlan.Require(spec, DatasetShape.Of(data), hp, monitoring, threads: threads), data, new Recorder(print: false), new TrainerOptions { VisualsPath = visuals });
    using var control = new TrainingControl();
    var clock = Stopwatch.StartNew();
    trainer.Run(control, CancellationToken.None);
    return data.Train.Count / clock.Elapsed.TotalSeconds;
}

internal sealed class Recorder(bool print) : ITrainingSink
{
    public List<EpochEvent> Epochs { get; } = [];

    public long Count { get; private set; }

    public void Publish(TrainingEvent trainingEvent)
    {
        Count++;
        if (trainingEvent is EpochEvent epoch)
        {
            Epochs.Add(epoch);
            if (print)
            {
                Console.WriteLine($"epoch {epoch.Epoch}: train loss {epoch.TrainLoss:F4} acc {epoch.TrainAccuracy:P2}, test loss {epoch.ValidationLoss:F4} acc {epoch.ValidationAccuracy:P2} at {DateTime.UtcNow:HH:mm:ss}");
            }
        }
    }

    public long Flush() => Count;
}
