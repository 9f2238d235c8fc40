using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using FsCheck;
using FsCheck.Fluent;
using Microsoft.FSharp.Core;
using TrainingService.Contracts.Specs;
using TrainingService.Training.Export;
using TrainingService.Training.Models;
using TrainingService.Training.Specs;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace TrainingService.Training.Tests.Specs;

/// <summary>
/// Hostile specs (random layer stacks and graphs with wrong types, huge and out-of-range values, unknown and missing
/// fields; valid specs with their JSON text mutated) through <see cref="SpecReader.ReadAndAnalyze"/>: a result with
/// errors and nothing else, every error on a field of the request, within time and allocation caps. Small valid specs
/// also cross-check the analyser's parameter count against the built model. Fixed seeds and counts.
/// </summary>
public sealed partial class SpecFuzzTests(ITestOutputHelper output)
{
    private const int HostileCases = 400, MutatedCases = 400, HugeCases = 150, TorchCases = 30;
    private const ulong Seed = 20261127, Gamma = 0x9E3779B97F4A7C15;
    private const long AllocationCap = 64L << 20;
    private static readonly TimeSpan s_timeCap = TimeSpan.FromMilliseconds(200);

    // Every top-level key an error may name without the request holding it.
    private static readonly string[] s_documentedKeys = ["", "name", "input", "layers", "errors"];
    private static readonly string[] s_layerKeys =
        ["kind", "name", "inputs", "filters", "kernel", "stride", "padding", "dilation", "groups", "bias", "biasInit", "units", "p", "slope", "eps", "momentum"];

    private static readonly Gen<SpecCase> s_case =
        from seed in Gen.Choose(0, int.MaxValue)
        from flavour in Gen.Choose(0, 3)
        select new SpecCase(seed, flavour);

    [Fact]
    public void AHostileSpecGetsAResultWithErrorsWithinTheCaps()
    {
        var stats = new FuzzStats();
        Check(HostileCases, c => Property(HostileSpecs.Hostile(new Random(c.Seed), c.Flavour), c, stats));
        output.WriteLine($"hostile: {stats}");
        Assert.Equal(HostileCases, stats.Cases);
    }

    [Fact]
    public void AMutatedValidSpecGetsAResultWithErrorsWithinTheCaps()
    {
        var stats = new FuzzStats();
        Check(MutatedCases, c =>
        {
            var random = new Random(c.Seed);
            string valid = JsonSerializer.Serialize(HostileSpecs.Valid(random), JsonSerializerOptions.Web);
            Property(HostileSpecs.Mutate(random, Encoding.UTF8.GetBytes(valid), 1 + c.Flavour), c, stats);
        });
        output.WriteLine($"mutated: {stats}");
        Assert.Equal(MutatedCases, stats.Cases);
    }

    [Fact]
    public void AnAstronomicallyLargeSpecIsAnErrorAboutACapNeverAWrappedNumber()
    {
        var stats = new FuzzStats();
        Check(HugeCases, c => Property(Encoding.UTF8.GetBytes(HostileSpecs.Huge(new Random(c.Seed))), c, stats));
        output.WriteLine($"huge: {stats}");
        Assert.Equal(HugeCases, stats.Cases);
    }

