using TorchSharp;
using TorchSharp.Modules;
using TrainingService.Contracts.Specs;
using TrainingService.Contracts.Training;
using TrainingService.Training.Models;
using TrainingService.Training.Monitoring;
using TrainingService.Training.Specs;
using Xunit;
using static TorchSharp.torch;

namespace TrainingService.Training.Tests.Monitoring;

/// <summary>The collector reads tensor memory on the host; torch, computing on the same tensors, is the reference.</summary>
public sealed class StatsCollectorTests
{
    // Batch 4 of 1×8×8: conv 4×4×6×6 = 576 values, pool 144, linear 12 — all below the sample size, so summarised exactly.
    private static readonly ModelSpec s_small = Net(8,
        new LayerSpec { Kind = "conv2d", Filters = 4, Kernel = 3 },
        new LayerSpec { Kind = "relu" },
        new LayerSpec { Kind = "maxpool2d", Kernel = 2 },
        new LayerSpec { Kind = "flatten" },
        new LayerSpec { Kind = "linear", Units = 3 });

    // Batch 16 of 1×28×28: conv 16×6×28×28 = 75,264 values, sampled.
    private static readonly ModelSpec s_large = Net(28,
        new LayerSpec { Kind = "conv2d", Filters = 6, Kernel = 5, Padding = 2 },
        new LayerSpec { Kind = "relu" },
        new LayerSpec { Kind = "flatten" },
        new LayerSpec { Kind = "linear", Units = 3 });

    [Fact]
    public void SmallLayerOutputsAreSummarisedExactly()
    {
        using Observed step = Observed.Step(s_small, batch: 4, sampleSize: 4096);

        Assert.Equal(step.Model.Plan.Select(p => p.Name), step.Stats.Layers.Select(l => l.Name));
        Assert.Equal(["conv2d", "relu", "maxpool2d", "flatten", "linear"], step.Stats.Layers.Select(l => l.Kind));
        for (int i = 0; i < step.Outputs.Count; i++)
        {
            LayerStats stats = step.Stats.Layers[i];
            using Tensor values = step.Outputs[i].to(ScalarType.Float64).flatten();
            long count = values.numel();
            Assert.True(count < 4096);
            Assert.Equal(values.mean().item<double>(), stats.Mean, 1e-9);
            Assert.Equal(values.std(unbiased: false).item<double>(), stats.Std, 1e-9);
            Assert.Equal(values.min().item<double>(), stats.Min);
            Assert.Equal(values.max().item<double>(), stats.Max);
            Assert.Equal((double)values.eq(0).sum().item<long>() / count, stats.ZeroFraction);
            Assert.Equal(StatsCollector.HistogramBins, stats.Histogram.Length);
            Assert.Equal(count, stats.Histogram.Sum());
            Assert.Equal(Histogram(values, stats.Min, stats.Max), stats.Histogram);
        }

        Assert.True(step.Stats.Layers[1].ZeroFraction > 0.2, "a relu after a fresh convolution zeroes a good part of its input");
    }

    [Fact]
    public void NonFiniteLayerOutputsAreReportedNotFatal()
    {
        using var model = new SpecModel(SpecAnalyzer.Analyze(s_small), seed: 1);
        var collector = new StatsCollector(model);
        using var scope = NewDisposeScope();
        Tensor x = randn(2, 1, 8, 8);
        x[0, 0, 0, 0] = tensor(float.NaN);
        x[1, 0, 0, 0] = tensor(float.PositiveInfinity);

        collector.BeginForward();
        model.call(x);
        collector.BeforeUpdate();
        LayersEvent stats = collector.AfterUpdate(1);

        LayerStats conv = stats.Layers[0];
        Assert.True(double.IsNaN(conv.Mean));
        Assert.All(conv.Histogram, count => Assert.Equal(0, count));
        Assert.Equal(5, stats.Layers.Count);
    }

    [Fact]
    public void LargeLayerOutputsAreSampledCloseToTheExactFigures()
    {
        const int SampleSize = 4096;
        using Observed step = Observed.Step(s_large, batch: 16, sampleSize: SampleSize);

        for (int i = 0; i < 3; i++)
        {
            LayerStats stats = step.Stats.Layers[i];
            using Tensor values = step.Outputs[i].to(ScalarType.Float64).flatten();
            Assert.Equal(16 * 6 * 28 * 28, values.numel());
            double std = values.std(unbiased: false).item<double>();

            // The standard error of a 4096-sample mean is std/64: allow ten of them.
            Assert.InRange(stats.Mean, values.mean().item<double>() - (std / 6.4), values.mean().item<double>() + (std / 6.4));
            Assert.InRange(stats.Std, std * 0.9, std * 1.1);
            Assert.InRange(stats.Min, values.min().item<double>(), double.MaxValue);
            Assert.InRange(stats.Max, double.MinValue, values.max().item<double>());
            double zeros = (double)values.eq(0).sum().item<long>() / values.numel();
            Assert.InRange(stats.ZeroFraction, zeros - 0.05, zeros + 0.05);
            Assert.Equal(SampleSize, stats.Histogram.Sum());
        }

        LayerStats linear = step.Stats.Layers[3];
        Assert.Equal(16 * 3, linear.Histogram.Sum());
    }

