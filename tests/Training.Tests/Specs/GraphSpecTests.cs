using System.Text.Json;
using TrainingService.Contracts.Specs;
using TrainingService.Training.Specs;
using TrainingService.Training.Specs.Kinds;
using Xunit;
using static TrainingService.Training.Tests.Specs.Net;
using Padding = TrainingService.Contracts.Specs.Padding;

namespace TrainingService.Training.Tests.Specs;

/// <summary>Specs as graphs: inputs, add and concat; every error names the merge or the reference and both shapes.</summary>
public sealed class GraphSpecTests
{
    private static LayerSpec Add(params string[] inputs) => new() { Kind = "add", Inputs = inputs };

    private static LayerSpec Concat(params string[] inputs) => new() { Kind = "concat", Inputs = inputs };

    private static LayerSpec From(LayerSpec layer, params string[] inputs) => layer with { Inputs = inputs };

    [Fact]
    public void ResidualBlockWithProjectionHasTheShapesParametersAndReceptiveFieldOfItsPaths()
    {
        ModelValidationResult result = Analyze(Of(3, 16, 16,
            Conv(8, 3, padding: 1, name: "a"), Relu("ra"), Conv(8, 3, padding: 1, name: "b"),
            From(Conv(8, 1, name: "shortcut"), "input"),
            Add("b", "shortcut"), Relu(), Layer("globalavgpool"), Linear(10)));

        Assert.True(result.Valid, Describe(result.Errors));
        LayerReport add = result.Layers.Single(l => l.Kind == "add");
        Assert.Equal("add1", add.Name);
        Assert.Equal([8, 16, 16], add.OutputShape);
        Assert.Equal(0, add.Parameters);
        // The largest over both paths: two 3×3 convolutions (5×5) beat the 1×1 shortcut.
        Assert.Equal([5, 5], add.ReceptiveField!);
        Assert.Equal([1, 1], result.Layers.Single(l => l.Name == "shortcut").ReceptiveField!);
        Assert.Equal(["b", "shortcut"], add.Inputs);
        Assert.Equal(["input"], result.Layers[0].Inputs);
        Assert.Equal(["a"], result.Layers[1].Inputs);
        Assert.Equal(["input"], result.Layers.Single(l => l.Name == "shortcut").Inputs);
        Assert.Equal(((3 * 9) + 1) * 8 + ((8 * 9) + 1) * 8 + (3 + 1) * 8 + (8 + 1) * 10, result.TotalParameters);
        Assert.Equal((16L * 16 * 8 * 27) + (16L * 16 * 8 * 72) + (16L * 16 * 8 * 3) + (8 * 10), result.TotalMultiplyAdds);
    }

    [Fact]
    public void ConcatStacksChannelsAndTakesTheWidestReceptiveField()
    {
        ModelValidationResult result = Analyze(Of(1, 12, 12,
            Conv(4, 1, name: "one"),
            From(Conv(6, 5, padding: Padding.SameAsInput, name: "five"), "input"),
            From(MaxPool(3, stride: 1, padding: 1, name: "pool"), "input"),
            Concat("one", "five", "pool"), Flatten(), Linear(3)));

        Assert.True(result.Valid, Describe(result.Errors));
        LayerReport concat = result.Layers.Single(l => l.Kind == "concat");
        Assert.Equal([11, 12, 12], concat.OutputShape);
        Assert.Equal([5, 5], concat.ReceptiveField!);
    }

    [Fact]
    public void AddOfDifferentShapesNamesBothInputsAndTheProjectionThatWouldFixIt()
    {
        ModelValidationResult result = Analyze(Of(3, 16, 16,
            Conv(8, 3, padding: 1, name: "a"), Conv(16, 3, stride: 2, padding: 1, name: "b"), Add("b", "a"), Flatten(), Linear(2)));

        SpecIssue error = Assert.Single(result.Errors);
        Assert.Equal("layers[2].inputs", error.Field);
        Assert.Equal("add1", error.LayerName);
        Assert.Equal("add1: add sums element by element, so its inputs' shapes must match, but b gives 16×8×8 and a gives 8×16×16; a 1×1 conv2d with 16 filters and stride 2 after a (a projection shortcut) would make them match", error.Message);
    }

    [Fact]
    public void ConcatOfDifferentSizesNamesBothInputsAndShapes()
    {
        ModelValidationResult result = Analyze(Of(3, 16, 16,
            Conv(8, 3, padding: 1, name: "a"), MaxPool(2, name: "p"), Concat("a", "p"), Flatten(), Linear(2)));

        SpecIssue error = Assert.Single(result.Errors);
        Assert.Equal("layers[2].inputs", error.Field);
        Assert.Equal("concat1: concat stacks channels, so its inputs' heights and widths must match, but a gives 8×16×16 and p gives 8×8×8", error.Message);
    }

