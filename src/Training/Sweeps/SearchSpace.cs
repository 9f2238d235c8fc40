using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
using TrainingService.Contracts.Specs;
using TrainingService.Contracts.Sweeps;
using TrainingService.Contracts.Training;
using TrainingService.Training.Loop;
using TrainingService.Training.Specs;

namespace TrainingService.Training.Sweeps;

/// <summary>What values a searchable field takes: whole numbers, any number, or only a choice (enums, booleans).</summary>
public enum FieldType
{
    Whole,
    Real,
    ChoiceOnly,
}

/// <summary>
/// A field a sweep may vary: hyperparameters.* and monitoring.* as the job's JSON names them (found from the types'
/// serialisation metadata, so a new setting is searchable the day it exists), or a layer's field by the layer's name,
/// layers.conv1.filters, which sets model.layers[k].filters.
/// </summary>
public sealed record SearchField(string Path, FieldType Type, string Root, int? LayerIndex, IReadOnlyList<string> Segments);

/// <summary>
/// A sweep's search space, pure: which paths exist, the trials' settings (grid, seeded draws, asha's shuffled grid) and
/// a trial's job, made by setting each value on the base's JSON and reading it back as POST /jobs would.
/// </summary>
public static class SearchSpace
{
    public const int MaxDimensions = 8;

    /// <summary>The learning rate a sweep takes from its range test's suggestion.</summary>
    public const string FromRangeTest = "fromRangeTest";
    public const int MaxChoices = 64;

    private static readonly JsonSerializerOptions Json = JsonSerializerOptions.Web;

    /// <summary>Settings a sweep does not vary: asha sets the epochs, every trial keeps the base's seed, statsEvery changes only what is recorded.</summary>
    private static readonly HashSet<string> s_notSearched = ["hyperparameters.epochs", "hyperparameters.seed", "monitoring.statsEvery"];

    /// <summary>Every searchable path of this model's jobs, for messages.</summary>
    public static IReadOnlyList<string> Paths(SpecAnalysis model)
    {
        var paths = new List<string>();
        Walk(typeof(Hyperparameters), "hyperparameters", [], paths);
        Walk(typeof(MonitoringOptions), "monitoring", [], paths);
        foreach (LayerPlan layer in model.Plan)
        {
            paths.AddRange(layer.Kind.Fields.Where(f => LayerFieldType(f) is not null).Select(f => $"layers.{layer.Name}.{f}"));
        }

        return paths;
    }

    /// <summary>The field a path names, or null with why.</summary>
    public static SearchField? Resolve(string? path, SpecAnalysis model, out string error)
    {
        error = "";
        string[] parts = (path ?? "").Split('.');
        if (parts.Length >= 2 && parts[0] is "hyperparameters" or "monitoring")
        {
            Type type = parts[0] == "hyperparameters" ? typeof(Hyperparameters) : typeof(MonitoringOptions);
            for (int i = 1; i < parts.Length; i++)
            {
                JsonPropertyInfo? property = Json.GetTypeInfo(type).Properties.FirstOrDefault(p => p.Name == parts[i]);
                if (property is null)
                {
                    break;
                }

                Type propertyType = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
                if (i == parts.Length - 1)
                {
                    if (Classify(propertyType) is { } fieldType)
                    {
                        return s_notSearched.Contains(path!)
                            ? Refused(parts[^1], out error, path!)
                            : new SearchField(path!, fieldType, parts[0], null, parts[1..]);
                    }

                    break;
                }

                if (Classify(propertyType) is not null || propertyType == typeof(string))
                {
                    break;
                }

                type = propertyType;
            }
        }
        else if (parts.Length == 3 && parts[0] == "layers")
        {
            LayerPlan? layer = model.Plan.FirstOrDefault(l => l.Name == parts[1]);
            if (layer is null)
            {
                error = $"the model has no layer \"{parts[1]}\"; its layers are {string.Join(", ", model.Plan.Select(l => l.Name))}";
                return null;
            }

            if (!layer.Kind.Fields.Contains(parts[2]) || LayerFieldType(parts[2]) is not { } fieldType)
            {
                string[] fields = [.. layer.Kind.Fields.Where(f => LayerFieldType(f) is not null)];
                error = fields.Length == 0
                    ? $"{layer.Name} is a {layer.Kind.Name} layer, which has no fields to search"
                    : $"{layer.Name} is a {layer.Kind.Name} layer; its searchable fields are {string.Join(", ", fields)}";
                return null;
            }

            return new SearchField(path!, fieldType, "model", layer.Index, [parts[2]]);
        }

        IReadOnlyList<string> known = Paths(model);
        error = $"\"{path}\" is not a searchable field; these are: {string.Join(", ", known)}";
        return null;
    }

