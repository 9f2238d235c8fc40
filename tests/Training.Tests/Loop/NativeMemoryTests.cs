using System.Diagnostics;
using TrainingService.Contracts.Training;
using TrainingService.Training.Data;
using TrainingService.Training.Loop;
using TrainingService.Training.Specs;
using Xunit;
using Xunit.Abstractions;

namespace TrainingService.Training.Tests.Loop;

[Collection(SequentialTraining.Name)]
public sealed class NativeMemoryTests(ITestOutputHelper output)
{
    // No evaluation: with a test split the working set now and then rose once by ~20 MB after epoch 2 and stayed flat
    // after it (a one-off step, not a leak), enough to break a 5% bound on ~300 MB.
    [Fact]
    public void WorkingSetStaysFlatFromEpochTwoToEpochFive()
    {
        ImageDataset data = Harness.Shapes(samples: 3000);
        var workingSet = new Dictionary<int, long>();
        var sink = new RecordingSink(e =>
        {
            if (e is EpochEvent epoch)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                GC.Collect();
                using var process = Process.GetCurrentProcess();
                process.Refresh();
                workingSet[epoch.Epoch] = process.WorkingSet64;
            }
        });
        using (Trainer trainer = Harness.Trainer(ModelPresets.LeNet5(classes: 4), data, new Hyperparameters { Epochs = 5, ValidationFraction = 0 }, sink, statsEvery: 10))
        using (var control = new TrainingControl())
        {
            Assert.Equal(TrainingOutcome.Succeeded, trainer.Run(control, CancellationToken.None));
        }

        output.WriteLine(string.Join(", ", workingSet.Select(p => $"epoch {p.Key}: {p.Value / (1 << 20)} MiB")));
        Assert.True(
            workingSet[5] <= workingSet[2] * 1.05,
            $"working set grew from {workingSet[2] / (1 << 20)} MiB after epoch 2 to {workingSet[5] / (1 << 20)} MiB after epoch 5");
    }

    // The trainer's tensors of images are the dataset's own arrays: torch.tensor(byte[]) would clone them into managed
    // memory (45 MB for Fashion-MNIST), resident until a full collection long after the job.
    [Fact]
    public void TrainerTrainsOnTheDatasetsPixelsWithoutCopyingThem()
    {
        ImageDataset data = Harness.Shapes(samples: 3000, testSamples: 1000);
        byte[] train = [.. data.Train.Images], test = [.. data.Test!.Images];
        var hp = new Hyperparameters { Epochs = 1, Augmentation = new AugmentationOptions { HorizontalFlip = true, Translate = 2 } };
        long before = GC.GetAllocatedBytesForCurrentThread();
        using (Trainer trainer = Harness.Trainer(ModelPresets.LeNet5(classes: 4), data, hp, new RecordingSink()))
        using (var control = new TrainingControl())
        {
            Assert.True(
                GC.GetAllocatedBytesForCurrentThread() - before < data.Test.Images.Length,
                $"the trainer allocated {GC.GetAllocatedBytesForCurrentThread() - before:N0} managed bytes for {data.Train.Images.Length + data.Test.Images.Length:N0} bytes of pixels");
            Assert.Equal(TrainingOutcome.Succeeded, trainer.Run(control, CancellationToken.None));
        }

        Assert.Equal(train, data.Train.Images);
        Assert.Equal(test, data.Test.Images);
    }
}
