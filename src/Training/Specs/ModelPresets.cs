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
        new("alexnet", "A small AlexNet-style net for 32×32: 5×5 then 3×3 convolutions, overlapping 3×3 max pooling at stride 2, two dropout-regularised fully connected layers. No normalisation, so it wants a smaller step than the others (e.g. Adam 5e-4).", SmallAlexNet(channels, height, width, classes)),
        new("resnet8", "ResNet-8 (He et al., 2015): a 3×3 stem and three residual blocks of two 3×3 convolutions with batch norm (16, 32, 64 filters), 1×1 projection shortcuts where the shape changes, global average pooling.", ResNet8(channels, height, width, classes)),
        new("inception", "A mini inception net (Szegedy et al., 2014): two inception blocks of parallel 1×1, 3×3 and 5×5 convolutions and pooling, with 1×1 bottlenecks, their channels concatenated.", MiniInception(channels, height, width, classes)),
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

    /// <summary>
    /// AlexNet's shape at 32×32 (Krizhevsky et al., 2012, without its response normalisation): 5×5 convolutions (32, 64
    /// filters) each followed by 3×3 max pooling at stride 2, three 3×3 convolutions (96, 96, 64), pooling, then two
    /// fully connected layers of 256 units with dropout.
    /// </summary>
    public static ModelSpec SmallAlexNet(int channels = 3, int height = 32, int width = 32, int classes = 10) => new()
    {
        Name = "alexnet",
        Input = new InputSpec(channels, height, width),
        Layers =
        [
            new LayerSpec { Kind = "conv2d", Filters = 32, Kernel = 5, Padding = 2 },
            new LayerSpec { Kind = "relu" },
            new LayerSpec { Kind = "maxpool2d", Kernel = 3, Stride = 2, Padding = 1 },
            new LayerSpec { Kind = "conv2d", Filters = 64, Kernel = 5, Padding = 2 },
            new LayerSpec { Kind = "relu" },
            new LayerSpec { Kind = "maxpool2d", Kernel = 3, Stride = 2, Padding = 1 },
            new LayerSpec { Kind = "conv2d", Filters = 96, Kernel = 3, Padding = Padding.SameAsInput },
            new LayerSpec { Kind = "relu" },
            new LayerSpec { Kind = "conv2d", Filters = 96, Kernel = 3, Padding = Padding.SameAsInput },
            new LayerSpec { Kind = "relu" },
            new LayerSpec { Kind = "conv2d", Filters = 64, Kernel = 3, Padding = Padding.SameAsInput },
            new LayerSpec { Kind = "relu" },
            new LayerSpec { Kind = "maxpool2d", Kernel = 3, Stride = 2, Padding = 1 },
            new LayerSpec { Kind = "flatten" },
            new LayerSpec { Kind = "dropout", P = 0.5 },
            new LayerSpec { Kind = "linear", Units = 256 },
            new LayerSpec { Kind = "relu" },
            new LayerSpec { Kind = "dropout", P = 0.5 },
            new LayerSpec { Kind = "linear", Units = 256 },
            new LayerSpec { Kind = "relu" },
            new LayerSpec { Kind = "linear", Units = classes },
        ],
    };

    /// <summary>
    /// ResNet-8, CIFAR-style: a 3×3 stem of 16 filters, then three basic blocks (16, 32, 64 filters; the last two halve
    /// the size with stride 2), each two 3×3 conv–batch-norm pairs whose output is added to the block's input — through
    /// a 1×1 convolution at stride 2 with batch norm where the shape changes — then ReLU; global average pooling and the
    /// classifier. Eight weighted layers on the main path: the stem, six convolutions, the classifier.
    /// </summary>
    public static ModelSpec ResNet8(int channels = 3, int height = 32, int width = 32, int classes = 10)
    {
        List<LayerSpec> layers =
        [
            new LayerSpec { Kind = "conv2d", Name = "stem", Filters = 16, Kernel = 3, Padding = Padding.SameAsInput, Bias = false },
            new LayerSpec { Kind = "batchnorm2d", Name = "stem_bn" },
            new LayerSpec { Kind = "relu", Name = "stem_relu" },
        ];
        string input = "stem_relu";
        int inputFilters = 16;
        foreach ((int block, int filters) in new[] { (1, 16), (2, 32), (3, 64) })
        {
            string b = $"block{block}";
            bool project = filters != inputFilters;
            layers.AddRange(
            [
                project
                    ? new LayerSpec { Kind = "conv2d", Name = $"{b}_conv1", Filters = filters, Kernel = 3, Stride = 2, Padding = 1, Bias = false }
                    : new LayerSpec { Kind = "conv2d", Name = $"{b}_conv1", Filters = filters, Kernel = 3, Padding = Padding.SameAsInput, Bias = false },
                new LayerSpec { Kind = "batchnorm2d", Name = $"{b}_bn1" },
                new LayerSpec { Kind = "relu", Name = $"{b}_relu1" },
                new LayerSpec { Kind = "conv2d", Name = $"{b}_conv2", Filters = filters, Kernel = 3, Padding = Padding.SameAsInput, Bias = false },
                new LayerSpec { Kind = "batchnorm2d", Name = $"{b}_bn2" },
            ]);
            string shortcut = input;
            if (project)
            {
                layers.Add(new LayerSpec { Kind = "conv2d", Name = $"{b}_shortcut", Inputs = [input], Filters = filters, Kernel = 1, Stride = 2, Bias = false });
                layers.Add(new LayerSpec { Kind = "batchnorm2d", Name = $"{b}_shortcut_bn" });
                shortcut = $"{b}_shortcut_bn";
            }

            layers.Add(new LayerSpec { Kind = "add", Name = $"{b}_add", Inputs = [$"{b}_bn2", shortcut] });
            layers.Add(new LayerSpec { Kind = "relu", Name = $"{b}_relu2" });
            input = $"{b}_relu2";
            inputFilters = filters;
        }

        layers.Add(new LayerSpec { Kind = "globalavgpool", Name = "pool" });
        layers.Add(new LayerSpec { Kind = "linear", Name = "fc", Units = classes });
        return new ModelSpec { Name = "resnet8", Input = new InputSpec(channels, height, width), Layers = layers };
    }

    /// <summary>
    /// A mini GoogLeNet: a 3×3 stem (32 filters, batch norm) and 2×2 pooling, then two inception blocks separated by
    /// pooling. Each block runs four branches on the same input — a 1×1 convolution; a 1×1 bottleneck then 3×3; a 1×1
    /// bottleneck then 5×5; 3×3 max pooling then a 1×1 projection — and concatenates their channels (56, then 112).
    /// Global average pooling and dropout before the classifier.
    /// </summary>
    public static ModelSpec MiniInception(int channels = 3, int height = 32, int width = 32, int classes = 10)
    {
        List<LayerSpec> layers =
        [
            new LayerSpec { Kind = "conv2d", Name = "stem", Filters = 32, Kernel = 3, Padding = Padding.SameAsInput, Bias = false },
            new LayerSpec { Kind = "batchnorm2d", Name = "stem_bn" },
            new LayerSpec { Kind = "relu", Name = "stem_relu" },
            new LayerSpec { Kind = "maxpool2d", Name = "pool1", Kernel = 2 },
        ];
        Inception(layers, "inception1", "pool1", ones: 16, reduce3: 16, threes: 24, reduce5: 8, fives: 8, poolProjection: 8);
        layers.Add(new LayerSpec { Kind = "maxpool2d", Name = "pool2", Kernel = 2 });
        Inception(layers, "inception2", "pool2", ones: 32, reduce3: 24, threes: 48, reduce5: 8, fives: 16, poolProjection: 16);
        layers.Add(new LayerSpec { Kind = "globalavgpool", Name = "pool3" });
        layers.Add(new LayerSpec { Kind = "dropout", Name = "dropout", P = 0.2 });
        layers.Add(new LayerSpec { Kind = "linear", Name = "fc", Units = classes });
        return new ModelSpec { Name = "inception", Input = new InputSpec(channels, height, width), Layers = layers };
    }

    /// <summary>One inception block on <paramref name="input"/>: four branches, each ending in ReLU, concatenated as "{name}".</summary>
    private static void Inception(List<LayerSpec> layers, string name, string input, int ones, int reduce3, int threes, int reduce5, int fives, int poolProjection)
    {
        LayerSpec Conv(string layer, int filters, int kernel, string? from = null) => new()
        {
            Kind = "conv2d", Name = $"{name}_{layer}", Inputs = from is null ? null : [from], Filters = filters, Kernel = kernel,
            Padding = kernel == 1 ? null : Padding.SameAsInput,
        };
        LayerSpec Relu(string layer) => new() { Kind = "relu", Name = $"{name}_{layer}_relu" };
        layers.AddRange(
        [
            Conv("1x1", ones, 1, input), Relu("1x1"),
            Conv("3x3_reduce", reduce3, 1, input), Relu("3x3_reduce"), Conv("3x3", threes, 3), Relu("3x3"),
            Conv("5x5_reduce", reduce5, 1, input), Relu("5x5_reduce"), Conv("5x5", fives, 5), Relu("5x5"),
            new LayerSpec { Kind = "maxpool2d", Name = $"{name}_pool", Inputs = [input], Kernel = 3, Stride = 1, Padding = 1 },
            Conv("pool_proj", poolProjection, 1), Relu("pool_proj"),
            new LayerSpec { Kind = "concat", Name = name, Inputs = [$"{name}_1x1_relu", $"{name}_3x3_relu", $"{name}_5x5_relu", $"{name}_pool_proj_relu"] },
        ]);
    }
}

/// <summary>A named, described model spec.</summary>
public sealed record ModelPreset(string Name, string Description, ModelSpec Spec);
