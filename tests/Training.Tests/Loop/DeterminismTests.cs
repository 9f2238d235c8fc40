using TrainingService.Contracts.Specs;
using TrainingService.Contracts.Training;
using TrainingService.Training.Data;
using TrainingService.Training.Loop;
using TrainingService.Training.Specs;
using Xunit;
using static TorchSharp.torch;

namespace TrainingService.Training.Tests.Loop;

/// <summary>A seed means one run, whatever else the process trains: each job has its own generator and thread count.</summary>
[Collection(SequentialTraining.Name)]
public sealed class DeterminismTests
{
    private static readonly ImageDataset s_data = Harness.Shapes(samples: 192);
    private static readonly Hyperparameters s_hp = new() { Epochs = 1, BatchSize = 32, LearningRate = 0.05, Seed = 11, ValidationFraction = 0 };

    [Fact]
    public void TorchsIntraOpThreadCountBelongsToTheThreadThatSetIt()
    {
        using var barrier = new Barrier(2);
        int seenByFirst = 0, seenBySecond = 0;
        var first = new Thread(() =>
        {
            _ = get_num_threads();
            set_num_threads(1);
            barrier.SignalAndWait(); // the second thread sets its own count now
            barrier.SignalAndWait();
            using (Tensor x = ones(256, 256))
            using (Tensor product = x.matmul(x))
            {
                seenByFirst = get_num_threads();
            }
        });
        var second = new Thread(() =>
        {
            barrier.SignalAndWait();
            _ = get_num_threads();
            set_num_threads(2);
            barrier.SignalAndWait();
            seenBySecond = get_num_threads();
        });
        first.Start();
        second.Start();
        first.Join();
        second.Join();

        Assert.Equal((1, 2), (seenByFirst, seenBySecond));
    }

    [Fact]
    public void TheSameJobGivesBitIdenticalLossesAloneAndBesideTwoOtherJobs()
    {
        ModelSpec lenet = ModelPresets.LeNet5(classes: 4);
        double[] alone = TrainAtOnce(lenet, [(s_hp, 2)])[0];
        double[][] together = TrainAtOnce(lenet, [(s_hp, 2), (s_hp with { Seed = 12 }, 1), (s_hp with { Seed = 13, LearningRate = 0.01 }, 1)]);

        Assert.Equal(alone, together[0]);
    }

    [Fact]
    public void TheSameJobWithDropoutGivesBitIdenticalLossesAloneAndBesideTwoOtherJobs()
    {
        ModelSpec dropout = Harness.DropoutNet();
        double[] alone = TrainAtOnce(dropout, [(s_hp, 2)])[0];
        double[][] together = TrainAtOnce(dropout, [(s_hp, 2), (s_hp with { Seed = 12 }, 1), (s_hp with { Seed = 11 }, 1)]);

        Assert.Equal(alone, together[0]);
    }

    /// <summary>Each job built and trained on a thread of its own, as the worker runs them, all at once; the losses of each.</summary>
    private static double[][] TrainAtOnce(ModelSpec spec, (Hyperparameters Hp, int Threads)[] jobs)
    {
        RecordingSink[] sinks = [.. jobs.Select(_ => new RecordingSink())];
        var outcomes = new TrainingOutcome[jobs.Length];
        using var start = new Barrier(jobs.Length);
        Thread[] threads = [.. jobs.Select((_, i) => new Thread(() =>
        {
            using Trainer trainer = new(Harness.Plan(spec, s_data, jobs[i].Hp, threads: jobs[i].Threads), s_data, sinks[i]);
            using var control = new TrainingControl();
            start.SignalAndWait();
            outcomes[i] = trainer.Run(control, CancellationToken.None);
        }))];
        foreach (Thread thread in threads)
        {
            thread.Start();
        }

        foreach (Thread thread in threads)
        {
            thread.Join();
        }

        Assert.All(outcomes, o => Assert.Equal(TrainingOutcome.Succeeded, o));
        return [.. sinks.Select(s => s.Steps.Select(e => e.Loss).ToArray())];
    }
}
