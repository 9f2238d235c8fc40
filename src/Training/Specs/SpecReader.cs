using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using TrainingService.Contracts.Specs;

namespace TrainingService.Training.Specs;

/// <summary>
/// Reads a model spec from JSON, reporting every wrong type and unknown field at once, each with its path
/// (layers[3].kernel), where a serializer would stop at the first.
/// </summary>
public static class SpecReader
{
    private static readonly string[] s_topFields = ["name", "input", "layers"];
    private static readonly string[] s_inputFields = ["channels", "height", "width"];

    public static (ModelSpec? Spec, IReadOnlyList<SpecIssue> Errors) Read(JsonElement json, SpecLimits? limits = null)
    {
        limits ??= SpecLimits.Default;
        var errors = new List<SpecIssue>();
        if (json.ValueKind != JsonValueKind.Object)
        {
            errors.Add(new SpecIssue(null, null, "", $"a model spec must be a JSON object with input and layers, got {Describe(json)}"));
            return (null, errors);
        }

        if (UnreadableText(json, limits.MaxErrors) is { Count: > 0 } unreadable)
        {
            return (null, unreadable);
        }

        UnknownFields(json, s_topFields, "", null, null, errors);
        string? name = json.TryGetProperty("name", out JsonElement n)
            ? String(n, "name", null, null, errors, limits.MaxNameLength, "Specs:MaxNameLength")
            : null;
        InputSpec? input = json.TryGetProperty("input", out JsonElement i) && i.ValueKind != JsonValueKind.Null ? ReadInput(i, errors) : null;
        List<LayerSpec>? layers = null;
        if (json.TryGetProperty("layers", out JsonElement l) && l.ValueKind != JsonValueKind.Null)
        {
            if (l.ValueKind != JsonValueKind.Array)
            {
                errors.Add(new SpecIssue(null, null, "layers", $"layers must be an array of layer objects, got {Describe(l)}"));
            }
            else
            {
                layers = [.. l.EnumerateArray().Select((layer, index) => ReadLayer(layer, index, limits.MaxLayerNameLength, errors))];
            }
        }

        return (new ModelSpec { Name = name, Input = input, Layers = layers }, errors);
    }

    /// <summary>Reads and analyses: type errors first, then the analyser's, without repeating a field already reported.</summary>
    public static SpecAnalysis ReadAndAnalyze(JsonElement json, SpecLimits? limits = null)
    {
        (ModelSpec? spec, IReadOnlyList<SpecIssue> readErrors) = Read(json, limits);
        if (spec is null)
        {
            return new SpecAnalysis(
                new ModelValidationResult { Valid = false, Layers = [], Warnings = [], Errors = readErrors },
                []);
        }

        SpecAnalysis analysis = SpecAnalyzer.Analyze(spec, limits);
        if (readErrors.Count == 0)
        {
            return analysis;
        }

        // The reader knows only given names; name its errors as the analyser named the layers (conv1, …).
        string[] names = SpecAnalyzer.LayerNames(spec.Layers ?? []);
        readErrors = [.. readErrors.Select(e => e is { LayerIndex: int i, LayerName: null } && i < names.Length
            ? e with { LayerName = names[i], Message = ReplacePrefix(e.Message, $"layer {i}: ", $"{names[i]}: ") }
            : e)];
        // An analyser error repeats a reader error when it is about the same field, or inside an object the reader rejected whole.
        var reported = readErrors.Select(e => e.Field).ToHashSet(StringComparer.Ordinal);
        bool Repeats(SpecIssue e) => reported.Contains(e.Field)
            || (e.Field == "input" && reported.Any(f => f.StartsWith("input", StringComparison.Ordinal)))
            || (e.LayerIndex is int i && reported.Contains($"layers[{i}]"));
        var errors = readErrors.Concat(analysis.Result.Errors.Where(e => !Repeats(e))).ToList();
        return new SpecAnalysis(analysis.Result with { Valid = false, OutputShape = null, Errors = errors }, []) { Spec = spec };
    }