    private static SearchField? Refused(string field, out string error, string path)
    {
        error = field switch
        {
            "epochs" => $"{path} is not searched: asha sets each trial's epochs (asha.maxEpochs); grid and random trials all train the base's epochs",
            "seed" => $"{path} is not searched: every trial trains with the base's seed, so trials differ only by their settings",
            _ => $"{path} is not searched: it changes what is recorded, not what is learnt",
        };
        return null;
    }

    private static void Walk(Type type, string prefix, HashSet<Type> seen, List<string> into)
    {
        if (!seen.Add(type))
        {
            return;
        }

        foreach (JsonPropertyInfo property in Json.GetTypeInfo(type).Properties)
        {
            Type propertyType = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            string path = $"{prefix}.{property.Name}";
            if (Classify(propertyType) is not null)
            {
                if (!s_notSearched.Contains(path))
                {
                    into.Add(path);
                }
            }
            else if (propertyType.IsClass && propertyType != typeof(string) && !propertyType.IsArray)
            {
                Walk(propertyType, path, seen, into);
            }
        }
    }

    private static FieldType? Classify(Type type) =>
        type == typeof(int) || type == typeof(long) ? FieldType.Whole
        : type == typeof(double) || type == typeof(float) ? FieldType.Real
        : type == typeof(bool) || type.IsEnum ? FieldType.ChoiceOnly
        : null;

    private static FieldType? LayerFieldType(string field) => field switch
    {
        "filters" or "groups" or "units" or "kernel" or "stride" or "dilation" or "padding" => FieldType.Whole,
        "biasInit" or "p" or "slope" or "eps" or "momentum" => FieldType.Real,
        "bias" => FieldType.ChoiceOnly,
        _ => null,
    };