    [Fact]
    public void ParameterNormsGradientNormsAndUpdateRatiosMatchTorch()
    {
        using Observed step = Observed.Step(s_small, batch: 4, sampleSize: 4096);

        Assert.Equal(["conv1.weight", "conv1.bias", "linear1.weight", "linear1.bias"], step.Stats.Parameters.Select(p => p.Name));
        for (int i = 0; i < step.Stats.Parameters.Count; i++)
        {
            ParameterStats stats = step.Stats.Parameters[i];
            double norm = Norm(step.WeightsBefore[i]);
            double gradNorm = Norm(step.Gradients[i]);
            using Tensor update = step.WeightsAfter[i] - step.WeightsBefore[i];
            AssertClose(norm, stats.Norm);
            AssertClose(gradNorm, stats.GradNorm);
            AssertClose(Norm(update) / norm, stats.UpdateRatio);

            // Plain SGD: the update is the learning rate times the gradient.
            AssertClose(Observed.LearningRate * gradNorm / norm, stats.UpdateRatio);
        }
    }

    private static ModelSpec Net(int size, params LayerSpec[] layers) => new() { Input = new InputSpec(1, size, size), Layers = layers };

    private static double Norm(Tensor t)
    {
        using Tensor d = t.to(ScalarType.Float64);
        using Tensor squares = d.square();
        using Tensor sum = squares.sum();
        return Math.Sqrt(sum.item<double>());
    }

    private static void AssertClose(double expected, double actual) =>
        Assert.True(Math.Abs(expected - actual) <= 1e-5 * Math.Abs(expected), $"expected {expected}, got {actual}");

    /// <summary>32 equal bins from min to max, the maximum in the last: the collector's definition, computed by torch.</summary>
    private static long[] Histogram(Tensor values, double min, double max)
    {
        using var scope = NewDisposeScope();
        Tensor bins = max > min
            ? values.sub(min).mul(StatsCollector.HistogramBins / (max - min)).floor().clamp_max(StatsCollector.HistogramBins - 1).to(ScalarType.Int64)
            : zeros_like(values, ScalarType.Int64);
        return bins.bincount(null, StatsCollector.HistogramBins).data<long>().ToArray();
    }

    /// <summary>One SGD step of a fresh model with the collector on, keeping copies of what torch needs to check it.</summary>
    private sealed class Observed : IDisposable
    {
        public const double LearningRate = 0.1;

        private Observed(SpecModel model, LayersEvent stats, List<Tensor> outputs, Tensor[] before, Tensor[] after, Tensor[] gradients)
        {
            Model = model;
            Stats = stats;
            Outputs = outputs;
            WeightsBefore = before;
            WeightsAfter = after;
            Gradients = gradients;
        }

        public SpecModel Model { get; }

        public LayersEvent Stats { get; }

        public List<Tensor> Outputs { get; }

        public Tensor[] WeightsBefore { get; }

        public Tensor[] WeightsAfter { get; }

        public Tensor[] Gradients { get; }

        public static Observed Step(ModelSpec spec, int batch, int sampleSize)
        {
            var model = new SpecModel(SpecAnalyzer.Analyze(spec), seed: 1);
            var collector = new StatsCollector(model, sampleSize);
            using SGD optimizer = optim.SGD(model.parameters(), LearningRate);
            InputSpec input = spec.Input!;
            using var generator = new Generator(42);
            using Tensor x = randn([batch, input.Channels, input.Height, input.Width], generator: generator);
            using Tensor y = randint(0, 3, [batch], generator: generator);

            var outputs = new List<Tensor>();
            collector.BeginForward();
            Action<int, Tensor> collect = model.LayerOutputObserver!;
            model.LayerOutputObserver = (index, output) =>
            {
                collect(index, output);
                outputs.Add(output.detach().clone());
            };
            optimizer.zero_grad();
            using Tensor logits = model.call(x);
            using Tensor loss = nn.functional.cross_entropy(logits, y);
            loss.backward();
            collector.BeforeUpdate();
            Parameter[] parameters = [.. model.parameters()];
            Tensor[] before = [.. parameters.Select(p => p.detach().clone())];
            Tensor[] gradients = [.. parameters.Select(p => p.grad!.detach().clone())];
            optimizer.step();
            LayersEvent stats = collector.AfterUpdate(step: 1);
            Tensor[] after = [.. parameters.Select(p => p.detach().clone())];
            return new Observed(model, stats, outputs, before, after, gradients);
        }

        public void Dispose()
        {
            foreach (Tensor t in Outputs.Concat(WeightsBefore).Concat(WeightsAfter).Concat(Gradients))
            {
                t.Dispose();
            }

            Model.Dispose();
        }
    }
}