    [Fact]
    public void ASmallValidSpecCountsTheParametersOfItsModelAndItsInferenceAgrees()
    {
        int run = 0, graphs = 0;
        Check(TorchCases, c =>
        {
            ModelSpec spec = HostileSpecs.Valid(new Random(c.Seed));
            SpecAnalysis analysis = SpecAnalyzer.Analyze(spec);
            Assert.True(analysis.IsValid, $"{c}: {JsonSerializer.Serialize(spec, JsonSerializerOptions.Web)}\n{Net.Describe(analysis.Result.Errors)}");
            run++;
            graphs += spec.Layers!.Any(l => l.Inputs is not null) ? 1 : 0;

            // The text a client sends reads back to the same analysis.
            using JsonDocument json = JsonDocument.Parse(JsonSerializer.Serialize(spec, JsonSerializerOptions.Web));
            Assert.Equal(analysis.Result.TotalParameters, SpecReader.ReadAndAnalyze(json.RootElement).Result.TotalParameters);

            using var model = new SpecModel(analysis, seed: (ulong)c.Seed);
            long counted = model.parameters().Sum(p => p.numel());
            Assert.True(counted == analysis.Result.TotalParameters, $"{c}: torch counts {counted}, the analyser {analysis.Result.TotalParameters}");

            model.eval();
            using var saved = new MemoryStream();
            model.save(new BinaryWriter(saved));
            saved.Position = 0;
            using var inference = new Inference(analysis, StateDict.Read(new BinaryReader(saved)));
            using var scope = NewDisposeScope();
            InputSpec input = spec.Input!;
            Tensor x = randn(2, input.Channels, input.Height, input.Width);
            Tensor expected = model.call(x), actual = inference.Forward(x);
            double difference = (expected - actual).abs().max().item<float>();
            Assert.True(difference <= 1e-5, $"{c}: max |difference| {difference}");
        });

        output.WriteLine($"torch: {run} valid specs, {graphs} of them graphs");
        Assert.Equal(TorchCases, run);
    }

