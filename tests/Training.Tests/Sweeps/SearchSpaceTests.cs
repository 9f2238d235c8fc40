using System.Text.Json;
using System.Text.Json.Nodes;
using TrainingService.Contracts.Specs;
using TrainingService.Contracts.Sweeps;
using TrainingService.Contracts.Training;
using TrainingService.Training.Loop;
using TrainingService.Training.Specs;
using TrainingService.Training.Sweeps;
using Xunit;

namespace TrainingService.Training.Tests.Sweeps;

public sealed class SearchSpaceTests
{
    private const string Spec = """
        { "input": { "channels": 1, "height": 16, "width": 16 },
          "layers": [ { "kind": "conv2d", "filters": 4, "kernel": 3 }, { "kind": "relu" }, { "kind": "maxpool2d", "kernel": 2 },
                      { "kind": "flatten" }, { "kind": "linear", "units": 2 } ] }
        """;

    private static readonly JsonElement s_model = JsonDocument.Parse(Spec).RootElement;
    private static readonly SpecAnalysis s_analysis = SpecReader.ReadAndAnalyze(s_model);
    private static readonly DatasetShape s_shape = new("shapes", 1, 16, 16, 2, 128, 32);

    private static List<SearchDimension> Space(string json) => JsonSerializer.Deserialize<List<SearchDimension>>(json, JsonSerializerOptions.Web)!;

    [Fact]
    public void AGridIsTheCartesianProductWithTheLastDimensionFastest()
    {
        List<SearchDimension> space = Space("""
            [ { "path": "hyperparameters.learningRate", "choice": [0.1, 0.01] },
              { "path": "layers.conv1.filters", "intUniform": { "min": 2, "max": 4 } } ]
            """);
        Assert.Equal(6, SearchSpace.GridSize(space));
        List<Dictionary<string, JsonNode?>> trials = SearchSpace.Trials(space, SweepStrategy.Grid, false, 0, 1);
        Assert.Equal(["0.1/2", "0.1/3", "0.1/4", "0.01/2", "0.01/3", "0.01/4"],
            trials.Select(t => $"{t["hyperparameters.learningRate"]!.ToJsonString()}/{t["layers.conv1.filters"]!.ToJsonString()}"));
        Assert.Equal(["hyperparameters.learningRate", "layers.conv1.filters"], trials[0].Keys); // in the space's order
    }

    [Fact]
    public void GridPointsIncludeBothEndsOnALinearOrLogScale()
    {
        List<SearchDimension> space = Space("""[ { "path": "hyperparameters.learningRate", "logUniform": { "min": 0.001, "max": 0.1, "points": 3 } } ]""");
        double[] rates = [.. SearchSpace.Trials(space, SweepStrategy.Grid, false, 0, 1).Select(t => t["hyperparameters.learningRate"]!.GetValue<double>())];
        Assert.Equal(0.001, rates[0]);
        Assert.Equal(0.01, rates[1], 1e-12);
        Assert.Equal(0.1, rates[2]);
        List<SearchDimension> momentum = Space("""[ { "path": "hyperparameters.momentum", "uniform": { "min": 0.8, "max": 0.9, "points": 3 } } ]""");
        Assert.Equal(0.85, SearchSpace.Trials(momentum, SweepStrategy.Grid, false, 0, 1)[1]["hyperparameters.momentum"]!.GetValue<double>(), 1e-12);
    }

    [Fact]
    public void RandomDrawsDependOnlyOnTheSeedTheTrialAndTheDimension()
    {
        List<SearchDimension> space = Space("""
            [ { "path": "hyperparameters.learningRate", "logUniform": { "min": 0.0001, "max": 1 } },
              { "path": "layers.conv1.filters", "intUniform": { "min": 1, "max": 3 } } ]
            """);
        List<Dictionary<string, JsonNode?>> many = SearchSpace.Trials(space, SweepStrategy.Random, false, 10_000, 7);
        List<Dictionary<string, JsonNode?>> few = SearchSpace.Trials(space, SweepStrategy.Random, false, 6, 7);
        Assert.Equal(few[5]["hyperparameters.learningRate"]!.ToJsonString(), many[5]["hyperparameters.learningRate"]!.ToJsonString());
        Assert.NotEqual(few[5]["hyperparameters.learningRate"]!.ToJsonString(),
            SearchSpace.Trials(space, SweepStrategy.Random, false, 6, 8)[5]["hyperparameters.learningRate"]!.ToJsonString());

        double[] rates = [.. many.Select(t => t["hyperparameters.learningRate"]!.GetValue<double>()).Order()];
        Assert.All(rates, r => Assert.InRange(r, 0.0001, 1));
        Assert.InRange(rates[rates.Length / 2], 0.01 * 0.9, 0.01 * 1.1); // log-uniform: the median is the geometric mean of the ends
        long[] filters = [.. many.Select(t => t["layers.conv1.filters"]!.GetValue<long>())];
        foreach (long value in new long[] { 1, 2, 3 })
        {
            Assert.InRange(filters.Count(f => f == value) / 10_000.0, 0.31, 0.36); // both ends as likely as the middle
        }
    }