    [Fact]
    public void ConcatOfAnImageAndFlatFeaturesIsAnError()
    {
        ModelValidationResult result = Analyze(Of(1, 8, 8, Conv(2, 3, name: "c"), Flatten(name: "f"), Concat("c", "f"), Flatten(), Linear(2)));

        Assert.Contains(result.Errors, e => e.Field == "layers[2].inputs"
            && e.Message == "concat1: concat joins inputs that are all images or all flat, but c gives 2×6×6 and f gives 72 features");
    }

    [Fact]
    public void AReferenceToALaterLayerIsACycleAndSaysSo()
    {
        ModelValidationResult result = Analyze(Of(1, 8, 8,
            From(Conv(2, 3, name: "a"), "b"), Conv(2, 3, name: "b"), Flatten(), Linear(2)));

        SpecIssue error = Assert.Single(result.Errors);
        Assert.Equal("layers[0].inputs[0]", error.Field);
        Assert.Equal("a: inputs names b (layer 1), which comes after it: a layer takes only earlier layers' outputs, so the graph has no cycles; move b before it", error.Message);
    }

    [Fact]
    public void ASelfReferenceIsACycle()
    {
        ModelValidationResult result = Analyze(Of(1, 8, 8, Conv(2, 3), From(Relu("r"), "r"), Flatten(), Linear(2)));

        SpecIssue error = Assert.Single(result.Errors);
        Assert.Equal("layers[1].inputs[0]", error.Field);
        Assert.Equal("r: inputs names the layer itself: a layer cannot take its own output (that would be a cycle)", error.Message);
    }

    [Fact]
    public void AnUnknownNameIsAnErrorOnItsPositionInTheList()
    {
        ModelValidationResult result = Analyze(Of(1, 8, 8, Conv(2, 3, name: "a"), Relu("r"), Add("a", "rr"), Flatten(), Linear(2)));

        SpecIssue error = Assert.Single(result.Errors);
        Assert.Equal("layers[2].inputs[1]", error.Field);
        Assert.Equal("add1: inputs names \"rr\", which is no layer of this model (\"input\" is the model's input)", error.Message);
    }

    [Fact]
    public void MergesNeedTwoInputsAndOtherKindsTakeOne()
    {
        ModelValidationResult result = Analyze(Of(1, 8, 8,
            Conv(2, 3, name: "a"), Layer("add"), Add("a"), From(Relu(), "a", "input"), new LayerSpec { Kind = "tanh", Inputs = [] }, Flatten(), Linear(2)));

        Assert.Equal(
            [
                ("layers[1].inputs", "add1: add needs inputs: the names of the two or more earlier layers to sum"),
                ("layers[2].inputs", "add2: add needs two or more inputs to sum, got 1"),
                ("layers[3].inputs", "relu1: relu takes one input, got 2; only add and concat merge several"),
                ("layers[4].inputs", "tanh1: inputs is empty; leave it out to take the previous layer's output"),
            ],
            result.Errors.Select(e => (e.Field, e.Message)));
    }

    [Fact]
    public void AMergeOfMoreInputsThanTheCapIsOneError()
    {
        ModelValidationResult result = Analyze(Of(1, 8, 8, Conv(2, 3, name: "a"), Add([.. Enumerable.Repeat("a", 65)]), Flatten(), Linear(2)));

        SpecIssue error = Assert.Single(result.Errors);
        Assert.Equal(("layers[1].inputs", "add1: inputs names 65 layers, over the cap of 64"), (error.Field, error.Message));
    }

    [Fact]
    public void AnAddOfManyInputsSumsThemAll()
    {
        SpecAnalysis analysis = SpecAnalyzer.Analyze(Of(1, 4, 4, Conv(2, 1, name: "a", bias: false), Add("a", "a", "a", "a"), Flatten(), Linear(2)));
        using var model = new TrainingService.Training.Models.SpecModel(analysis, seed: 1);
        TorchSharp.torch.Tensor? conv = null, sum = null;
        model.LayerOutputObserver = (i, t) =>
        {
            if (i == 0) { conv = t.detach().clone(); }
            if (i == 1) { sum = t.detach().clone(); }
        };

        using (TorchSharp.torch.NewDisposeScope())
        {
            model.call(TorchSharp.torch.randn(2, 1, 4, 4));
            Assert.True((sum! - (conv! * 4)).abs().max().item<float>() < 1e-5f);
        }
    }

