using System.Diagnostics;
using TorchSharp;
using TrainingService.Contracts.Specs;
using TrainingService.Contracts.Training;
using TrainingService.Training.Data;
using TrainingService.Training.Loop;
using TrainingService.Training.Native;
using TrainingService.Training.Specs;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace TrainingService.Training.Tests.Loop;

/// <summary>Augmentation changes the training batches only, the same way for the same seed, and the network still learns.</summary>
[Collection(SequentialTraining.Name)]
public sealed class AugmentedTrainingTests(ITestOutputHelper output)
{
    private static readonly ImageDataset s_data = Harness.Shapes(samples: 400, testSamples: 64);

    private static readonly AugmentationOptions s_augmentation = new() { RandomCrop = new RandomCropOptions { Padding = 3 }, HorizontalFlip = true, Translate = 2 };

    private static readonly Hyperparameters s_hp = new() { Epochs = 2, BatchSize = 32, LearningRate = 0.05, ValidationFraction = 0.1, Seed = 3 };

    [Fact]
    public void TheSameSeedGivesTheSameAugmentedRunAndAugmentationChangesIt()
    {
        double[] Losses(Hyperparameters hp) => [.. Harness.Train(ModelPresets.LeNet5(classes: 4), s_data, hp).Steps.Select(s => s.Loss)];

        double[] augmented = Losses(s_hp with { Augmentation = s_augmentation });

        Assert.Equal(augmented, Losses(s_hp with { Augmentation = s_augmentation }));
        double[] plain = Losses(s_hp);
        Assert.NotEqual(plain[0], augmented[0]); // the first batch already differs
        Assert.Equal(plain, Losses(s_hp with { Augmentation = new AugmentationOptions() })); // every part off: the plain run, bit for bit
    }

    [Fact]
    public void ATrainingBatchIsEachImageAugmentedByItsDrawThenNormalised()
    {
        using Trainer trainer = Harness.Trainer(ModelPresets.LeNet5(classes: 4), s_data, s_hp with { Augmentation = s_augmentation }, new RecordingSink());
        int[] batch = [5, 0, 399, 42];
        var pixels = new byte[batch.Length * s_data.SampleSize];
        Augmentation.ApplyToBatch(s_data, batch, s_augmentation, seed: 3, epoch: 2, pixels);

        using (NewDisposeScope())
        {
            (Tensor x, Tensor y) = trainer.TrainingBatch(batch, epoch: 2);

            Assert.Equal([4L, 1, 28, 28], x.shape);
            float[] expected = [.. pixels.Select(p => ((p / 255f) - s_data.Mean[0]) / s_data.Std[0])];
            float[] actual = TensorMemory.Floats(x).ToArray();
            Assert.Equal(expected.Length, actual.Length);
            Assert.All(expected.Zip(actual), p => Assert.Equal(p.First, p.Second, 5));
            Assert.Equal(batch.Select(i => (long)s_data.Train.Labels[i]), y.data<long>().ToArray());
        }

        Assert.NotEqual(batch.SelectMany(i => s_data.Train.Images.Skip(i * s_data.SampleSize).Take(s_data.SampleSize)), pixels);
    }

    [Theory]
    [InlineData(0.1)] // a held-out part of the train split
    [InlineData(null)] // the test split
    public void ValidationAndTestImagesAreNotAugmented(double? validationFraction)
    {
        // Same seed, same initial weights: an evaluation that augmented would score differently.
        Hyperparameters hp = s_hp with { ValidationFraction = validationFraction };
        using Trainer plain = Harness.Trainer(ModelPresets.LeNet5(classes: 4), s_data, hp, new RecordingSink());
        using Trainer augmented = Harness.Trainer(ModelPresets.LeNet5(classes: 4), s_data, hp with { Augmentation = s_augmentation }, new RecordingSink());

        (double? loss, double? accuracy) = plain.Evaluate();

        Assert.NotNull(loss);
        Assert.Equal((loss, accuracy), augmented.Evaluate());
    }

    [Fact]
    public void TheSnapshotProbesAreNotAugmented()
    {
        using var folder = new TempFolder();
        byte[] Probes(Hyperparameters hp)
        {
            string path = folder.File($"{Guid.NewGuid():N}.visuals");
            using var control = new TrainingControl();
            control.RequestSnapshot(); // taken before the first step, on the initial weights
            var sink = new RecordingSink(e =>
            {
                if (e is StepEvent)
                {
                    control.Cancel();
                }
            });
            using var trainer = new Trainer(Harness.Plan(ModelPresets.LeNet5(classes: 4), s_data, hp), s_data, sink, new TrainerOptions { VisualsPath = path });
            Assert.Equal(TrainingOutcome.Cancelled, trainer.Run(control, CancellationToken.None));
            Assert.Single(sink.Events.OfType<SnapshotEvent>());
            return File.ReadAllBytes(path);
        }

        Assert.Equal(Probes(s_hp), Probes(s_hp with { Augmentation = s_augmentation }));
    }

    [Fact]
    public void OverfitSubsetTrainsWithoutAugmentation()
    {
        RecordingSink Overfit(Hyperparameters hp)
        {
            var sink = new RecordingSink();
            using var trainer = new Trainer(
                Harness.Plan(ModelPresets.LeNet5(classes: 4), s_data, hp, sanity: new SanityOptions { Check = SanityCheck.OverfitSubset, MaxSteps = 60 }), s_data, sink);
            using var control = new TrainingControl();
            Assert.Equal(TrainingOutcome.Succeeded, trainer.Run(control, CancellationToken.None));
            return sink;
        }

        Hyperparameters hp = s_hp with { Optimizer = OptimizerKind.Adam, LearningRate = 1e-3, Momentum = 0 };

        Assert.Equal(Overfit(hp).Steps.Select(s => s.Loss), Overfit(hp with { Augmentation = s_augmentation }).Steps.Select(s => s.Loss));
    }

