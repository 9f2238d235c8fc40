using Microsoft.ML.OnnxRuntime;
using TorchSharp;
using TrainingService.Contracts.Specs;
using TrainingService.Training.Export;
using TrainingService.Training.Export.Onnx;
using TrainingService.Training.Models;
using TrainingService.Training.Specs;
using TrainingService.Training.Specs.Kinds;
using TrainingService.Training.Tests.Specs;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;
using static TrainingService.Training.Tests.Specs.Net;

namespace TrainingService.Training.Tests.Export;

/// <summary>The ONNX export, run in OnnxRuntime, scores images as TorchSharp's model does in eval mode.</summary>
public sealed class OnnxExportTests(ITestOutputHelper output)
{
    private const int Images = 100;
    private const double Tolerance = 1e-4;

    /// <summary>Every preset at 1×28×28 and 3×32×32, the agreement set (every kind, odd paddings, dilation, merges), and layer names that are also the graph's input and output names.</summary>
    private static readonly Dictionary<string, ModelSpec> s_specs = new(StringComparer.Ordinal)
    {
        ["layers named pixels, scores and probabilities"] = Of(1, 8, 8,
            Conv(2, 3, name: "pixels"), Relu("scores"), Flatten("probabilities"), Linear(3)),
    };

    static OnnxExportTests()
    {
        foreach ((int c, int h, int w) in new[] { (1, 28, 28), (3, 32, 32) })
        {
            foreach (ModelPreset preset in ModelPresets.All(c, h, w, 10))
            {
                s_specs[$"preset {preset.Name} {c}x{h}x{w}"] = preset.Spec;
            }
        }

        foreach ((string name, ModelSpec spec) in TorchAgreementTests.s_specs)
        {
            s_specs[name] = spec;
        }
    }

    public static TheoryData<string> Specs => [.. s_specs.Keys];

    [Theory]
    [MemberData(nameof(Specs))]
    public void OnnxRuntimeGivesTorchSharpsScoresAndTopClassForEveryImage(string name)
    {
        ModelSpec spec = s_specs[name];
        SpecAnalysis analysis = SpecAnalyzer.Analyze(spec);
        InputSpec input = spec.Input!;
        int seed = name.Aggregate(17, (h, c) => unchecked((h * 31) + c));
        var random = new Random(seed);
        float[] mean = [.. Enumerable.Range(0, input.Channels).Select(_ => 0.2f + (0.4f * random.NextSingle()))];
        float[] std = [.. Enumerable.Range(0, input.Channels).Select(_ => 0.15f + (0.25f * random.NextSingle()))];
        float[] pixels = [.. Enumerable.Range(0, Images * input.Channels * input.Height * input.Width).Select(_ => (float)random.Next(256))];
        long[] shape = [Images, input.Channels, input.Height, input.Width];

        using var model = new SpecModel(analysis, unchecked((ulong)seed));
        RandomiseBatchNorm(model);
        model.eval();
        List<StateTensor> state = SavedState(model);

        float[] expectedScores, expectedProbabilities;
        using (no_grad())
        using (NewDisposeScope())
        {
            // As training normalises: pixel/255, then (x − mean)/std per channel.
            Tensor x = tensor(pixels, shape)
                .mul(tensor(std.Select(s => 1f / (255f * s)).ToArray()).reshape(1, input.Channels, 1, 1))
                .add(tensor(mean.Zip(std, (m, s) => -m / s).ToArray()).reshape(1, input.Channels, 1, 1));
            Tensor scores = model.call(x);
            expectedScores = scores.data<float>().ToArray();
            expectedProbabilities = nn.functional.softmax(scores, 1).data<float>().ToArray();
        }

        using var onnx = new MemoryStream();
        OnnxExporter.Write(onnx, analysis, state, mean, std, [.. Enumerable.Range(0, analysis.Classes).Select(c => $"class {c}")]);
        using var session = new InferenceSession(onnx.ToArray());
        (float[] scoresOut, float[] probabilitiesOut) = Run(session, pixels, shape);

        int classes = analysis.Classes;
        double scoreDifference = MaxDifference(expectedScores, scoresOut), probabilityDifference = MaxDifference(expectedProbabilities, probabilitiesOut);
        output.WriteLine($"{name}: max |scores difference| {scoreDifference:E2}, max |probabilities difference| {probabilityDifference:E2}, {Images} images");
        Assert.True(scoreDifference <= Tolerance, $"{name}: max |scores difference| {scoreDifference}");
        Assert.True(probabilityDifference <= Tolerance, $"{name}: max |probabilities difference| {probabilityDifference}");
        int[] expectedTop = TopClasses(expectedScores, classes), actualTop = TopClasses(scoresOut, classes);
        Assert.Equal(expectedTop, actualTop);
        Assert.Equal(expectedTop, TopClasses(probabilitiesOut, classes));

        // The batch dimension is free: single images give their rows of the batch of 100.
        int size = input.Channels * input.Height * input.Width;
        foreach (int i in new[] { 0, Images - 1 })
        {
            (float[] one, _) = Run(session, pixels[(i * size)..((i + 1) * size)], [1, input.Channels, input.Height, input.Width]);
            Assert.True(MaxDifference(expectedScores[(i * classes)..((i + 1) * classes)], one) <= Tolerance, $"{name}: image {i} alone");
        }
    }