    /// <summary>
    /// Checks each dimension on its own: one distribution, the right kind for the field, sane bounds, a grid's points.
    /// Errors are keyed by the request's path (searchSpace[1].logUniform.min).
    /// </summary>
    public static List<SearchField> Check(
        IReadOnlyList<SearchDimension>? space, SpecAnalysis model, bool needsGrid, Action<string, string> error)
    {
        var fields = new List<SearchField>();
        if (space is null || space.Count == 0)
        {
            error("searchSpace", "give at least one dimension: { \"path\": \"hyperparameters.learningRate\", \"logUniform\": { \"min\": 0.001, \"max\": 0.1 } }");
            return fields;
        }

        if (space.Count > MaxDimensions)
        {
            error("searchSpace", $"at most {MaxDimensions} dimensions, got {space.Count}");
            return fields;
        }

        for (int i = 0; i < space.Count; i++)
        {
            string at = $"searchSpace[{i}]";
            SearchDimension dimension = space[i];
            if (dimension is null)
            {
                error(at, "a dimension is an object: { \"path\": …, \"choice\" | \"uniform\" | \"logUniform\" | \"intUniform\": … }");
                continue;
            }

            SearchField? field = Resolve(dimension.Path, model, out string why);
            if (field is null)
            {
                error(at + ".path", why);
                continue;
            }

            if (fields.Any(f => f.Path == field.Path))
            {
                error(at + ".path", $"{field.Path} is searched twice; give it one dimension");
                continue;
            }

            int given = (dimension.Choice is null ? 0 : 1) + (dimension.Uniform is null ? 0 : 1) + (dimension.LogUniform is null ? 0 : 1) + (dimension.IntUniform is null ? 0 : 1);
            if (given != 1)
            {
                error(at, $"give exactly one of choice, uniform, logUniform, intUniform for {field.Path}, got {given}");
                continue;
            }

            bool ok = true;
            void Fail(string key, string message)
            {
                ok = false;
                error(key, message);
            }

            if (dimension.Choice is { } choice)
            {
                if (choice.Count is 0 or > MaxChoices)
                {
                    Fail(at + ".choice", $"give 1 to {MaxChoices} values, got {choice.Count}");
                }
            }
            else
            {
                (string name, SearchRange range) = dimension.Uniform is { } u ? ("uniform", u) : dimension.LogUniform is { } l ? ("logUniform", l) : ("intUniform", dimension.IntUniform!);
                string key = $"{at}.{name}";
                if (range.Around is { } around)
                {
                    if (around != FromRangeTest || name != "logUniform" || field.Path != "hyperparameters.learningRate")
                    {
                        Fail(key + ".around", $"around takes \"{FromRangeTest}\", on a logUniform of hyperparameters.learningRate only");
                    }
                    else if (range.Min is not null || range.Max is not null)
                    {
                        Fail(key, "give around (and factor) or min and max, not both");
                    }
                    else if (range.Factor is { } factor && (!double.IsFinite(factor) || factor <= 1 || factor > 1e6))
                    {
                        Fail(key + ".factor", $"factor must be above 1 and at most 1e6, got {factor}");
                    }
                    else if (range.Points is { } points && (points < 2 || points > MaxChoices))
                    {
                        Fail(key + ".points", $"points must be from 2 to {MaxChoices}, got {points}");
                    }
                    else if (needsGrid && range.Points is null)
                    {
                        Fail(key + ".points", $"a grid needs a finite set of values: give points (2 to {MaxChoices})");
                    }
                }
                else if (field.Type == FieldType.ChoiceOnly)
                {
                    Fail(key, $"{field.Path} takes only named values (true/false or a word): use choice");
                }
                else if (field.Type == FieldType.Whole && name != "intUniform")
                {
                    Fail(key, $"{field.Path} is a whole number: use intUniform or choice");
                }
                else if (range.Min is not { } min || range.Max is not { } max || !double.IsFinite(min) || !double.IsFinite(max))
                {
                    Fail(key, "give min and max, finite numbers");
                }
                else if (min > max)
                {
                    Fail(key + ".min", $"min {min} is above max {max}");
                }
                else if (name == "logUniform" && min <= 0)
                {
                    Fail(key + ".min", $"logUniform needs min above 0, got {min}");
                }
                else if (name == "intUniform" && (min != Math.Floor(min) || max != Math.Floor(max) || Math.Abs(min) > 1e9 || Math.Abs(max) > 1e9))
                {
                    Fail(key, $"intUniform takes whole numbers of at most 1e9, got {min} and {max}");
                }
                else if (range.Points is { } points && (points < 2 || points > MaxChoices))
                {
                    Fail(key + ".points", $"points must be from 2 to {MaxChoices}, got {points}");
                }
                else if (needsGrid && range.Points is null && (name != "intUniform" || max - min + 1 > MaxChoices))
                {
                    Fail(key + ".points", $"a grid needs a finite set of values: give points (2 to {MaxChoices})"
                        + (name == "intUniform" ? $" or a range of at most {MaxChoices} whole numbers" : ""));
                }
                else if (range.Points is { } p && name == "intUniform" && GridValues(dimension, null).Count < p)
                {
                    Fail(key + ".points", $"{p} points between {min} and {max} are not {p} different whole numbers");
                }
            }

            if (ok)
            {
                fields.Add(field);
            }
        }

        return fields;
    }

    /// <summary>The number of grid combinations (saturating at long.MaxValue).</summary>
    public static long GridSize(IReadOnlyList<SearchDimension> space)
    {
        long product = 1;
        foreach (SearchDimension dimension in space)
        {
            int count = GridValues(dimension, 1).Count;
            product = product > long.MaxValue / Math.Max(1, count) ? long.MaxValue : product * count;
        }

        return product;
    }