    [Fact]
    public void LayersWhoseParametersSumPast64BitsAreAnErrorAboutTheCap()
    {
        // Found while writing the huge-spec property: each conv's count fits in a long, their sum did not, and Sum threw.
        ModelSpec spec = Net.Of(1, 1, 1,
            Net.Conv(1 << 21, 1),
            Net.Conv(1 << 21, 1023, padding: 511), Net.Conv(1 << 21, 1023, padding: 511), Net.Conv(1 << 21, 1023, padding: 511),
            Net.Flatten(), Net.Linear(10));

        ModelValidationResult result = Net.Analyze(spec);

        Assert.False(result.Valid);
        Assert.True(result.TotalParameters > 0 && result.TotalMultiplyAdds > 0, $"{result.TotalParameters}, {result.TotalMultiplyAdds}");
        Assert.Contains(result.Errors, e => e.Field == "layers" && e.Message.Contains("more parameters than 64 bits can count, over the cap", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("""{ "name": "\ud800", "input": { "channels": 1, "height": 8, "width": 8 }, "layers": [ { "kind": "flatten" }, { "kind": "linear", "units": 2 } ] }""", "name")]
    [InlineData("""{ "input": { "channels": 1, "height": 8, "width": 8 }, "layers": [ { "kind": "flatten", "name": "a\udc00" }, { "kind": "linear", "units": 2 } ] }""", "layers[0].name")]
    [InlineData("""{ "input": { "channels": 1, "height": 8, "width": 8 }, "layers": [ { "kind": "\ud800" }, { "kind": "linear", "units": 2 } ] }""", "layers[0].kind")]
    [InlineData("""{ "input": { "channels": 1, "height": 8, "width": 8 }, "layers": [ { "kind": "flatten" }, { "kind": "linear", "units": 2, "inputs": ["\ud800"] } ] }""", "layers[1].inputs[0]")]
    [InlineData("""{ "input": { "channels": 1, "height": 8, "width": 8 }, "layers": [ { "kind": "flatten" }, { "kind": "linear", "units": "\ud800" } ] }""", "layers[1].units")]
    [InlineData("""{ "input": { "channels": 1, "height": 8, "width": 8 }, "layers": [ { "kind": "flatten", "\ud800": 1 }, { "kind": "linear", "units": 2 } ] }""", @"layers[0].\ud800")]
    [InlineData(""""  "\ud800"  """", "")]
    [InlineData("""{ "\udfff": 1, "input": { "channels": 1, "height": 8, "width": 8 }, "layers": [ { "kind": "flatten" }, { "kind": "linear", "units": 2 } ] }""", @"\udfff")]
    public void ALoneSurrogateIsAnErrorOnItsFieldNotAnException(string json, string field)
    {
        // Found with the hostile specs' "\ud800" values: GetString, JsonProperty.Name and TryGetProperty threw InvalidOperationException.
        ModelValidationResult result = ReadAndAnalyze(json);

        Assert.False(result.Valid);
        Assert.Contains(result.Errors, e => e.Field == field);
    }

    private static ModelValidationResult ReadAndAnalyze(string json)
    {
        using JsonDocument document = JsonDocument.Parse(json);
        return SpecReader.ReadAndAnalyze(document.RootElement).Result;
    }

    /// <summary>The bytes parse (or the parser refuses them, as the API's 400 does) and read to a bounded result.</summary>
    private static void Property(byte[] bytes, SpecCase c, FuzzStats stats)
    {
        stats.Cases++;
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(bytes);
        }
        catch (JsonException)
        {
            stats.Unparsed++;
            return;
        }

        using (document)
        {
            SpecLimits limits = SpecLimits.Default;
            long before = GC.GetAllocatedBytesForCurrentThread();
            long started = Stopwatch.GetTimestamp();
            ModelValidationResult result = SpecReader.ReadAndAnalyze(document.RootElement, limits).Result;
            TimeSpan elapsed = Stopwatch.GetElapsedTime(started);
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            stats.Record(result.Valid, elapsed, allocated);

            string text = Encoding.UTF8.GetString(bytes);
            string shown = text.Length <= 600 ? text : text[..600] + "…";
            Assert.True(allocated <= AllocationCap, $"{c}: allocated {allocated:N0} bytes: {shown}");
            Assert.True(elapsed < s_timeCap || stats.Cases <= 1, $"{c}: took {elapsed.TotalMilliseconds:F0} ms: {shown}");
            Assert.True(result.Valid == (result.Errors.Count == 0), $"{c}: valid {result.Valid} with {result.Errors.Count} errors");
            Assert.True(limits.Bounded(result.Errors).Count <= limits.MaxErrors + 1, $"{c}: unbounded errors");
            Assert.True(result.TotalParameters >= 0 && result.TotalMultiplyAdds >= 0 && result.TotalActivationBytes >= 0,
                $"{c}: negative totals {result.TotalParameters}, {result.TotalMultiplyAdds}, {result.TotalActivationBytes}: {shown}");
            Assert.All(result.Layers, l => Assert.True(
                l.Parameters >= 0 && l.MultiplyAdds >= 0 && l.ActivationBytes > 0 && l.OutputShape.All(d => d > 0),
                $"{c}: {l.Name} reports {string.Join("×", l.OutputShape)}, {l.Parameters}, {l.MultiplyAdds}, {l.ActivationBytes}"));
            foreach (SpecIssue issue in result.Errors.Concat(result.Warnings))
            {
                Assert.True(FieldExists(issue.Field, document.RootElement), $"{c}: error on \"{issue.Field}\", not in the request: {issue.Message}\n{shown}");
                Assert.All(WrappedNumber().Matches(issue.Message), m => Assert.True(
                    text.Contains(m.Value.TrimStart('−').TrimStart('-'), StringComparison.Ordinal), $"{c}: a wrapped number in \"{issue.Message}\""));
            }
        }
    }

    /// <summary>A field path the request holds, or a key every request may be told about (a missing required field).</summary>
    private static bool FieldExists(string field, JsonElement root)
    {
        if (s_documentedKeys.Contains(field, StringComparer.Ordinal) || field.StartsWith("input.", StringComparison.Ordinal))
        {
            return true;
        }

        if (Walk(field, root))
        {
            return true;
        }

        Match layer = LayerPath().Match(field);
        if (!layer.Success)
        {
            return root.ValueKind == JsonValueKind.Object && HasProperty(root, field);
        }

        if (!root.TryGetProperty("layers", out JsonElement layers) || layers.ValueKind != JsonValueKind.Array)
        {
            return false;
        }

        int index = int.Parse(layer.Groups["index"].Value, CultureInfo.InvariantCulture);
        if (index >= layers.GetArrayLength())
        {
            return false;
        }

        string rest = layer.Groups["rest"].Value;
        JsonElement item = layers[index];
        if (rest.Length == 0 || s_layerKeys.Contains(rest, StringComparer.Ordinal))
        {
            return true;
        }

        Match input = InputPath().Match(rest);
        if (input.Success)
        {
            return item.TryGetProperty("inputs", out JsonElement inputs)
                && int.Parse(input.Groups["k"].Value, CultureInfo.InvariantCulture) < (inputs.ValueKind == JsonValueKind.Array ? inputs.GetArrayLength() : 1);
        }

        return item.ValueKind == JsonValueKind.Object && HasProperty(item, rest);
    }

    /// <summary>Whether the path (a.b[2].c) leads somewhere in the JSON.</summary>
    private static bool Walk(string field, JsonElement json)
    {
        foreach (Match segment in PathSegment().Matches(field))
        {
            if (segment.Groups["index"].Success)
            {
                int k = int.Parse(segment.Groups["index"].Value, CultureInfo.InvariantCulture);
                if (json.ValueKind != JsonValueKind.Array || k >= json.GetArrayLength())
                {
                    return false;
                }

                json = json[k];
            }
            else if (json.ValueKind == JsonValueKind.Object
                && json.EnumerateObject().Where(p => Spellings(p).Contains(segment.Groups["name"].Value, StringComparer.Ordinal)).Select(p => p.Value).ToList() is [var next, ..])
            {
                json = next;
            }
            else
            {
                return false;
            }
        }

        return true;
    }

    // A key as the request spells it, escapes and all, any invalid UTF-8 as U+FFFD; or as text when it reads as one.
    private static string[] Spellings(JsonProperty p)
    {
        string raw = Encoding.UTF8.GetString(JsonMarshal.GetRawUtf8PropertyName(p));
        try
        {
            return [raw, p.Name];
        }
        catch (InvalidOperationException)
        {
            return [raw];
        }
    }

    // The reader names an unknown field by its first 40 characters and "…", an invalid one by its escaped text.
    private static bool HasProperty(JsonElement json, string name) => json.EnumerateObject().SelectMany(Spellings).Any(spelling =>
        spelling == name || (name.EndsWith('…') && spelling.StartsWith(name[..^1], StringComparison.Ordinal)));

    private static Config Settings(int cases) => Config.QuickThrowOnFailure.WithMaxTest(cases).WithQuietOnSuccess(true)
        .WithReplay(FSharpOption<Replay>.Some(new Replay(new Rnd(Seed, Gamma), FSharpOption<int>.None)));

    private static void Check(int cases, Action<SpecCase> property) => FsCheck.Check.One(Settings(cases), Prop.ForAll(Arb.From(s_case), property));

    [GeneratedRegex(@"^layers\[(?<index>\d+)\](?:\.(?<rest>.+))?$", RegexOptions.Singleline)]
    private static partial Regex LayerPath();

    [GeneratedRegex(@"(?:^|\.)(?<name>[^.\[]+)|\[(?<index>\d+)\]")]
    private static partial Regex PathSegment();

    [GeneratedRegex(@"^inputs\[(?<k>\d+)\]$")]
    private static partial Regex InputPath();

    // A count wrapped past 64 bits shows as a large negative number.
    [GeneratedRegex(@"-\d{10,}|−\d{10,}")]
    private static partial Regex WrappedNumber();

    private sealed class FuzzStats
    {
        public int Cases { get; set; }

        public int Unparsed { get; set; }

        private int _valid, _refused;
        private TimeSpan _slowest;
        private long _largest;

        public void Record(bool valid, TimeSpan elapsed, long allocated)
        {
            if (valid)
            {
                _valid++;
            }
            else
            {
                _refused++;
            }

            _slowest = elapsed > _slowest ? elapsed : _slowest;
            _largest = Math.Max(_largest, allocated);
        }

        public override string ToString() =>
            $"{Cases} cases: {Unparsed} not JSON, {_refused} refused, {_valid} valid; slowest {_slowest.TotalMilliseconds:F1} ms, largest allocation {_largest / (double)(1 << 20):F2} MiB";
    }
}

internal sealed record SpecCase(int Seed, int Flavour);