    [Fact]
    public void AshasGridSamplerShufflesTheWholeGridByTheSeed()
    {
        List<SearchDimension> space = Space("""[ { "path": "hyperparameters.learningRate", "choice": [1, 2, 3, 4, 5, 6, 7, 8] } ]""");
        string Order(int seed) => string.Join(",", SearchSpace.Trials(space, SweepStrategy.Asha, true, 8, seed).Select(t => t["hyperparameters.learningRate"]!.ToJsonString()));
        Assert.Equal("1,2,3,4,5,6,7,8", string.Join(",", Order(1).Split(',').Order(StringComparer.Ordinal)));
        Assert.NotEqual("1,2,3,4,5,6,7,8", Order(1));
        Assert.Equal(Order(1), Order(1));
        Assert.NotEqual(Order(1), Order(2));
    }

    [Fact]
    public void ALayerPathReshapesWhatFollowsAndLeavesTheBaseAlone()
    {
        List<SearchField> fields = [SearchSpace.Resolve("layers.conv1.filters", s_analysis, out _)!, SearchSpace.Resolve("hyperparameters.augmentation.translate", s_analysis, out _)!];
        var values = new Dictionary<string, JsonNode?> { ["layers.conv1.filters"] = 8, ["hyperparameters.augmentation.translate"] = 2 };
        (TrainingPlan? plan, string? error, _) = SearchSpace.Plan(0, s_model, new Hyperparameters(), new MonitoringOptions(), fields, values, s_shape, new SpecLimits(), 1);
        Assert.Null(error);
        Assert.Equal(8, plan!.Model.Spec!.Layers![0].Filters);
        Assert.Equal((8 * 7 * 7 * 2) + 2, plan.Model.Result.Layers[^1].Parameters); // the linear layer takes the wider input
        Assert.Equal(2, plan.Hyperparameters.Augmentation!.Translate);
        Assert.Equal(JsonDocument.Parse(Spec).RootElement.GetRawText(), s_model.GetRawText());
    }

    [Theory]
    [InlineData("hyperparameters.learningRat", "hyperparameters.learningRate")]
    [InlineData("layers.conv9.filters", "its layers are conv1, relu1")]
    [InlineData("layers.pool1.kernel", "its layers are")]
    [InlineData("layers.relu1.filters", "no fields to search")]
    [InlineData("layers.conv1.units", "its searchable fields are filters, kernel")]
    [InlineData("hyperparameters.epochs", "asha sets each trial's epochs")]
    [InlineData("hyperparameters.seed", "the base's seed")]
    [InlineData("datasetId", "monitoring.diagnostics.explosionFactor")]
    public void AnUnknownPathIsNamedWithWhatExists(string path, string message)
    {
        Assert.Null(SearchSpace.Resolve(path, s_analysis, out string error));
        Assert.Contains(message, error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{ "path": "hyperparameters.optimizer", "uniform": { "min": 0, "max": 1 } }""", "searchSpace[0].uniform", "use choice")]
    [InlineData("""{ "path": "layers.conv1.filters", "logUniform": { "min": 2, "max": 8 } }""", "searchSpace[0].logUniform", "whole number")]
    [InlineData("""{ "path": "layers.conv1.filters", "intUniform": { "min": 2, "max": 2.5 } }""", "searchSpace[0].intUniform", "whole numbers")]
    [InlineData("""{ "path": "layers.conv1.filters", "intUniform": { "min": 2, "max": 3, "points": 5 } }""", "searchSpace[0].intUniform.points", "not 5 different")]
    [InlineData("""{ "path": "hyperparameters.learningRate", "logUniform": { "min": 0.1, "max": 1 } }""", "searchSpace[0].logUniform.points", "give points")]
    [InlineData("""{ "path": "hyperparameters.learningRate", "choice": [] }""", "searchSpace[0].choice", "1 to 64")]
    public void ADimensionOfTheWrongKindIsRefusedByItsKey(string dimension, string key, string message)
    {
        var errors = new List<(string Key, string Message)>();
        SearchSpace.Check(Space($"[{dimension}]"), s_analysis, needsGrid: true, (k, m) => errors.Add((k, m)));
        (string k, string m) = Assert.Single(errors);
        Assert.Equal(key, k);
        Assert.Contains(message, m, StringComparison.Ordinal);
    }

    [Fact]
    public void AValueTheFieldCannotTakeIsBlamedOnItsDimension()
    {
        List<SearchField> fields = [SearchSpace.Resolve("hyperparameters.momentum", s_analysis, out _)!, SearchSpace.Resolve("hyperparameters.optimizer", s_analysis, out _)!];
        var values = new Dictionary<string, JsonNode?> { ["hyperparameters.momentum"] = 0.5, ["hyperparameters.optimizer"] = "lion" };
        (TrainingPlan? plan, string? error, string? path) = SearchSpace.Plan(3, s_model, new Hyperparameters(), new MonitoringOptions(), fields, values, s_shape, new SpecLimits(), 1);
        Assert.Null(plan);
        Assert.Equal("hyperparameters.optimizer", path);
        Assert.StartsWith("trial 3 (hyperparameters.momentum 0.5, hyperparameters.optimizer \"lion\")", error, StringComparison.Ordinal);
    }
}