    [Fact]
    public void ACnnTrainedWithEveryAugmentationStillLearnsTheShapes()
    {
        // The default shapes dataset (4 classes, 2,000 training and 500 test images of 28×28), as ShapesLearningTests without augmentation.
        ImageDataset data = ShapesDataset.Generate(new ShapesOptions());
        var spec = new ModelSpec
        {
            Input = new InputSpec(1, 28, 28),
            Layers =
            [
                new() { Kind = "conv2d", Filters = 8, Kernel = 3, Padding = 1 }, new() { Kind = "relu" }, new() { Kind = "maxpool2d", Kernel = 2 },
                new() { Kind = "conv2d", Filters = 16, Kernel = 3, Padding = 1 }, new() { Kind = "relu" }, new() { Kind = "maxpool2d", Kernel = 2 },
                new() { Kind = "flatten" }, new() { Kind = "linear", Units = 4 },
            ],
        };
        var hp = new Hyperparameters { Epochs = 8, Optimizer = OptimizerKind.Adam, LearningRate = 3e-3, Augmentation = s_augmentation };

        RecordingSink sink = Harness.Train(spec, data, hp);

        double best = sink.Epochs.Max(e => e.ValidationAccuracy ?? 0);
        output.WriteLine($"with augmentation, test accuracy per epoch: {string.Join(", ", sink.Epochs.Select(e => $"{e.ValidationAccuracy:P1}"))}; train accuracy {string.Join(", ", sink.Epochs.Select(e => $"{e.TrainAccuracy:P1}"))}");
        Assert.True(best > 0.8, $"best test accuracy {best:P1} (chance: 25%)");
    }

    [Fact]
    public void AugmentationCostIsReportedForLeNetOnFashionMnistSizedData()
    {
        // A measurement for the record, not an assertion: 10 classes of 1×28×28, LeNet-5, batches of 64. The CPU may be
        // shared, so each figure is the best of several interleaved repeats.
        ImageDataset data = Harness.Shapes(samples: 2_560, classes: 10);
        var hp = new Hyperparameters { Epochs = 1, BatchSize = 64, LearningRate = 0.05, ValidationFraction = 0 };
        Hyperparameters augmentedHp = hp with { Augmentation = new AugmentationOptions { RandomCrop = new RandomCropOptions { Padding = 4 }, HorizontalFlip = true, Translate = 2 } };
        int[] batch = [.. Enumerable.Range(0, 64).Select(i => i * 37 % data.Train.Count)];
        using Trainer plain = Harness.Trainer(ModelPresets.LeNet5(classes: 10), data, hp, new RecordingSink());
        using Trainer augmented = Harness.Trainer(ModelPresets.LeNet5(classes: 10), data, augmentedHp, new RecordingSink());
        var pixels = new byte[batch.Length * data.SampleSize];
        double pixelsOnly = double.MaxValue, plainBatch = double.MaxValue, augmentedBatch = double.MaxValue, plainStep = double.MaxValue, augmentedStep = double.MaxValue;
        Harness.Train(ModelPresets.LeNet5(classes: 10), data, augmentedHp); // warm-up
        for (int round = 0; round < 3; round++)
        {
            var watch = Stopwatch.StartNew();
            for (int epoch = 1; epoch <= 200; epoch++)
            {
                Augmentation.ApplyToBatch(data, batch, augmentedHp.Augmentation!, 1, epoch, pixels);
            }

            pixelsOnly = Math.Min(pixelsOnly, watch.Elapsed.TotalMicroseconds / 200);
            plainBatch = Math.Min(plainBatch, MicrosecondsPerBatch(plain));
            augmentedBatch = Math.Min(augmentedBatch, MicrosecondsPerBatch(augmented));
            plainStep = Math.Min(plainStep, MillisecondsPerStep(hp));
            augmentedStep = Math.Min(augmentedStep, MillisecondsPerStep(augmentedHp));
        }

        output.WriteLine($"augmenting the uint8 pixels of 64 images (crop 4, flip, translate 2), best of 3 × 200: {pixelsOnly:F0} µs");
        output.WriteLine($"building a training batch of 64, best of 3 × 200: {plainBatch:F0} µs plain (index_select, to float, normalise), {augmentedBatch:F0} µs augmented");
        output.WriteLine($"LeNet-5 training step, batch 64, best of 3 epochs of 40 steps: {plainStep:F2} ms plain, {augmentedStep:F2} ms augmented");

        double MicrosecondsPerBatch(Trainer trainer)
        {
            var watch = Stopwatch.StartNew();
            for (int i = 0; i < 200; i++)
            {
                using (NewDisposeScope())
                {
                    trainer.TrainingBatch(batch, epoch: i);
                }
            }

            return watch.Elapsed.TotalMicroseconds / 200;
        }

        double MillisecondsPerStep(Hyperparameters h)
        {
            var watch = Stopwatch.StartNew();
            RecordingSink sink = Harness.Train(ModelPresets.LeNet5(classes: 10), data, h);
            return watch.Elapsed.TotalMilliseconds / sink.Steps.Count;
        }
    }
}
