using TorchSharp;
using TrainingService.Contracts.Specs;
using TrainingService.Training.Export;
using TrainingService.Training.Models;
using TrainingService.Training.Specs;
using TrainingService.Training.Tests.Specs;
using Xunit;
using static TorchSharp.torch;

namespace TrainingService.Training.Tests.Models;

/// <summary>The functional forward pass from a state dict gives what the model itself gives in eval mode.</summary>
public sealed class InferenceTests
{
    public static TheoryData<string> Specs => [.. TorchAgreementTests.s_specs.Keys];

    [Theory]
    [MemberData(nameof(Specs))]
    public void TheFunctionalForwardMatchesTheModelInEvalMode(string name)
    {
        ModelSpec spec = TorchAgreementTests.s_specs[name];
        SpecAnalysis analysis = SpecAnalyzer.Analyze(spec);
        using var model = new SpecModel(analysis, seed: 1);
        using (no_grad())
        {
            // Non-trivial batch-norm statistics, so eval mode's use of them is checked too.
            foreach ((string key, Tensor buffer) in model.named_buffers())
            {
                if (key.EndsWith("running_mean", StringComparison.Ordinal))
                {
                    buffer.uniform_(-0.5, 0.5);
                }
                else if (key.EndsWith("running_var", StringComparison.Ordinal))
                {
                    buffer.uniform_(0.5, 2);
                }
            }
        }

        model.eval();
        using var saved = new MemoryStream();
        model.save(new BinaryWriter(saved));
        saved.Position = 0;
        using var inference = new Inference(analysis, StateDict.Read(new BinaryReader(saved)));
        InputSpec input = spec.Input!;
        using Tensor x = randn(3, input.Channels, input.Height, input.Width);
        using Tensor expected = model.call(x);
        using Tensor actual = inference.Forward(x);
        Assert.Equal(expected.shape, actual.shape);
        double difference = (expected - actual).abs().max().item<float>();
        Assert.True(difference <= 1e-5, $"{name}: max |difference| {difference}");
    }

    [Fact]
    public void AFewImagesRunOnTheCallingThreadAloneAndABatchOnEveryCore()
    {
        ModelSpec spec = TorchAgreementTests.s_specs.Values.First();
        SpecAnalysis analysis = SpecAnalyzer.Analyze(spec);
        using var model = new SpecModel(analysis, seed: 1);
        using var saved = new MemoryStream();
        model.save(new BinaryWriter(saved));
        saved.Position = 0;
        using var inference = new Inference(analysis, StateDict.Read(new BinaryReader(saved)));
        InputSpec input = spec.Input!;
        int afterOne = 0, afterBatch = 0;
        var thread = new Thread(() =>
        {
            _ = get_num_threads();
            set_num_threads(Environment.ProcessorCount + 1); // neither count the forward pass chooses
            using (Tensor one = randn(1, input.Channels, input.Height, input.Width))
            using (inference.Forward(one))
            {
                afterOne = get_num_threads();
            }

            using (Tensor batch = randn(64, input.Channels, input.Height, input.Width))
            using (inference.Forward(batch))
            {
                afterBatch = get_num_threads();
            }
        });
        thread.Start();
        thread.Join();

        Assert.Equal((1, Environment.ProcessorCount), (afterOne, afterBatch));
    }
}