    /// <summary>
    /// Every trial's settings, by path, fixed when the sweep is created: grid in nested-loop order; random draws keyed by
    /// (seed, trial, dimension); asha with the grid sampler: the grid shuffled by the seed.
    /// </summary>
    /// <remarks>A range around the range test's suggestion takes <paramref name="suggestion"/>; without one its values are null.</remarks>
    public static List<Dictionary<string, JsonNode?>> Trials(
        IReadOnlyList<SearchDimension> space, SweepStrategy strategy, bool gridSampler, int trials, int seed, double? suggestion = null)
    {
        var all = new List<Dictionary<string, JsonNode?>>();
        if (strategy == SweepStrategy.Grid || gridSampler)
        {
            List<JsonNode?>[] values = [.. space.Select(d => GridValues(d, suggestion))];
            int total = (int)GridSize(space);
            for (int t = 0; t < total; t++)
            {
                var trial = new Dictionary<string, JsonNode?>(StringComparer.Ordinal);
                int rest = t;
                for (int d = space.Count - 1; d >= 0; d--)
                {
                    trial[space[d].Path!] = values[d][rest % values[d].Count]?.DeepClone();
                    rest /= values[d].Count;
                }

                all.Add(Ordered(trial, space));
            }

            if (gridSampler)
            {
                for (int i = all.Count - 1; i > 0; i--) // Fisher–Yates, keyed by the seed alone
                {
                    int j = SweepDraws.Choice(SweepDraws.Unit(seed, i, -1), i + 1);
                    (all[i], all[j]) = (all[j], all[i]);
                }
            }

            return all;
        }

        for (int t = 0; t < trials; t++)
        {
            var trial = new Dictionary<string, JsonNode?>(StringComparer.Ordinal);
            for (int d = 0; d < space.Count; d++)
            {
                trial[space[d].Path!] = Draw(space[d], SweepDraws.Unit(seed, t, d), suggestion);
            }

            all.Add(trial);
        }

        return all;
    }

    private static Dictionary<string, JsonNode?> Ordered(Dictionary<string, JsonNode?> trial, IReadOnlyList<SearchDimension> space) =>
        space.ToDictionary(d => d.Path!, d => trial[d.Path!], StringComparer.Ordinal);

    /// <summary>A range's ends: min and max, or the suggestion ÷ and × factor; null while there is no suggestion.</summary>
    private static (double Min, double Max)? Ends(SearchRange range, double? suggestion) =>
        range.Around is null ? (range.Min!.Value, range.Max!.Value)
        : suggestion is double s ? (s / (range.Factor ?? 10), s * (range.Factor ?? 10))
        : null;

    private static JsonNode? Draw(SearchDimension dimension, double u, double? suggestion) => dimension switch
    {
        { Choice: { } choice } => Node(choice[SweepDraws.Choice(u, choice.Count)]),
        { LogUniform: { Around: not null } range } => Ends(range, suggestion) is var (min, max) ? JsonValue.Create(SweepDraws.LogUniform(u, min, max)) : null,
        { Uniform: { Min: { } min, Max: { } max } } => JsonValue.Create(SweepDraws.Uniform(u, min, max)),
        { LogUniform: { Min: { } min, Max: { } max } } => JsonValue.Create(SweepDraws.LogUniform(u, min, max)),
        { IntUniform: { Min: { } min, Max: { } max } } => JsonValue.Create(SweepDraws.IntUniform(u, (long)min, (long)max)),
        _ => throw new ArgumentException("a dimension without a distribution", nameof(dimension)),
    };

    private static List<JsonNode?> GridValues(SearchDimension dimension, double? suggestion) => dimension switch
    {
        { Choice: { } choice } => [.. choice.Select(Node)],
        { LogUniform: { Around: not null, Points: { } points } range } => Ends(range, suggestion) is var (min, max)
            ? [.. SweepDraws.Points(min, max, points, true).Select(v => (JsonNode?)JsonValue.Create(v))]
            : [.. Enumerable.Repeat((JsonNode?)null, points)],
        { Uniform: { Min: { } min, Max: { } max, Points: { } points } } => [.. SweepDraws.Points(min, max, points, false).Select(v => (JsonNode?)JsonValue.Create(v))],
        { LogUniform: { Min: { } min, Max: { } max, Points: { } points } } => [.. SweepDraws.Points(min, max, points, true).Select(v => (JsonNode?)JsonValue.Create(v))],
        { IntUniform: { Min: { } min, Max: { } max, Points: { } points } } =>
            [.. SweepDraws.Points(min, max, points, false).Select(v => (long)Math.Round(v)).Distinct().Select(v => (JsonNode?)JsonValue.Create(v))],
        { IntUniform: { Min: { } min, Max: { } max } } when max - min < MaxChoices =>
            [.. Enumerable.Range(0, (int)(max - min) + 1).Select(i => (JsonNode?)JsonValue.Create((long)min + i))],
        _ => [],
    };