    /// <summary>
    /// Strings and keys that parse but cannot be read as text (invalid UTF-8, an escaped lone surrogate "\ud800"): reading one, even
    /// TryGetProperty past one, throws, so a spec holding any is refused with their paths before anything reads it.
    /// </summary>
    private static List<SpecIssue> UnreadableText(JsonElement root, int maxErrors)
    {
        var errors = new List<SpecIssue>();
        void Report(string at) => errors.Add(new SpecIssue(null, null, at,
            $"{(at.Length == 0 ? "spec" : at)}: text must be valid Unicode, but holds invalid UTF-8 or a lone UTF-16 surrogate such as \"\\ud800\""));
        var containers = new Stack<(JsonElement Value, string At)>();
        containers.Push((root, ""));
        while (containers.Count > 0 && errors.Count < maxErrors)
        {
            (JsonElement value, string at) = containers.Pop();
            if (value.ValueKind == JsonValueKind.Object)
            {
                foreach (JsonProperty property in value.EnumerateObject())
                {
                    string? name = Text(property);
                    string path = $"{(at.Length == 0 ? "" : at + ".")}{Truncate(name ?? EscapedName(property))}";
                    if (name is null)
                    {
                        Report(path);
                    }

                    Visit(property.Value, path);
                }
            }
            else
            {
                int k = 0;
                foreach (JsonElement item in value.EnumerateArray())
                {
                    Visit(item, $"{at}[{k++}]");
                }
            }
        }

        return errors;

        void Visit(JsonElement value, string at)
        {
            if (value.ValueKind is JsonValueKind.Object or JsonValueKind.Array)
            {
                containers.Push((value, at));
            }
            else if (value.ValueKind == JsonValueKind.String && Text(value) is null)
            {
                Report(at);
            }
        }
    }

