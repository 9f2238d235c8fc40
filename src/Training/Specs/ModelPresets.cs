using TrainingService.Contracts.Specs;

namespace TrainingService.Training.Specs;

/// <summary>Well-known networks as specs: the default for a job with no model, and baselines for tests and benchmarks.</summary>
public static class ModelPresets
{
    /// <summary>Every preset sized to an input and a class count, in the order a newcomer should try them.</summary>
    public static IReadOnlyList<ModelPreset> All(int channels = 1, int height = 28, int width = 28, int classes = 10) =>
    [
        new("tiny", "Tiny CNN: two 3×3 convolutions with pooling, a few thousand parameters; trains in seconds.", TinyCnn(channels, height, width, classes)),
        new("lenet5", "LeNet-5 (LeCun et al., 1998) with ReLU and max pooling.", LeNet5(channels, height, width, classes)),
        new("vgg", "A small VGG-style net: pairs of 3×3 convolutions with batch norm, max pooling, dropout before the classifier.", SmallVgg(channels, height, width, classes)),
    ];

    /// <summary>Two 3×3 "same" convolutions (8, 16 filters), each followed by ReLU and 2×2 max pooling, then the classifier.</summary>
    public static ModelSpec TinyCnn(int channels = 1, int height = 28, int width = 28, int classes = 10) => new()
    {
        Name = "tiny",
        Input = new InputSpec(channels, height, width),
        Layers =
        [
            new LayerSpec { Kind = "conv2d", Filters = 8, Kernel = 3, Padding = Padding.SameAsInput },
            new LayerSpec { Kind = "relu" },
            new LayerSpec { Kind = "maxpool2d", Kernel = 2 },
            new LayerSpec { Kind = "conv2d", Filters = 16, Kernel = 3, Padding = Padding.SameAsInput },
            new LayerSpec { Kind = "relu" },
            new LayerSpec { Kind = "maxpool2d", Kernel = 2 },
            new LayerSpec { Kind = "flatten" },
            new LayerSpec { Kind = "linear", Units = classes },
        ],
    };

    /// <summary>VGG's pattern at small scale: [conv3×3-BN-ReLU]×2 → pool, twice (32, 64 filters), then 256 units and dropout.</summary>
    public static ModelSpec SmallVgg(int channels = 1, int height = 28, int width = 28, int classes = 10) => new()
    {
        Name = "vgg",
        Input = new InputSpec(channels, height, width),
        Layers =
        [
            new LayerSpec { Kind = "conv2d", Filters = 32, Kernel = 3, Padding = Padding.SameAsInput, Bias = false },
            new LayerSpec { Kind = "batchnorm2d" },
            new LayerSpec { Kind = "relu" },
            new LayerSpec { Kind = "conv2d", Filters = 32, Kernel = 3, Padding = Padding.SameAsInput, Bias = false },
            new LayerSpec { Kind = "batchnorm2d" },
            new LayerSpec { Kind = "relu" },
            new LayerSpec { Kind = "maxpool2d", Kernel = 2 },
            new LayerSpec { Kind = "conv2d", Filters = 64, Kernel = 3, Padding = Padding.SameAsInput, Bias = false },
            new LayerSpec { Kind = "batchnorm2d" },
            new LayerSpec { Kind = "relu" },
            new LayerSpec { Kind = "conv2d", Filters = 64, Kernel = 3, Padding = Padding.SameAsInput, Bias = false },
            new LayerSpec { Kind = "batchnorm2d" },
            new LayerSpec { Kind = "relu" },
            new LayerSpec { Kind = "maxpool2d", Kernel = 2 },
            new LayerSpec { Kind = "flatten" },
            new LayerSpec { Kind = "dropout", P = 0.5 },
            new LayerSpec { Kind = "linear", Units = 256 },
            new LayerSpec { Kind = "relu" },
            new LayerSpec { Kind = "dropout", P = 0.5 },
            new LayerSpec { Kind = "linear", Units = classes },
        ],
    };

    /// <summary>LeNet-5 with ReLU and max pooling, "same"-padded first convolution so it fits 28×28 (and any size ≥ 12).</summary>
    public static ModelSpec LeNet5(int channels = 1, int height = 28, int width = 28, int classes = 10) => new()
    {
        Name = "lenet5",
        Input = new InputSpec(channels, height, width),
        Layers =
        [
            new LayerSpec { Kind = "conv2d", Filters = 6, Kernel = 5, Padding = 2 },
            new LayerSpec { Kind = "relu" },
            new LayerSpec { Kind = "maxpool2d", Kernel = 2 },
            new LayerSpec { Kind = "conv2d", Filters = 16, Kernel = 5 },
            new LayerSpec { Kind = "relu" },
            new LayerSpec { Kind = "maxpool2d", Kernel = 2 },
            new LayerSpec { Kind = "flatten" },
            new LayerSpec { Kind = "linear", Units = 120 },
            new LayerSpec { Kind = "relu" },
            new LayerSpec { Kind = "linear", Units = 84 },
            new LayerSpec { Kind = "relu" },
            new LayerSpec { Kind = "linear", Units = classes },
        ],
    };
}

/// <summary>A named, described model spec.</summary>
public sealed record ModelPreset(string Name, string Description, ModelSpec Spec);