    private static JsonNode? Node(JsonElement element) => JsonNode.Parse(element.GetRawText());

    /// <summary>A trial's job: the base with each value set at its path, read back as the job's own types.</summary>
    /// <exception cref="JsonException">A value the field cannot take (a word where a number goes).</exception>
    public static (JsonElement Model, Hyperparameters Hyperparameters, MonitoringOptions Monitoring) Apply(
        JsonElement model, Hyperparameters hyperparameters, MonitoringOptions monitoring,
        IReadOnlyList<SearchField> fields, IReadOnlyDictionary<string, JsonNode?> values)
    {
        JsonNode hp = JsonSerializer.SerializeToNode(hyperparameters, Json)!;
        JsonNode mon = JsonSerializer.SerializeToNode(monitoring, Json)!;
        JsonNode? spec = null;
        foreach (SearchField field in fields)
        {
            JsonNode? value = values.TryGetValue(field.Path, out JsonNode? v) ? v?.DeepClone() : null;
            if (field.Root == "model")
            {
                spec ??= JsonNode.Parse(model.GetRawText())!;
                spec["layers"]![field.LayerIndex!.Value]![field.Segments[0]] = value;
                continue;
            }

            JsonNode node = field.Root == "hyperparameters" ? hp : mon;
            for (int i = 0; i < field.Segments.Count - 1; i++)
            {
                node = node[field.Segments[i]] ??= new JsonObject();
            }

            node[field.Segments[^1]] = value;
        }

        JsonElement resolved = spec is null ? model.Clone() : JsonSerializer.SerializeToElement(spec, Json);
        return (resolved, hp.Deserialize<Hyperparameters>(Json)!, mon.Deserialize<MonitoringOptions>(Json)!);
    }

    /// <summary>The trial's plan, or why it cannot be trained, named with the trial and its settings, and the search path to blame when one is.</summary>
    public static (TrainingPlan? Plan, string? Error, string? Field) Plan(
        int trial, JsonElement model, Hyperparameters hyperparameters, MonitoringOptions monitoring,
        IReadOnlyList<SearchField> fields, IReadOnlyDictionary<string, JsonNode?> values, DatasetShape shape, SpecLimits limits, int threads)
    {
        string label = $"trial {trial} ({Describe(values)})";
        JsonElement spec;
        Hyperparameters hp;
        MonitoringOptions mon;
        try
        {
            (spec, hp, mon) = Apply(model, hyperparameters, monitoring, fields, values);
        }
        catch (JsonException)
        {
            // Which value: the first that does not fit when set alone.
            SearchField culprit = fields.First(f => !Fits(model, hyperparameters, monitoring, f, values));
            return (null, $"{label}: {values[culprit.Path]?.ToJsonString()} is not a value of {culprit.Path}", culprit.Path);
        }

        (TrainingPlan? plan, IReadOnlyList<SpecIssue> errors) = TrainingPlan.Create(SpecReader.ReadAndAnalyze(spec, limits), shape, hp, mon, null, threads);
        if (plan is not null)
        {
            return (plan, null, null);
        }

        SpecIssue first = errors[0];
        string? path = fields.FirstOrDefault(f => f.Root != "model" && first.Field == $"{f.Root}.{string.Join('.', f.Segments)}")?.Path
            ?? fields.FirstOrDefault(f => f.LayerIndex is int k && (first.LayerIndex == k || first.Field.Contains($"layers[{k}]", StringComparison.Ordinal)))?.Path;
        return (null, $"{label}: {first.Field}: {first.Message}", path);
    }

    private static bool Fits(JsonElement model, Hyperparameters hyperparameters, MonitoringOptions monitoring, SearchField field, IReadOnlyDictionary<string, JsonNode?> values)
    {
        try
        {
            Apply(model, hyperparameters, monitoring, [field], values);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>"hyperparameters.learningRate 0.01, layers.conv1.filters 8".</summary>
    public static string Describe(IReadOnlyDictionary<string, JsonNode?> values) =>
        string.Join(", ", values.Select(p => $"{p.Key} {p.Value?.ToJsonString() ?? "null"}"));
}
