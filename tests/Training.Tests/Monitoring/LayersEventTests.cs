using TrainingService.Contracts.Training;
using TrainingService.Training.Data;
using TrainingService.Training.Specs;
using TrainingService.Training.Tests.Loop;
using Xunit;

namespace TrainingService.Training.Tests.Monitoring;

[Collection(SequentialTraining.Name)]
public sealed class LayersEventTests
{
    // 12 steps per epoch: 192 samples in batches of 16, no validation.
    private static readonly ImageDataset s_data = Harness.Shapes(samples: 192);
    private static readonly Hyperparameters s_hp = new() { Epochs = 2, BatchSize = 16, ValidationFraction = 0 };

    [Fact]
    public void ALayersEventFollowsEveryStatsEveryStepWithEveryLayerAndParameter()
    {
        RecordingSink sink = Harness.Train(ModelPresets.LeNet5(classes: 4), s_data, s_hp, statsEvery: 5);

        LayersEvent[] layers = [.. sink.Events.OfType<LayersEvent>()];
        Assert.Equal([5L, 10, 15, 20], layers.Select(l => l.Step));
        foreach (LayersEvent stats in layers)
        {
            int index = sink.Events.ToList().IndexOf(stats);
            Assert.Equal(stats.Step, Assert.IsType<StepEvent>(sink.Events[index - 1]).Step);
            Assert.Equal(
                ["conv1", "relu1", "maxpool1", "conv2", "relu2", "maxpool2", "flatten1", "linear1", "relu3", "linear2", "relu4", "linear3"],
                stats.Layers.Select(l => l.Name));
            Assert.Equal(
                ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "linear1.weight", "linear1.bias",
                 "linear2.weight", "linear2.bias", "linear3.weight", "linear3.bias"],
                stats.Parameters.Select(p => p.Name));
            Assert.All(stats.Layers, l => Assert.Equal(Math.Min(4096, LayerSize(l.Name) * 16), l.Histogram.Sum()));
            Assert.All(stats.Parameters, p => Assert.True(p.Norm > 0 && p.GradNorm > 0 && p.UpdateRatio is > 0 and < 1, p.ToString()));
        }

        Harness.AssertConsecutiveSeq(sink.Seqs);
    }

    [Fact]
    public void NoLayersEventWhenStatsAreOff()
    {
        RecordingSink sink = Harness.Train(ModelPresets.LeNet5(classes: 4), s_data, s_hp, statsEvery: 0);

        Assert.Equal(24, sink.Steps.Count);
        Assert.DoesNotContain(sink.Events, e => e is LayersEvent);
    }

    /// <summary>Values per sample of each LeNet-5 layer's output on 28×28.</summary>
    private static int LayerSize(string layer) => layer switch
    {
        "conv1" or "relu1" => 6 * 28 * 28,
        "maxpool1" => 6 * 14 * 14,
        "conv2" or "relu2" => 16 * 10 * 10,
        "maxpool2" or "flatten1" => 16 * 5 * 5,
        "linear1" or "relu3" => 120,
        "linear2" or "relu4" => 84,
        "linear3" => 4,
        _ => throw new ArgumentOutOfRangeException(nameof(layer), layer, null),
    };
}
