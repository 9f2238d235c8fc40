using System.Text.Json;
using System.Text.Json.Serialization;
using TrainingService.Contracts.Specs;
using TrainingService.Training.Specs;
using Xunit;
using static TrainingService.Training.Tests.Specs.Net;

namespace TrainingService.Training.Tests.Specs;

/// <summary>JSON specs: every wrong type reported at once with its path, and no error told twice.</summary>
public sealed class SpecReaderTests
{
    private const string LeNetJson = """
        { "name": "lenet5", "input": { "channels": 1, "height": 28, "width": 28 },
          "layers": [
            { "kind": "conv2d", "name": "conv1", "filters": 6, "kernel": 5, "stride": 1, "padding": 2 },
            { "kind": "relu" }, { "kind": "maxpool2d", "kernel": 2, "stride": 2 },
            { "kind": "conv2d", "filters": 16, "kernel": 5 }, { "kind": "relu" }, { "kind": "maxpool2d", "kernel": 2 },
            { "kind": "flatten" }, { "kind": "linear", "units": 120 }, { "kind": "relu" },
            { "kind": "linear", "units": 84 }, { "kind": "relu" }, { "kind": "linear", "units": 10 } ] }
        """;

    private static readonly JsonSerializerOptions s_webWithoutNulls = new(JsonSerializerOptions.Web) { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    private static SpecAnalysis ReadAndAnalyze(string json, SpecLimits? limits = null)
    {
        using var document = JsonDocument.Parse(json);
        return SpecReader.ReadAndAnalyze(document.RootElement, limits);
    }

    private static (ModelSpec? Spec, IReadOnlyList<SpecIssue> Errors) Read(string json)
    {
        using var document = JsonDocument.Parse(json);
        return SpecReader.Read(document.RootElement);
    }

    /// <summary>A small valid network with <paramref name="layer"/> as layers[3], between a pool and the flatten.</summary>
    private static string WithFourthLayer(string layer) => $$"""
        { "input": { "channels": 1, "height": 28, "width": 28 },
          "layers": [ { "kind": "conv2d", "filters": 4, "kernel": 3 }, { "kind": "relu" }, { "kind": "maxpool2d", "kernel": 2 },
                      {{layer}},
                      { "kind": "flatten" }, { "kind": "linear", "units": 10 } ] }
        """;

    [Fact]
    public void LeNetJsonGivesTheExpectedTable()
    {
        ModelValidationResult result = ReadAndAnalyze(LeNetJson).Result;

        Assert.True(result.Valid, Describe(result.Errors));
        Assert.Equal([10], result.OutputShape!);
        Assert.Empty(result.Warnings);
        Assert.Equal(61_706, result.TotalParameters);
        (string, string, int[], long, int?)[] expected =
        [
            ("conv1", "conv2d", [6, 28, 28], 156, 5),
            ("relu1", "relu", [6, 28, 28], 0, 5),
            ("maxpool1", "maxpool2d", [6, 14, 14], 0, 6),
            ("conv2", "conv2d", [16, 10, 10], 2_416, 14),
            ("relu2", "relu", [16, 10, 10], 0, 14),
            ("maxpool2", "maxpool2d", [16, 5, 5], 0, 16),
            ("flatten1", "flatten", [400], 0, null),
            ("linear1", "linear", [120], 48_120, null),
            ("relu3", "relu", [120], 0, null),
            ("linear2", "linear", [84], 10_164, null),
            ("relu4", "relu", [84], 0, null),
            ("linear3", "linear", [10], 850, null),
        ];
        Assert.Equal(expected, result.Layers.Select(l => (l.Name, l.Kind, l.OutputShape, l.Parameters, l.ReceptiveField?[0])));
        Assert.Equal(Enumerable.Range(0, 12), result.Layers.Select(l => l.Index));
    }

    [Fact]
    public void LeNetJsonAgreesWithThePreset()
    {
        ModelValidationResult fromJson = ReadAndAnalyze(LeNetJson).Result;
        ModelValidationResult fromPreset = SpecAnalyzer.Analyze(ModelPresets.LeNet5()).Result;

        Assert.Equal(fromPreset.Layers.Select(l => (l.Name, string.Join("×", l.OutputShape), l.Parameters, l.MultiplyAdds, l.ActivationBytes)),
            fromJson.Layers.Select(l => (l.Name, string.Join("×", l.OutputShape), l.Parameters, l.MultiplyAdds, l.ActivationBytes)));
        Assert.Equal((fromPreset.TotalMultiplyAdds, fromPreset.TotalActivationBytes), (fromJson.TotalMultiplyAdds, fromJson.TotalActivationBytes));
    }

    [Fact]
    public void ReaderFillsEveryFieldItIsGiven()
    {
        (ModelSpec? spec, IReadOnlyList<SpecIssue> errors) = Read("""
            { "name": "all", "input": { "channels": 3, "height": 20, "width": 30 },
              "layers": [ { "kind": "conv2d", "name": "c", "filters": 4, "kernel": [3, 5], "stride": 2, "padding": "same", "dilation": [1, 2], "bias": false },
                          { "kind": "maxpool2d", "kernel": 2, "padding": [1, 0] }, { "kind": "leakyrelu", "slope": 0.2 },
                          { "kind": "batchnorm2d", "eps": 0.001, "momentum": 0.5 }, { "kind": "dropout", "p": 0.25 },
                          { "kind": "linear", "units": 7, "bias": null } ] }
            """);

        Assert.Empty(errors);
        Assert.Equal(("all", new InputSpec(3, 20, 30)), (spec!.Name, spec.Input));
        Assert.Equal(
            new LayerSpec { Kind = "conv2d", Name = "c", Filters = 4, Kernel = new IntPair(3, 5), Stride = 2, Padding = Padding.SameAsInput, Dilation = new IntPair(1, 2), Bias = false },
            spec.Layers![0]);
        Assert.Equal(new LayerSpec { Kind = "maxpool2d", Kernel = 2, Padding = new IntPair(1, 0) }, spec.Layers[1]);
        Assert.Equal(0.2, spec.Layers[2].Slope);
        Assert.Equal((0.001, 0.5), (spec.Layers[3].Eps, spec.Layers[3].Momentum));
        Assert.Equal(0.25, spec.Layers[4].P);
        Assert.Equal(new LayerSpec { Kind = "linear", Units = 7 }, spec.Layers[5]);
    }

    public static TheoryData<string, string, string> BadTypes => new()
    {
        { """{ "kind": "conv2d", "name": "conv2", "filters": "six", "kernel": 3 }""", "layers[3].filters", "conv2: filters must be an integer, got the string \"six\"" },
        { """{ "kind": "conv2d", "name": "conv2", "filters": 6.5, "kernel": 3 }""", "layers[3].filters", "conv2: filters must be an integer, got the number 6.5" },
        { """{ "kind": "conv2d", "name": "conv2", "filters": 6, "kernel": [5] }""", "layers[3].kernel", "conv2: kernel must be an integer or [height, width], got an array of 1" },
        { """{ "kind": "conv2d", "name": "conv2", "filters": 6, "kernel": [5, "a"] }""", "layers[3].kernel", "conv2: kernel must be an integer or [height, width], got an array of 2" },
        { """{ "kind": "conv2d", "name": "conv2", "filters": 6, "kernel": [1, 2, 3] }""", "layers[3].kernel", "conv2: kernel must be an integer or [height, width], got an array of 3" },
        { """{ "kind": "conv2d", "name": "conv2", "filters": 6, "kernel": 3, "stride": "2" }""", "layers[3].stride", "conv2: stride must be an integer or [height, width], got the string \"2\"" },
        { """{ "kind": "conv2d", "name": "conv2", "filters": 6, "kernel": 3, "padding": "valid" }""", "layers[3].padding", "conv2: padding must be an integer, [height, width] or \"same\", got the string \"valid\"" },
        { """{ "kind": "conv2d", "name": "conv2", "filters": 6, "kernel": 3, "dilation": {} }""", "layers[3].dilation", "conv2: dilation must be an integer or [height, width], got an object" },
        { """{ "kind": "conv2d", "name": "conv2", "filters": 6, "kernel": 3, "bias": "yes" }""", "layers[3].bias", "conv2: bias must be true or false, got the string \"yes\"" },
        { """{ "kind": "dropout", "name": "drop", "p": "half" }""", "layers[3].p", "drop: p must be a number, got the string \"half\"" },
        { """{ "kind": "leakyrelu", "name": "leaky", "slope": true }""", "layers[3].slope", "leaky: slope must be a number, got true" },
        { """{ "kind": "batchnorm2d", "name": "norm", "eps": [] }""", "layers[3].eps", "norm: eps must be a number, got an array of 0" },
        { """{ "kind": 5, "name": "conv2" }""", "layers[3].kind", "conv2: kind must be a string, got the number 5" },
    };

    [Theory]
    [MemberData(nameof(BadTypes))]
    public void WrongTypeIsReportedOnceWithItsPath(string layer, string field, string message)
    {
        ModelValidationResult result = ReadAndAnalyze(WithFourthLayer(layer)).Result;

        Assert.False(result.Valid);
        SpecIssue issue = Assert.Single(result.Errors);
        string name = message[..message.IndexOf(':', StringComparison.Ordinal)];
        Assert.Equal((3, name, field, message), (issue.LayerIndex, issue.LayerName, issue.Field, issue.Message));
    }

    [Fact]
    public void LongStringsAreShortenedInMessages()
    {
        string value = new('x', 100);

        SpecIssue issue = Assert.Single(ReadAndAnalyze(WithFourthLayer($$"""{ "kind": "dropout", "p": "{{value}}" }""")).Result.Errors);

        Assert.EndsWith($"got the string \"{value[..40]}…\"", issue.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TypeErrorOnAnUnnamedLayerCarriesNoMadeUpLayerName()
    {
        (_, IReadOnlyList<SpecIssue> errors) = Read(WithFourthLayer("""{ "kind": "conv2d", "filters": "six", "kernel": 3 }"""));

        SpecIssue issue = Assert.Single(errors);
        Assert.Equal((3, "layers[3].filters", "layer 3: filters must be an integer, got the string \"six\""), (issue.LayerIndex, issue.Field, issue.Message));
        Assert.Null(issue.LayerName);
    }

    [Fact]
    public void TypeErrorOnAnUnnamedLayerIsNamedAsInTheLayerTable()
    {
        SpecAnalysis analysis = ReadAndAnalyze(WithFourthLayer("""{ "kind": "conv2d", "filters": "six", "kernel": 3 }"""));

        SpecIssue issue = Assert.Single(analysis.Result.Errors);
        Assert.Equal((3, "conv2", "layers[3].filters", "conv2: filters must be an integer, got the string \"six\""),
            (issue.LayerIndex, issue.LayerName, issue.Field, issue.Message));
    }

    [Fact]
    public void NameThatIsNotAStringIsReportedAndTheLayerIsAutoNamed()
    {
        (_, IReadOnlyList<SpecIssue> readErrors) = Read(WithFourthLayer("""{ "kind": "relu", "name": 7 }"""));
        SpecAnalysis analysis = ReadAndAnalyze(WithFourthLayer("""{ "kind": "relu", "name": 7 }"""));

        SpecIssue read = Assert.Single(readErrors);
        Assert.Equal((3, null, "layers[3].name", "layer 3: name must be a string, got the number 7"), (read.LayerIndex, read.LayerName, read.Field, read.Message));
        SpecIssue issue = Assert.Single(analysis.Result.Errors);
        Assert.Equal((3, "relu2", "layers[3].name", "relu2: name must be a string, got the number 7"), (issue.LayerIndex, issue.LayerName, issue.Field, issue.Message));
        Assert.Equal("relu2", analysis.Result.Layers[3].Name);
    }

    [Fact]
    public void AllWrongTypesAreReportedAtOnceInOrder()
    {
        (ModelSpec? spec, IReadOnlyList<SpecIssue> errors) = Read("""
            { "input": { "channels": "one", "height": 28, "width": 28.5 },
              "layers": [ { "kind": "conv2d", "name": "a", "filters": "six", "kernel": [5], "bias": "yes" }, 3,
                          { "kind": "dropout", "name": "d", "p": "half" } ] }
            """);

        Assert.NotNull(spec);
        Assert.Equal(
            ["input.channels", "input.width", "layers[0].filters", "layers[0].kernel", "layers[0].bias", "layers[1]", "layers[2].p"],
            errors.Select(e => e.Field));
        Assert.Null(spec.Input);
        Assert.Equal(3, spec.Layers!.Count);
    }

    [Fact]
    public void LayersThatAreNotAnArrayAreReportedOnce()
    {
        ModelValidationResult result = ReadAndAnalyze("""{ "input": { "channels": 1, "height": 28, "width": 28 }, "layers": { "kind": "relu" } }""").Result;

        SpecIssue issue = Assert.Single(result.Errors);
        Assert.Equal((null, null, "layers", "layers must be an array of layer objects, got an object"), (issue.LayerIndex, issue.LayerName, issue.Field, issue.Message));
        Assert.Empty(result.Layers);
    }

    [Fact]
    public void LayerThatIsNotAnObjectIsReportedAtItsIndex()
    {
        (_, IReadOnlyList<SpecIssue> errors) = Read(WithFourthLayer("\"relu\""));

        SpecIssue issue = Assert.Single(errors);
        Assert.Equal((3, null, "layers[3]", "layer 3 must be an object such as { \"kind\": \"relu\" }, got the string \"relu\""),
            (issue.LayerIndex, issue.LayerName, issue.Field, issue.Message));
    }

    [Fact]
    public void LayerThatIsNotAnObjectIsNotAlsoReportedAsAnUnknownKind()
    {
        ModelValidationResult result = ReadAndAnalyze(WithFourthLayer("[]")).Result;

        Assert.False(result.Valid);
        SpecIssue issue = Assert.Single(result.Errors);
        Assert.Equal((3, "layers[3]"), (issue.LayerIndex, issue.Field));
        Assert.EndsWith("got an array of 0", issue.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void InputThatIsNotAnObjectIsReportedOnce()
    {
        ModelValidationResult result = ReadAndAnalyze("""{ "input": [1, 28, 28], "layers": [ { "kind": "flatten" }, { "kind": "linear", "units": 2 } ] }""").Result;

        SpecIssue issue = Assert.Single(result.Errors);
        Assert.Equal((null, null, "input", "input must be an object { \"channels\", \"height\", \"width\" }, got an array of 3"),
            (issue.LayerIndex, issue.LayerName, issue.Field, issue.Message));
    }

    [Fact]
    public void WrongOrMissingInputSizesAreReportedPerFieldAndNotAgainAsAMissingInput()
    {
        ModelValidationResult result = ReadAndAnalyze("""{ "input": { "channels": "1", "width": 28 }, "layers": [ { "kind": "flatten" }, { "kind": "linear", "units": 2 } ] }""").Result;

        Assert.Equal(
            [("input.channels", "input.channels: channels must be an integer, got the string \"1\""), ("input.height", "input.height is required: an integer")],
            result.Errors.Select(e => (e.Field, e.Message)));
        Assert.All(result.Errors, e => Assert.Equal((null, null), (e.LayerIndex, e.LayerName)));
    }

    [Theory]
    [InlineData("[]", "an array of 0")]
    [InlineData("\"lenet5\"", "the string \"lenet5\"")]
    [InlineData("42", "the number 42")]
    [InlineData("null", "null")]
    public void BodyThatIsNotAnObjectIsOneTopLevelError(string json, string got)
    {
        SpecAnalysis analysis = ReadAndAnalyze(json);

        Assert.False(analysis.IsValid);
        SpecIssue issue = Assert.Single(analysis.Result.Errors);
        Assert.Equal((null, null, "", $"a model spec must be a JSON object with input and layers, got {got}"), (issue.LayerIndex, issue.LayerName, issue.Field, issue.Message));
        Assert.Empty(analysis.Result.Layers);
        Assert.Null(Read(json).Spec);
    }

    [Fact]
    public void UnknownLayerFieldSuggestsTheCloseOne()
    {
        ModelValidationResult result = ReadAndAnalyze(WithFourthLayer("""{ "kind": "conv2d", "name": "conv2", "filter": 6, "kernel": 3 }""")).Result;

        SpecIssue unknown = Assert.Single(result.Errors, e => e.Field == "layers[3].filter");
        Assert.Equal((3, "conv2"), (unknown.LayerIndex, unknown.LayerName));
        Assert.Equal(
            "conv2: unknown field \"filter\" for conv2d; did you mean \"filters\"? (fields: kind, name, inputs, filters, kernel, stride, padding, dilation, groups, bias, biasInit)",
            unknown.Message);
        SpecIssue missing = Assert.Single(result.Errors, e => e.Field == "layers[3].filters");
        Assert.Equal("conv2: filters is required", missing.Message);
    }

    [Theory]
    [InlineData("""{ "kind": "conv2d", "filters": 6, "kernel": 3, "Stride": 1 }""", "layers[3].Stride", "stride")]
    [InlineData("""{ "kind": "conv2d", "filters": 6, "kernels": 3 }""", "layers[3].kernels", "kernel")]
    [InlineData("""{ "kind": "linear", "unit": 6 }""", "layers[3].unit", "units")]
    public void MisspelledFieldsGetADidYouMean(string layer, string field, string suggestion)
    {
        (_, IReadOnlyList<SpecIssue> errors) = Read(WithFourthLayer(layer));

        SpecIssue issue = Assert.Single(errors);
        Assert.Equal((3, field), (issue.LayerIndex, issue.Field));
        Assert.Contains($"; did you mean \"{suggestion}\"?", issue.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnknownTopLevelAndInputFieldsAreReported()
    {
        (_, IReadOnlyList<SpecIssue> errors) = Read("""
            { "Input": {}, "input": { "channels": 1, "height": 28, "width": 28, "depth": 3 }, "layer": [] }
            """);

        Assert.Equal(
            [
                ("Input", "spec: unknown field \"Input\" for a model spec; did you mean \"input\"? (fields: name, input, layers)"),
                ("layer", "spec: unknown field \"layer\" for a model spec; did you mean \"layers\"? (fields: name, input, layers)"),
                ("input.depth", "input: unknown field \"depth\" for input (fields: channels, height, width)"),
            ],
            errors.Select(e => (e.Field, e.Message)));
    }

    [Fact]
    public void FieldOfAnotherKindIsUnknownToTheReaderAndReportedOnce()
    {
        ModelValidationResult result = ReadAndAnalyze(WithFourthLayer("""{ "kind": "conv2d", "name": "conv2", "filters": 6, "kernel": 3, "units": 10 }""")).Result;

        SpecIssue issue = Assert.Single(result.Errors);
        Assert.Equal((3, "conv2", "layers[3].units"), (issue.LayerIndex, issue.LayerName, issue.Field));
        Assert.Equal("conv2: unknown field \"units\" for conv2d (fields: kind, name, inputs, filters, kernel, stride, padding, dilation, groups, bias, biasInit)", issue.Message);
    }

    [Fact]
    public void UnknownKindListsEveryFieldAndTheAnalyzerNamesTheKinds()
    {
        ModelValidationResult result = ReadAndAnalyze(WithFourthLayer("""{ "kind": "dense", "units": 10, "activation": "relu" }""")).Result;

        Assert.Equal(["layers[3].activation", "layers[3].kind"], result.Errors.Select(e => e.Field));
        Assert.Contains("unknown field \"activation\" for layers[3] (fields: kind, name, inputs, filters,", result.Errors[0].Message, StringComparison.Ordinal);
        Assert.StartsWith("layer1: unknown kind \"dense\"; expected one of conv2d,", result.Errors[1].Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MissingKindIsReportedOnceByTheAnalyzer()
    {
        ModelValidationResult result = ReadAndAnalyze(WithFourthLayer("""{ "units": 10 }""")).Result;

        SpecIssue issue = Assert.Single(result.Errors);
        Assert.Equal((3, "layers[3].kind"), (issue.LayerIndex, issue.Field));
        Assert.StartsWith("layer 3: kind is missing", issue.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReaderErrorsComeFirstThenTheAnalyzersOnOtherFields()
    {
        ModelValidationResult result = ReadAndAnalyze("""
            { "input": { "channels": 1, "height": 28, "width": 28 },
              "layers": [ { "kind": "conv2d", "name": "c1", "filters": "six", "kernel": 3 },
                          { "kind": "conv2d", "name": "c2", "filters": 0, "kernel": [3, "x"] },
                          { "kind": "dropout", "p": 1 },
                          { "kind": "flatten" }, { "kind": "linear", "units": 1 } ] }
            """).Result;

        Assert.Equal(
            ["layers[0].filters", "layers[1].kernel", "layers[1].filters", "layers[2].p", "layers[4].units"],
            result.Errors.Select(e => e.Field));
        Assert.Equal("c1: filters must be an integer, got the string \"six\"", result.Errors[0].Message);
        Assert.Equal("c2: filters must be at least 1, got 0", result.Errors[2].Message);
        Assert.False(result.Valid);
        Assert.Null(result.OutputShape);
    }

    [Fact]
    public void NullFieldsMeanAbsent()
    {
        SpecAnalysis analysis = ReadAndAnalyze("""
            { "name": null, "input": { "channels": 1, "height": 8, "width": 8 },
              "layers": [ { "kind": "conv2d", "name": null, "filters": 2, "kernel": 3, "stride": null, "padding": null },
                          { "kind": "flatten" }, { "kind": "linear", "units": 2, "bias": null } ] }
            """);

        Assert.True(analysis.IsValid, Describe(analysis.Result.Errors));
        Assert.Equal("conv1", analysis.Plan[0].Name);
        Assert.True(analysis.Plan[2].Bias);
    }

    [Fact]
    public void ReadAndAnalyzeAppliesTheLimits()
    {
        SpecIssue issue = Assert.Single(ReadAndAnalyze(LeNetJson, new SpecLimits { MaxParameters = 1000 }).Result.Errors);

        Assert.Equal("the model has 61,706 parameters, over the cap of 1,000", issue.Message);
    }

    [Fact]
    public void PresetSerializedWithWebDefaultsReadsBackValid()
    {
        // A .NET client posting the shared contract with the web defaults writes every unset field as null.
        string json = JsonSerializer.Serialize(ModelPresets.LeNet5(), JsonSerializerOptions.Web);

        SpecAnalysis analysis = ReadAndAnalyze(json);

        Assert.True(analysis.IsValid, Describe(analysis.Result.Errors));
        Assert.Equal(61_706, analysis.Result.TotalParameters);
    }

    [Fact]
    public void PresetSerializedWithoutNullsReadsBackToTheSameTable()
    {
        ModelSpec preset = ModelPresets.LeNet5(3, 32, 32, 5);

        ModelValidationResult fromJson = ReadAndAnalyze(JsonSerializer.Serialize(preset, s_webWithoutNulls)).Result;

        ModelValidationResult direct = SpecAnalyzer.Analyze(preset).Result;
        Assert.True(fromJson.Valid, Describe(fromJson.Errors));
        Assert.Equal(direct.Layers.Select(l => (l.Name, string.Join("×", l.OutputShape), l.Parameters)), fromJson.Layers.Select(l => (l.Name, string.Join("×", l.OutputShape), l.Parameters)));
    }

    [Fact]
    public void NamesOverTheirCapsAreErrorsNamingTheFieldAndTheConfigurationKey()
    {
        string layerName = new('l', 65);
        (_, IReadOnlyList<SpecIssue> errors) = Read($$"""
            { "name": "{{new string('s', 101)}}", "input": { "channels": 1, "height": 28, "width": 28 },
              "layers": [ { "kind": "{{new string('k', 65)}}", "name": "{{layerName}}" }, { "kind": "linear", "units": 2, "inputs": "{{layerName}}" } ] }
            """);

        Assert.Equal(["name", "layers[0].name", "layers[0].kind", "layers[1].inputs"], errors.Select(e => e.Field));
        Assert.Contains("at most 100 characters (configuration Specs:MaxNameLength), got 101", errors[0].Message, StringComparison.Ordinal);
        Assert.All(errors.Skip(1), e => Assert.Contains("Specs:MaxLayerNameLength", e.Message, StringComparison.Ordinal));
        Assert.All(errors, e => Assert.True(e.Message.Length < 200, e.Message));
    }

    [Fact]
    public void AnUnknownFieldWithAHugeNameIsReportedByItsFirstCharacters()
    {
        string huge = new('u', 100_000);

        SpecIssue issue = Assert.Single(Read($$"""{ "input": { "channels": 1, "height": 28, "width": 28 }, "layers": [], "{{huge}}": 1 }""").Errors);

        Assert.True(issue.Field.Length < 50, issue.Field);
        Assert.True(issue.Message.Length < 300, issue.Message);
    }

    [Fact]
    public void ErrorsOverTheCapAreCountedInOneLastEntry()
    {
        SpecIssue[] errors = [.. Enumerable.Range(0, 120).Select(i => new SpecIssue(null, null, $"f{i}", "wrong"))];

        IReadOnlyList<SpecIssue> bounded = new SpecLimits { MaxErrors = 50 }.Bounded(errors);

        Assert.Equal(51, bounded.Count);
        Assert.Equal(errors.Take(50), bounded.Take(50));
        Assert.Equal("errors", bounded[^1].Field);
        Assert.StartsWith("70 more errors", bounded[^1].Message, StringComparison.Ordinal);
        Assert.Equal(50, new SpecLimits { MaxErrors = 50 }.Bounded(errors[..50]).Count);
    }
}