    [Fact]
    public void TheGraphHasADynamicBatchTheOpsetAndTheMetadata()
    {
        SpecAnalysis analysis = SpecAnalyzer.Analyze(TorchAgreementTests.s_specs["batchnorm, dropout, leakyrelu, conv and linear without bias"]);
        using var model = new SpecModel(analysis, seed: 1);
        string[] classes = [.. Enumerable.Range(0, 10).Select(c => $"c{c}")];
        using var file = new MemoryStream();
        OnnxExporter.Write(file, analysis, SavedState(model), [0.5f, 0.4f, 0.3f], [0.2f, 0.25f, 0.3f], classes,
            new Dictionary<string, string> { ["step"] = "42", ["source"] = "checkpoint" });

        ModelProto onnx = ModelProto.Parser.ParseFrom(file.ToArray());
        Assert.Equal(8, onnx.IrVersion);
        Assert.Equal(17, Assert.Single(onnx.OpsetImport).Version);
        Assert.Equal("TrainingService", onnx.ProducerName);
        Assert.Equal(["pixels"], onnx.Graph.Input.Select(i => i.Name));
        Assert.Equal(["scores", "probabilities"], onnx.Graph.Output.Select(o => o.Name));
        Assert.Equal(["batch", "", "", ""], onnx.Graph.Input[0].Type.TensorType.Shape.Dim.Select(d => d.DimParam));
        Assert.Equal([0L, 3, 24, 24], onnx.Graph.Input[0].Type.TensorType.Shape.Dim.Select(d => d.DimValue));
        Assert.All(onnx.Graph.ValueInfo, v => Assert.Equal("batch", v.Type.TensorType.Shape.Dim[0].DimParam));
        Assert.Equal(
            ["Mul", "Add", "Conv", "BatchNormalization", "Relu", "MaxPool", "Identity", "Conv", "BatchNormalization", "LeakyRelu",
             "GlobalAveragePool", "Flatten", "Identity", "Gemm", "Softmax"],
            onnx.Graph.Node.Select(n => n.OpType));
        // Initializers by PyTorch's names; batch norm's num_batches_tracked is training state and stays out.
        Assert.Contains("batchnorm2.running_var", onnx.Graph.Initializer.Select(i => i.Name));
        Assert.DoesNotContain(onnx.Graph.Initializer, i => i.Name.EndsWith("num_batches_tracked", StringComparison.Ordinal));
        var metadata = onnx.MetadataProps.ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
        Assert.Equal("""["c0","c1","c2","c3","c4","c5","c6","c7","c8","c9"]""", metadata["classes"]);
        Assert.Equal(("42", "checkpoint"), (metadata["step"], metadata["source"]));

        using var session = new InferenceSession(file.ToArray());
        Assert.Equal(["batch", "", "", ""], session.InputMetadata["pixels"].SymbolicDimensions);
        Assert.Equal([-1, 3, 24, 24], session.InputMetadata["pixels"].Dimensions);
        Assert.Equal([-1, 10], session.OutputMetadata["scores"].Dimensions);
        Assert.Equal("TrainingService", session.ModelMetadata.ProducerName);
        Assert.Equal(metadata["classes"], session.ModelMetadata.CustomMetadataMap["classes"]);
    }