    private static string? Text(JsonElement value)
    {
        try
        {
            return value.GetString();
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }

    private static string? Text(JsonProperty property)
    {
        try
        {
            return property.Name;
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>A key as the request spells it, escapes and all ("\\ud800"), any invalid UTF-8 as U+FFFD.</summary>
    private static string EscapedName(JsonProperty property) =>
        Encoding.UTF8.GetString(JsonMarshal.GetRawUtf8PropertyName(property));

    private static InputSpec? ReadInput(JsonElement json, List<SpecIssue> errors)
    {
        if (json.ValueKind != JsonValueKind.Object)
        {
            errors.Add(new SpecIssue(null, null, "input", $"input must be an object {{ \"channels\", \"height\", \"width\" }}, got {Describe(json)}"));
            return null;
        }

        UnknownFields(json, s_inputFields, "input", null, null, errors);
        int? channels = Int(json, "channels", "input.channels", null, null, errors, required: true);
        int? height = Int(json, "height", "input.height", null, null, errors, required: true);
        int? width = Int(json, "width", "input.width", null, null, errors, required: true);
        return channels is { } c && height is { } h && width is { } w ? new InputSpec(c, h, w) : null;
    }

    private static LayerSpec ReadLayer(JsonElement json, int index, int maxName, List<SpecIssue> errors)
    {
        string at = $"layers[{index}]";
        if (json.ValueKind != JsonValueKind.Object)
        {
            errors.Add(new SpecIssue(index, null, at, $"layer {index} must be an object such as {{ \"kind\": \"relu\" }}, got {Describe(json)}"));
            return new LayerSpec { Kind = "" };
        }

        const string Key = "Specs:MaxLayerNameLength";
        string? name = json.TryGetProperty("name", out JsonElement n) ? String(n, at + ".name", index, null, errors, maxName, Key) : null;
        string label = name ?? $"layer {index}";
        string? kind = json.TryGetProperty("kind", out JsonElement k) ? String(k, at + ".kind", index, name, errors, maxName, Key) : null;
        string[] allowed = kind is not null && LayerKinds.TryParse(kind, out LayerKind? parsed)
            ? ["kind", "name", "inputs", .. parsed.Fields]
            : ["kind", "name", "inputs", .. LayerFields.Select(f => f.Name)];
        UnknownFields(json, allowed, at, index, name, errors, kind);

        var read = new LayerJson(json, at, index, label, name, errors);
        var spec = new LayerSpec { Kind = kind!, Name = name, Inputs = Inputs(json, at, index, label, maxName, errors) };
        return LayerFields.Aggregate(spec, (layer, field) => field.Read(layer, read));
    }

    /// <summary>Every layer field besides kind, name and inputs, in the order messages list them: whether a layer gives it, and how it is read.</summary>
    internal static readonly (string Name, Func<LayerSpec, object?> Given, Func<LayerSpec, LayerJson, LayerSpec> Read)[] LayerFields =
    [
        ("filters", l => l.Filters, (l, j) => l with { Filters = j.Int("filters") }),
        ("kernel", l => l.Kernel, (l, j) => l with { Kernel = j.Pair("kernel") }),
        ("stride", l => l.Stride, (l, j) => l with { Stride = j.Pair("stride") }),
        ("padding", l => l.Padding, (l, j) => l with { Padding = j.Padding() }),
        ("dilation", l => l.Dilation, (l, j) => l with { Dilation = j.Pair("dilation") }),
        ("groups", l => l.Groups, (l, j) => l with { Groups = j.Int("groups") }),
        ("bias", l => l.Bias, (l, j) => l with { Bias = j.Bool("bias") }),
        ("biasInit", l => l.BiasInit, (l, j) => l with { BiasInit = j.Number("biasInit") }),
        ("units", l => l.Units, (l, j) => l with { Units = j.Int("units") }),
        ("p", l => l.P, (l, j) => l with { P = j.Number("p") }),
        ("slope", l => l.Slope, (l, j) => l with { Slope = j.Number("slope") }),
        ("eps", l => l.Eps, (l, j) => l with { Eps = j.Number("eps") }),
        ("momentum", l => l.Momentum, (l, j) => l with { Momentum = j.Number("momentum") }),
    ];

    /// <summary>One layer's JSON object, read field by field, each error with its path.</summary>
    internal sealed class LayerJson(JsonElement json, string at, int index, string label, string? name, List<SpecIssue> errors)
    {
        public int? Int(string property) => SpecReader.Int(json, property, $"{at}.{property}", index, label, errors, layerName: name);

        public IntPair? Pair(string property) => SpecReader.Pair(json, property, at, index, label, errors);

        public Padding? Padding() => ReadPadding(json, at, index, label, errors);

        public bool? Bool(string property) => SpecReader.Bool(json, property, at, index, label, errors);

        public double? Number(string property) => SpecReader.Number(json, property, at, index, label, errors);
    }

    private static void UnknownFields(JsonElement json, string[] allowed, string at, int? index, string? name, List<SpecIssue> errors, string? kind = null)
    {
        foreach (JsonProperty property in json.EnumerateObject())
        {
            // null means absent: .NET clients serialising a ModelSpec write every unset field as null.
            if (property.Value.ValueKind == JsonValueKind.Null || allowed.Contains(property.Name, StringComparer.Ordinal))
            {
                continue;
            }

            // A name as long as the body must not come back once per error, nor as a key.
            string unknown = Truncate(property.Name);
            string field = at.Length == 0 ? unknown : $"{at}.{unknown}";
            string owner = kind is not null && LayerKinds.TryParse(kind, out _) ? kind : at.Length == 0 ? "a model spec" : at;
            string? close = allowed.FirstOrDefault(a => string.Equals(a, property.Name, StringComparison.OrdinalIgnoreCase)
                || a.TrimEnd('s') == property.Name.TrimEnd('s'));
            string prefix = name ?? (index is { } i ? $"layer {i}" : at.Length == 0 ? "spec" : at);
            errors.Add(new SpecIssue(index, name, field,
                $"{prefix}: unknown field \"{unknown}\" for {owner}{(close is null ? "" : $"; did you mean \"{close}\"?")} (fields: {string.Join(", ", allowed)})"));
        }
    }

    private static string? String(JsonElement value, string field, int? index, string? name, List<SpecIssue> errors, int maxLength, string key)
    {
        if (value.ValueKind == JsonValueKind.String)
        {
            string text = value.GetString()!;
            if (text.Length <= maxLength)
            {
                return text;
            }

            errors.Add(new SpecIssue(index, name, field, string.Create(CultureInfo.InvariantCulture,
                $"{name ?? (index is { } at ? $"layer {at}" : "spec")}: {Leaf(field)} must be at most {maxLength} characters (configuration {key}), got {text.Length:N0}")));
            return null;
        }

        if (value.ValueKind != JsonValueKind.Null)
        {
            errors.Add(new SpecIssue(index, name, field, $"{name ?? (index is { } i ? $"layer {i}" : "spec")}: {Leaf(field)} must be a string, got {Describe(value)}"));
        }

        return null;
    }

    private static int? Int(JsonElement json, string property, string field, int? index, string? label, List<SpecIssue> errors, bool required = false, string? layerName = null)
    {
        if (!json.TryGetProperty(property, out JsonElement value) || value.ValueKind == JsonValueKind.Null)
        {
            if (required)
            {
                errors.Add(new SpecIssue(index, layerName, field, $"{field} is required: an integer"));
            }

            return null;
        }

        if (value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out int result))
        {
            return result;
        }

        errors.Add(new SpecIssue(index, layerName, field, $"{label ?? field}: {Leaf(field)} must be an integer, got {Describe(value)}"));
        return null;
    }

    private static IntPair? Pair(JsonElement json, string property, string at, int index, string label, List<SpecIssue> errors)
    {
        if (!json.TryGetProperty(property, out JsonElement value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (TryPair(value, out IntPair pair))
        {
            return pair;
        }

        errors.Add(new SpecIssue(index, GivenName(label, index), $"{at}.{property}", $"{label}: {property} must be an integer or [height, width], got {Describe(value)}"));
        return null;
    }

    private static Padding? ReadPadding(JsonElement json, string at, int index, string label, List<SpecIssue> errors)
    {
        if (!json.TryGetProperty("padding", out JsonElement value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind == JsonValueKind.String && value.ValueEquals("same"))
        {
            return Padding.SameAsInput;
        }

        if (TryPair(value, out IntPair pair))
        {
            return pair;
        }

        errors.Add(new SpecIssue(index, GivenName(label, index), $"{at}.padding", $"{label}: padding must be an integer, [height, width] or \"same\", got {Describe(value)}"));
        return null;
    }

    private static bool TryPair(JsonElement value, out IntPair pair)
    {
        pair = default;
        if (value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out int both))
        {
            pair = both;
            return true;
        }

        if (value.ValueKind == JsonValueKind.Array && value.GetArrayLength() == 2
            && value[0].ValueKind == JsonValueKind.Number && value[0].TryGetInt32(out int height)
            && value[1].ValueKind == JsonValueKind.Number && value[1].TryGetInt32(out int width))
        {
            pair = new IntPair(height, width);
            return true;
        }

        return false;
    }

    /// <summary>inputs: an array of layer names; one name alone is taken as an array of one.</summary>
    private static IReadOnlyList<string>? Inputs(JsonElement json, string at, int index, string label, int maxName, List<SpecIssue> errors)
    {
        if (!json.TryGetProperty("inputs", out JsonElement value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        JsonElement[] names = value.ValueKind == JsonValueKind.Array ? [.. value.EnumerateArray()] : [value];
        if (names.All(v => v.ValueKind == JsonValueKind.String))
        {
            if (names.FirstOrDefault(v => v.GetString()!.Length > maxName) is { ValueKind: JsonValueKind.String } tooLong)
            {
                errors.Add(new SpecIssue(index, GivenName(label, index), $"{at}.inputs", string.Create(CultureInfo.InvariantCulture,
                    $"{label}: inputs names a layer by {tooLong.GetString()!.Length:N0} characters; names are at most {maxName} (configuration Specs:MaxLayerNameLength)")));
                return null;
            }

            return [.. names.Select(v => v.GetString()!)];
        }

        errors.Add(new SpecIssue(index, GivenName(label, index), $"{at}.inputs", $"{label}: inputs must be an array of earlier layers' names (or \"input\"), got {Describe(value)}"));
        return null;
    }

    private static bool? Bool(JsonElement json, string property, string at, int index, string label, List<SpecIssue> errors)
    {
        if (!json.TryGetProperty(property, out JsonElement value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind is JsonValueKind.True or JsonValueKind.False)
        {
            return value.GetBoolean();
        }

        errors.Add(new SpecIssue(index, GivenName(label, index), $"{at}.{property}", $"{label}: {property} must be true or false, got {Describe(value)}"));
        return null;
    }

    private static double? Number(JsonElement json, string property, string at, int index, string label, List<SpecIssue> errors)
    {
        if (!json.TryGetProperty(property, out JsonElement value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind == JsonValueKind.Number)
        {
            return value.GetDouble();
        }

        errors.Add(new SpecIssue(index, GivenName(label, index), $"{at}.{property}", $"{label}: {property} must be a number, got {Describe(value)}"));
        return null;
    }

    /// <summary>The label is the given name, or "layer i" when the layer has none (its automatic name comes later).</summary>
    private static string? GivenName(string label, int index) => label == $"layer {index}" ? null : label;

    private static string ReplacePrefix(string message, string prefix, string replacement) =>
        message.StartsWith(prefix, StringComparison.Ordinal) ? replacement + message[prefix.Length..] : message;

    private static string Leaf(string field) => field[(field.LastIndexOf('.') + 1)..];

    private static string Describe(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => Text(value) is { } text ? $"the string \"{Truncate(text)}\"" : "a string that is not valid Unicode",
        JsonValueKind.Number => $"the number {value.GetRawText()}",
        JsonValueKind.True or JsonValueKind.False => $"{value.GetRawText()}",
        JsonValueKind.Array => $"an array of {value.GetArrayLength().ToString(CultureInfo.InvariantCulture)}",
        JsonValueKind.Object => "an object",
        _ => "null",
    };

    private static string Truncate(string s) => s.Length <= 40 ? s : s[..40] + "…";
}
