using TorchSharp;
using TorchSharp.Modules;
using TrainingService.Contracts.Specs;
using TrainingService.Training.Models;
using TrainingService.Training.Specs;
using TrainingService.Training.Tests.Loop;
using Xunit;
using static TorchSharp.torch;
using static TrainingService.Training.Tests.Specs.Net;

namespace TrainingService.Training.Tests.Models;

/// <summary>A model draws every random number from its own generator, never from torch's process-wide one.</summary>
[Collection(SequentialTraining.Name)]
public sealed class SpecModelGeneratorTests
{
    private static readonly SpecAnalysis s_vgg = SpecAnalyzer.Analyze(ModelPresets.SmallVgg(classes: 4));

    [Fact]
    public void TheSameSeedGivesBitIdenticalParametersWhateverTheGlobalGeneratorDoes()
    {
        manual_seed(1);
        using var first = new SpecModel(s_vgg, seed: 7);
        manual_seed(99);
        using (rand(1000))
        {
        }

        using var second = new SpecModel(s_vgg, seed: 7);
        using var other = new SpecModel(s_vgg, seed: 8);
        Dictionary<string, byte[]> a = Bytes(first), b = Bytes(second), c = Bytes(other);
        Assert.Equal(a.Keys, b.Keys);
        Assert.All(a, p => Assert.Equal(p.Value, b[p.Key]));
        Assert.NotEqual(a["conv1.weight"], c["conv1.weight"]);
    }

    [Fact]
    public void BuildingAndTrainingAModelLeavesTheGlobalGeneratorAlone()
    {
        manual_seed(3);
        using Tensor before = get_rng_state();
        using (var model = new SpecModel(s_vgg, seed: 7))
        using (NewDisposeScope())
        {
            model.train();
            model.call(randn([2, 1, 28, 28], generator: model.Generator));
        }

        using Tensor after = get_rng_state();
        Assert.Equal(before.bytes.ToArray(), after.bytes.ToArray());
    }

    [Fact]
    public void DropoutMasksComeFromTheGeneratorStateAndFollowPyTorchsScaling()
    {
        SpecAnalysis analysis = SpecAnalyzer.Analyze(Of(1, 8, 8, Flatten(), new LayerSpec { Kind = "dropout", P = 0.25 }, Linear(2)));
        using var first = new SpecModel(analysis, seed: 11);
        using var second = new SpecModel(analysis, seed: 11);
        var masks = new List<float[]>();
        Action<int, Tensor> keepDropout = (index, output) =>
        {
            if (index == 1)
            {
                masks.Add(output.data<float>().ToArray());
            }
        };
        first.LayerOutputObserver = second.LayerOutputObserver = keepDropout;
        using Tensor x = ones(64, 1, 8, 8);
        using (NewDisposeScope())
        {
            first.call(x);
            manual_seed(5);
            rand(100);
            second.call(x);
            first.call(x);
        }

        Assert.Equal(masks[0], masks[1]);
        Assert.NotEqual(masks[0], masks[2]);
        Assert.All(masks[0], v => Assert.True(v == 0 || v == 1 / 0.75f, $"{v}"));
        double kept = masks[0].Count(v => v != 0) / (double)masks[0].Length;
        Assert.InRange(kept, 0.65, 0.85);

        first.eval();
        masks.Clear();
        using (NewDisposeScope())
        {
            first.call(x);
        }

        Assert.All(masks[0], v => Assert.Equal(1f, v));
    }

    [Fact]
    public void InitialisationDrawsWhatTorchSharpsOwnModulesDrawFromTheSameSeed()
    {
        SpecAnalysis analysis = SpecAnalyzer.Analyze(Of(3, 6, 6, Conv(4, 3), Flatten(), Linear(5)));
        using var model = new SpecModel(analysis, seed: 21);
        Dictionary<string, byte[]> ours = Bytes(model);

        manual_seed(21);
        using Conv2d conv = nn.Conv2d(3, 4, 3);
        using Linear linear = nn.Linear(64, 5);
        Assert.Equal(conv.weight!.bytes.ToArray(), ours["conv1.weight"]);
        Assert.Equal(conv.bias!.bytes.ToArray(), ours["conv1.bias"]);
        Assert.Equal(linear.weight!.bytes.ToArray(), ours["linear1.weight"]);
        Assert.Equal(linear.bias!.bytes.ToArray(), ours["linear1.bias"]);
    }

    [Fact]
    public void BiasInitStillSetsEveryBias()
    {
        SpecAnalysis analysis = SpecAnalyzer.Analyze(Of(1, 6, 6,
            new LayerSpec { Kind = "conv2d", Filters = 3, Kernel = 3, BiasInit = 0.1 }, Flatten(), new LayerSpec { Kind = "linear", Units = 2, BiasInit = -1 }));
        using var model = new SpecModel(analysis, seed: 1);
        Dictionary<string, Tensor> state = model.state_dict();
        Assert.All(state["conv1.bias"].data<float>().ToArray(), v => Assert.Equal(0.1f, v));
        Assert.All(state["linear1.bias"].data<float>().ToArray(), v => Assert.Equal(-1f, v));
    }

    private static Dictionary<string, byte[]> Bytes(SpecModel model) =>
        model.state_dict().ToDictionary(p => p.Key, p => p.Value.bytes.ToArray(), StringComparer.Ordinal);
}