    [Fact]
    public void WeightsOfAnotherSpecAreRefusedNamingTheTensor()
    {
        using var model = new SpecModel(SpecAnalyzer.Analyze(ModelPresets.TinyCnn(1, 28, 28, 10)), seed: 1);
        List<StateTensor> state = SavedState(model);

        InvalidDataException error = Assert.Throws<InvalidDataException>(() =>
            OnnxExporter.Write(Stream.Null, SpecAnalyzer.Analyze(ModelPresets.TinyCnn(3, 28, 28, 10)), state, [0.5f], [0.25f], [.. Enumerable.Range(0, 10).Select(c => $"{c}")]));

        Assert.Equal("conv1.weight is [8, 1, 3, 3] in the weights, but the spec makes it [8, 3, 3, 3]", error.Message);
    }

    [Fact]
    public void TheConvNodeCarriesTheGroups()
    {
        SpecAnalysis analysis = SpecAnalyzer.Analyze(TorchAgreementTests.s_specs["depthwise separable block, 3x16x16"]);
        using var model = new SpecModel(analysis, seed: 1);

        ModelProto onnx = OnnxExporter.Build(analysis, SavedState(model), [0.5f], [0.25f], ["a", "b", "c", "d", "e"]);

        long[] groups = [.. onnx.Graph.Node.Where(n => n.OpType == "Conv").Select(n => n.Attribute.Single(a => a.Name == "group").I)];
        Assert.Equal([1, 16, 1, 32], groups);
        Assert.Equal([16, 1, 3, 3], onnx.Graph.Initializer.Single(t => t.Name == "conv2.weight").Dims);
    }

    /// <summary>The model's state dict as the service stores it: written by TorchSharp, read without torch.</summary>
    private static List<StateTensor> SavedState(SpecModel model)
    {
        using var saved = new MemoryStream();
        model.save(new BinaryWriter(saved));
        saved.Position = 0;
        return StateDict.Read(new BinaryReader(saved));
    }

    private static (float[] Scores, float[] Probabilities) Run(InferenceSession session, float[] pixels, long[] shape)
    {
        using var input = OrtValue.CreateTensorValueFromMemory(pixels, shape);
        using var runOptions = new RunOptions();
        using IDisposableReadOnlyCollection<OrtValue> outputs = session.Run(runOptions, ["pixels"], [input], ["scores", "probabilities"]);
        Assert.Equal([shape[0], session.OutputMetadata["scores"].Dimensions[1]], outputs[0].GetTensorTypeAndShape().Shape);
        return (outputs[0].GetTensorDataAsSpan<float>().ToArray(), outputs[1].GetTensorDataAsSpan<float>().ToArray());
    }

    /// <summary>Batch-norm statistics and affine parameters away from their initial 0/1, so eval mode's use of them is checked.</summary>
    private static void RandomiseBatchNorm(SpecModel model)
    {
        using var noGrad = no_grad();
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

        foreach ((string key, TorchSharp.Modules.Parameter parameter) in model.named_parameters())
        {
            string layer = key.Split('.')[0];
            if (model.Plan.First(p => p.Name == layer).Kind is BatchNorm2dKind)
            {
                parameter.uniform_(key.EndsWith("weight", StringComparison.Ordinal) ? 0.5 : -0.2, key.EndsWith("weight", StringComparison.Ordinal) ? 1.5 : 0.2);
            }
        }
    }

    private static double MaxDifference(float[] a, float[] b)
    {
        Assert.Equal(a.Length, b.Length);
        return a.Zip(b, (x, y) => Math.Abs((double)x - y)).Max();
    }

    private static int[] TopClasses(float[] scores, int classes) =>
        [.. scores.Chunk(classes).Select(row => Array.IndexOf(row, row.Max()))];
}
