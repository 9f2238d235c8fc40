using TrainingService.Contracts.Specs;

namespace TrainingService.Training.Specs;

/// <summary>Well-known networks as specs: the default for a job with no model, and baselines for tests and benchmarks.</summary>
public static class ModelPresets
{
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