    [Fact]
    public void TheNameInputIsKeptForTheModelsInput()
    {
        ModelValidationResult result = Analyze(Of(1, 8, 8, Conv(2, 3, name: "input"), Flatten(), Linear(2)));

        SpecIssue error = Assert.Single(result.Errors);
        Assert.Equal("layers[0].name", error.Field);
        Assert.Contains("is kept for the model's input", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ALayerWhoseOutputNoLayerTakesIsAWarning()
    {
        ModelValidationResult result = Analyze(Of(1, 8, 8, Conv(2, 3, name: "lost"), From(Conv(2, 3, name: "used"), "input"), Flatten(), Linear(2)));

        Assert.True(result.Valid, Describe(result.Errors));
        SpecIssue warning = Assert.Single(result.Warnings);
        Assert.Equal("layers[0]", warning.Field);
        Assert.StartsWith("lost: no layer takes its output", warning.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnErrorUpstreamOfAMergeIsReportedOnceNotAgainAtTheMerge()
    {
        ModelValidationResult result = Analyze(Of(1, 8, 8, Conv(2, 30, name: "big"), From(Conv(2, 3, name: "ok"), "input"), Add("big", "ok"), Flatten(), Linear(2)));

        SpecIssue error = Assert.Single(result.Errors);
        Assert.Equal("big", error.LayerName);
    }

    [Fact]
    public void TheReaderTakesInputsAsAnArrayOrOneNameAndRejectsOtherTypes()
    {
        string json = """
            { "input": { "channels": 1, "height": 8, "width": 8 }, "layers": [
              { "kind": "conv2d", "name": "a", "filters": 1, "kernel": 3, "padding": 1 },
              { "kind": "relu", "inputs": "a" },
              { "kind": "add", "inputs": ["a", "relu1", "input"] },
              { "kind": "tanh", "inputs": [1, 2] },
              { "kind": "flatten" }, { "kind": "linear", "units": 2 } ] }
            """;

        SpecAnalysis analysis = SpecReader.ReadAndAnalyze(JsonDocument.Parse(json).RootElement);

        SpecIssue error = Assert.Single(analysis.Result.Errors);
        Assert.Equal("layers[3].inputs", error.Field);
        Assert.Equal("tanh1: inputs must be an array of earlier layers' names (or \"input\"), got an array of 2", error.Message);
        (ModelSpec? spec, _) = SpecReader.Read(JsonDocument.Parse(json).RootElement);
        Assert.Equal(["a"], spec!.Layers![1].Inputs);
        Assert.Equal(["a", "relu1", "input"], spec.Layers[2].Inputs);
    }

    [Fact]
    public void PlansGiveEveryLayerItsInputIndices()
    {
        SpecAnalysis analysis = SpecAnalyzer.Analyze(ModelPresets.ResNet8(3, 32, 32, 10));

        Assert.True(analysis.IsValid, Describe(analysis.Result.Errors));
        LayerPlan Of(string name) => analysis.Plan.Single(p => p.Name == name);
        Assert.Equal([LayerPlan.ModelInput], Of("stem").Inputs);
        Assert.Equal([Of("block2_bn2").Index, Of("block2_shortcut_bn").Index], Of("block2_add").Inputs);
        Assert.Equal([Of("block1_relu2").Index], Of("block2_shortcut").Inputs);
        Assert.Equal([Of("block1_bn2").Index, Of("stem_relu").Index], Of("block1_add").Inputs);
        Assert.Equal([64], Of("pool").OutputShape);
        Assert.Equal(8, analysis.Plan.Count(p => p.Kind is Conv2dKind or LinearKind && !p.Name.Contains("shortcut", StringComparison.Ordinal)));
    }

    [Fact]
    public void AnEdgeOneBranchSkipsIsNoWarningWhenAnotherBranchReadsIt()
    {
        // ResNet's shortcut: a 1×1 window at stride 2 skips the last row and column of 16×16, the 3×3 beside it reads them.
        ModelValidationResult resnet = Analyze(Of(8, 16, 16,
            Conv(8, 3, stride: 2, padding: 1, name: "main"), From(Conv(8, 1, stride: 2, name: "shortcut"), "input"),
            Add("main", "shortcut"), Flatten(), Linear(2)));
        // Both branches skip them: the network never sees them, and each says so.
        ModelValidationResult both = Analyze(Of(8, 16, 16,
            Conv(8, 1, stride: 2, name: "a"), From(MaxPool(1, stride: 2, name: "b"), "input"),
            Add("a", "b"), Flatten(), Linear(2)));

        Assert.True(resnet.Valid, Describe(resnet.Errors));
        Assert.Empty(resnet.Warnings);
        Assert.Equal(["a", "b"], both.Warnings.Select(w => w.LayerName));
        Assert.All(both.Warnings, w => Assert.Contains("the last 1 row and column of the input is never seen", w.Message, StringComparison.Ordinal));
        Assert.Empty(SpecAnalyzer.Analyze(ModelPresets.ResNet8(3, 32, 32, 10)).Result.Warnings);
        Assert.Empty(SpecAnalyzer.Analyze(ModelPresets.ResNet8(1, 28, 28, 10)).Result.Warnings);
    }

    [Fact]
    public void EveryPresetIsValidForTheInputsThePresetsEndpointAccepts()
    {
        foreach ((int channels, int side) in new[] { (1, 16), (1, 28), (3, 32), (3, 64) })
        {
            foreach (ModelPreset preset in ModelPresets.All(channels, side, side, 10))
            {
                ModelValidationResult result = SpecAnalyzer.Analyze(preset.Spec).Result;
                Assert.True(result.Valid, $"{preset.Name} at {channels}×{side}×{side}: {Describe(result.Errors)}");
                Assert.Equal([10], result.OutputShape!);
                Assert.True(result.Warnings.Count == 0, $"{preset.Name} at {channels}×{side}×{side}: {Describe(result.Warnings)}");
            }
        }
    }
}
