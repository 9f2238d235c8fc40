using System.Diagnostics;
using TrainingService.Contracts.Training;
using TrainingService.Training.Data;
using TrainingService.Training.Loop;
using TrainingService.Training.Specs;
using Xunit;
using Xunit.Abstractions;

namespace TrainingService.Training.Tests.Loop;

[Collection(SequentialTraining.Name)]
public sealed class FashionMnistTrainingTests(ITestOutputHelper output)
{
    private const string Folder = "/usr/share/datasets/fashion-mnist";
    private static readonly string[] s_files = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"];

    [Fact]
    public void LeNet5ReachesEightyFivePercentTestAccuracyInTwoEpochs()
    {
        string[] paths = [.. s_files.Select(name => Path.Combine(Folder, name))];
        string[] missing = [.. paths.Where(path => !File.Exists(path))];
        Assert.True(
            missing.Length == 0,
            $"Fashion-MNIST is not installed ({string.Join(", ", missing)} missing): run `apt-get install -y dataset-fashion-mnist`.");
        ImageDataset data = IdxReader.Read("fashion-mnist", paths[0], paths[1], paths[2], paths[3]);
        var hp = new Hyperparameters { Epochs = 2, BatchSize = 64, Optimizer = OptimizerKind.Sgd, LearningRate = 0.05, Momentum = 0.9, Schedule = ScheduleKind.Cosine };

        var stopwatch = Stopwatch.StartNew();
        RecordingSink sink = Harness.Train(ModelPresets.LeNet5(), data, hp, statsEvery: 10);
        stopwatch.Stop();

        foreach (EpochEvent epoch in sink.Epochs)
        {
            output.WriteLine($"epoch {epoch.Epoch}: train loss {epoch.TrainLoss:F4}, accuracy {epoch.TrainAccuracy:P2}; test loss {epoch.ValidationLoss:F4}, accuracy {epoch.ValidationAccuracy:P2}");
        }

        output.WriteLine($"{sink.Steps.Count} steps in {stopwatch.Elapsed.TotalSeconds:F1} s ({2 * 60_000 / stopwatch.Elapsed.TotalSeconds:F0} images/s with evaluation)");
        Assert.Equal(2 * 938, sink.Steps.Count);
        Assert.Equal(2 * 938 / 10, sink.Events.OfType<LayersEvent>().Count());
        Assert.True(sink.Epochs[^1].ValidationAccuracy >= 0.85, $"test accuracy {sink.Epochs[^1].ValidationAccuracy:P2} is below 85%");
        // A healthy run on real data: the babysitting rules stay quiet (no false alarm above info).
        Assert.Empty(sink.Alerts.Where(a => a.Severity != "info").Select(a => $"step {a.Step} {a.Code} {a.Layer}: {a.Message}"));
    }
}
