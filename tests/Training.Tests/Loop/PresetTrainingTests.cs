using TrainingService.Contracts.Training;
using TrainingService.Training.Data;
using TrainingService.Training.Specs;
using Xunit;
using Xunit.Abstractions;

namespace TrainingService.Training.Tests.Loop;

/// <summary>Every preset, graphs included, learns the built-in shapes: a short run takes it far above chance.</summary>
[Collection(SequentialTraining.Name)]
public sealed class PresetTrainingTests(ITestOutputHelper output)
{
    private static readonly ImageDataset s_shapes = Harness.Shapes(samples: 800, classes: 4, testSamples: 200);

    public static TheoryData<string> Presets => [.. ModelPresets.All().Select(p => p.Name)];

    [Theory]
    [MemberData(nameof(Presets))]
    public void PresetLearnsTheShapes(string name)
    {
        ModelPreset preset = ModelPresets.All(1, 28, 28, 4).Single(p => p.Name == name);
        // AlexNet has no normalisation: at Adam 2e-3 most of conv2's ReLUs die within 50 steps (relu2's std 0.06-0.17 against
        // conv2's 1.3-1.7, six seeds) and validation swings 92% -> 51% between epochs; 5e-4 keeps them alive (best 71-99%).
        double learningRate = name == "alexnet" ? 5e-4 : 2e-3;
        var hp = new Hyperparameters { Epochs = 4, BatchSize = 32, Optimizer = OptimizerKind.Adam, LearningRate = learningRate, Momentum = 0 };
        var clock = System.Diagnostics.Stopwatch.StartNew();

        RecordingSink sink = Harness.Train(preset.Spec, s_shapes, hp);

        double best = sink.Epochs.Max(e => e.ValidationAccuracy ?? 0);
        output.WriteLine($"{name}: validation accuracy per epoch {string.Join(", ", sink.Epochs.Select(e => $"{e.ValidationAccuracy:P1}"))}; first loss {sink.Steps[0].Loss:F3}, last {sink.Steps[^1].Loss:F3}; {clock.Elapsed.TotalSeconds:F1} s");
        Assert.All(sink.Steps, s => Assert.True(double.IsFinite(s.Loss)));
        // Twice chance: seeded runs land elsewhere on another CPU's kernels, and the lowest best seen over six seeds was 71%.
        Assert.True(best >= 0.5, $"{name}: best validation accuracy {best:P1} on 4 classes (chance 25%)");
    }
}
