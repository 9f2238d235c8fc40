using System.Globalization;
using System.Text;
using TrainingService.Contracts.Specs;
using TrainingService.Training.Specs;

namespace TrainingService.Training.Tests.Specs;

/// <summary>Specs for the fuzz suite, each drawn from one <see cref="Random"/> so a case is its seed.</summary>
internal static class HostileSpecs
{
    private static readonly string[] s_kinds = [.. LayerKinds.Names, "Conv2d", "conv", "", "linear ", "ｌｉｎｅａｒ", "\\ud800"];

    private static readonly string[] s_inputFields = ["channels", "height", "width"];

    private static readonly string[] s_fields =
        ["filters", "kernel", "stride", "padding", "dilation", "groups", "bias", "biasInit", "units", "p", "slope", "eps", "momentum"];

    // Out-of-range numbers, wrong types, and text no reader expects.
    private static readonly string[] s_hostileValues =
    [
        "0", "-1", "-0", "-0.0", "2147483647", "2147483648", "-2147483648", "-2147483649", "4294967296", "9223372036854775807",
        "1e308", "-1e308", "1e400", "-1e400", "1.5", "1e-320", "1048576", "1073741824", "\"NaN\"", "\"Infinity\"", "\"3\"",
        "\"same\"", "\"\"", "true", "false", "null", "[]", "[1]", "[1,2,3]", "[1,\"2\"]", "[2147483648,1]", "[0,-1]",
        "[1e308,1e308]", "{}", "{\"a\":1}", "\"\\ud800\"", "\"\\u0000\"", "\"é🙂\\u202e\"", "[null,null]",
    ];

    private static readonly string[] s_names =
        ["input", "a", "b", "conv1", "relu1", "x_1", "Ω", "a b", "\\ud800x", "_", "linear1", "flatten1", "add1"];

    /// <summary>A small spec that is always valid: a stack with residual adds and inception-style concats.</summary>
    public static ModelSpec Valid(Random random)
    {
        int channels = random.Next(1, 4), height = random.Next(6, 13), width = random.Next(6, 13);
        var input = new InputSpec(channels, height, width);
        var layers = new List<LayerSpec>();
        string Name() => $"l{layers.Count}";
        void Add(LayerSpec layer) => layers.Add(layer with { Name = Name() });
        string Last() => layers.Count == 0 ? SpecAnalyzer.ModelInputName : layers[^1].Name!;

        for (int block = random.Next(1, 5); block > 0; block--)
        {
            switch (random.Next(8))
            {
                case 0 or 1:
                    int[] divisors = [.. Enumerable.Range(1, 3).Where(g => channels % g == 0)];
                    int groups = divisors[random.Next(divisors.Length)];
                    int filters = groups * random.Next(1, 4), kernel = random.Next(1, 4), stride = random.Next(1, 3);
                    int dilation = random.Next(1, 3), padding = random.Next(0, 2);
                    bool same = stride == 1 && random.Next(3) == 0;
                    int h = Side(height, kernel, stride, padding, dilation, same), w = Side(width, kernel, stride, padding, dilation, same);
                    if (h < 1 || w < 1)
                    {
                        continue;
                    }

                    Add(new LayerSpec
                    {
                        Kind = "conv2d", Filters = filters, Kernel = kernel, Stride = stride, Dilation = dilation, Groups = groups,
                        Padding = same ? Padding.SameAsInput : padding, Bias = random.Next(4) != 0,
                    });
                    (channels, height, width) = (filters, h, w);
                    break;
                case 2:
                    Add(random.Next(4) switch
                    {
                        0 => new LayerSpec { Kind = "relu" },
                        1 => new LayerSpec { Kind = "leakyrelu", Slope = random.NextDouble() },
                        2 => new LayerSpec { Kind = "sigmoid" },
                        _ => new LayerSpec { Kind = "tanh" },
                    });
                    break;
                case 3:
                    Add(random.Next(2) == 0
                        ? new LayerSpec { Kind = "batchnorm2d", Eps = 1e-5 * random.Next(1, 100), Momentum = random.NextDouble() }
                        : new LayerSpec { Kind = "dropout", P = random.NextDouble() * 0.9 });
                    break;
                case 4 when height >= 2 && width >= 2:
                    int window = 2, pad = random.Next(0, 2);
                    Add(new LayerSpec { Kind = random.Next(2) == 0 ? "maxpool2d" : "avgpool2d", Kernel = window, Padding = pad });
                    (height, width) = (Side(height, window, window, pad, 1, false), Side(width, window, window, pad, 1, false));
                    break;
                case 5:
                    string from = Last();
                    Add(new LayerSpec { Kind = "conv2d", Inputs = [from], Filters = channels, Kernel = 3, Padding = Padding.SameAsInput });
                    Add(new LayerSpec { Kind = "add", Inputs = [from, layers[^1].Name!] });
                    break;
                case 6:
                    string source = Last();
                    int a = random.Next(1, 4), b = random.Next(1, 4);
                    Add(new LayerSpec { Kind = "conv2d", Inputs = [source], Filters = a, Kernel = 1 });
                    Add(new LayerSpec { Kind = "conv2d", Inputs = [source], Filters = b, Kernel = 3, Padding = Padding.SameAsInput });
                    Add(new LayerSpec { Kind = "concat", Inputs = [layers[^2].Name!, layers[^1].Name!] });
                    channels = a + b;
                    break;
            }
        }

        Add(new LayerSpec { Kind = random.Next(2) == 0 ? "flatten" : "globalavgpool" });
        if (random.Next(2) == 0)
        {
            Add(new LayerSpec { Kind = "linear", Units = random.Next(2, 9), Bias = random.Next(3) != 0 });
            Add(new LayerSpec { Kind = "relu" });
        }

        Add(new LayerSpec { Kind = "linear", Units = random.Next(2, 6) });
        return new ModelSpec { Name = $"fuzz {random.Next()}", Input = input, Layers = layers };
    }

    /// <summary>Random JSON text shaped more or less like a spec: every kind, graphs, and hostile values anywhere.</summary>
    public static byte[] Hostile(Random random, int flavour)
    {
        var json = new StringBuilder();
        if (flavour == 3 && random.Next(3) == 0)
        {
            // Not a spec at all, or a structure too deep or too long for one.
            json.Append(random.Next(5) switch
            {
                0 => Pick(random, s_hostileValues),
                1 => new string('[', random.Next(1, 200)) + new string(']', random.Next(1, 200)),
                2 => $$"""{ "layers": {{Nested(random, random.Next(1, 70))}} }""",
                3 => $$"""{ "input": {"channels": 1, "height": 4, "width": 4}, "layers": [{{string.Join(",", Enumerable.Repeat("""{"kind":"relu"}""", random.Next(400, 3000)))}}] }""",
                _ => $$"""{ "name": "{{new string('n', random.Next(100, 200_000))}}", "{{new string('k', random.Next(30, 100_000))}}": 1 }""",
            });
            return Encoding.UTF8.GetBytes(json.ToString());
        }

        var members = new List<string>();
        if (random.Next(10) != 0)
        {
            members.Add($"\"input\": {Input(random)}");
        }

        if (random.Next(3) == 0)
        {
            members.Add($"\"name\": {(random.Next(2) == 0 ? Pick(random, s_hostileValues) : Quote(LongName(random)))}");
        }

        if (random.Next(6) == 0)
        {
            members.Add($"{Quote(UnknownName(random))}: {Value(random, "units", flavour)}");
        }

        if (random.Next(12) != 0)
        {
            int count = random.Next(12) == 0 ? random.Next(480, 620) : random.Next(0, 14);
            var names = new List<string>();
            var layers = Enumerable.Range(0, count).Select(i => Layer(random, flavour, i, names));
            members.Add(random.Next(20) == 0 ? $"\"layers\": {Pick(random, s_hostileValues)}" : $"\"layers\": [{string.Join(", ", layers)}]");
        }

        json.Append('{').AppendJoin(", ", members.OrderBy(_ => random.Next())).Append('}');
        return Encoding.UTF8.GetBytes(json.ToString());
    }

    /// <summary>Well-typed specs whose numbers make astronomically large shapes, counts and activations.</summary>
    public static string Huge(Random random)
    {
        int[] big = [1, 2, 3, 1 << 10, 1 << 20, 1 << 21, 1 << 28, int.MaxValue];
        int Big() => big[random.Next(big.Length)];
        int Side() => random.Next(3) == 0 ? 1024 : random.Next(1, 1025);
        var layers = new List<string>();
        for (int i = random.Next(1, 9); i > 0; i--)
        {
            string name = $"h{layers.Count}";
            layers.Add(random.Next(6) switch
            {
                0 or 1 => $$"""{ "kind": "conv2d", "name": "{{name}}", "filters": {{Big()}}, "kernel": {{random.Next(1, 1025)}}, "padding": {{random.Next(0, 1025)}}, "stride": {{(random.Next(2) == 0 ? 1 : Side())}}, "dilation": {{(random.Next(2) == 0 ? 1 : Side())}}, "groups": {{(random.Next(3) == 0 ? Big() : 1)}} }""",
                2 => $$"""{ "kind": "conv2d", "name": "{{name}}", "filters": {{Big()}}, "kernel": 1, "padding": {{random.Next(0, 1025)}} }""",
                3 => layers.Count > 0
                    ? $$"""{ "kind": "concat", "name": "{{name}}", "inputs": [{{string.Join(", ", Enumerable.Range(0, random.Next(2, 65)).Select(_ => $"\"h{random.Next(layers.Count)}\""))}}] }"""
                    : $$"""{ "kind": "maxpool2d", "name": "{{name}}", "kernel": {{Side()}}, "stride": 1 }""",
                4 => $$"""{ "kind": "linear", "name": "{{name}}", "units": {{Big()}} }""",
                _ => $$"""{ "kind": "{{Pick(random, ["flatten", "batchnorm2d", "relu", "globalavgpool"])}}", "name": "{{name}}" }""",
            });
        }

        layers.Add($$"""{ "kind": "flatten" }""");
        layers.Add($$"""{ "kind": "linear", "units": {{Big()}} }""");
        return $$"""{ "input": { "channels": {{random.Next(1, 65)}}, "height": {{Side()}}, "width": {{Side()}} }, "layers": [{{string.Join(", ", layers)}}] }""";
    }

    /// <summary>The JSON text with bits flipped, bytes inserted, overwritten or dropped, numbers replaced, or cut short.</summary>
    public static byte[] Mutate(Random random, byte[] bytes, int mutations)
    {
        List<byte> text = [.. bytes];
        for (int m = 0; m < mutations && text.Count > 0; m++)
        {
            int at = random.Next(text.Count);
            switch (random.Next(8))
            {
                case 0:
                    text[at] ^= (byte)(1 << random.Next(8));
                    break;
                case 1:
                    text.RemoveRange(at, text.Count - at);
                    break;
                case 2:
                    byte[] inserted = random.Next(2) == 0
                        ? Encoding.UTF8.GetBytes(Pick(random, ["{", "}", "[", "]", ",", "\"", ":", "9", "-", "e", "\\", "null", "\\ud800", "é"]))
                        : [.. Enumerable.Range(0, random.Next(1, 16)).Select(_ => (byte)random.Next(256))];
                    text.InsertRange(at, inserted);
                    break;
                case 3:
                    text.RemoveRange(at, Math.Min(random.Next(1, 8), text.Count - at));
                    break;
                case 4 or 6 or 7:
                    // A number replaced by a hostile value keeps the text JSON, so the reader sees more than parse errors.
                    int start = text.FindIndex(at, b => b is >= (byte)'0' and <= (byte)'9');
                    if (start >= 0)
                    {
                        int end = text.FindIndex(start, b => b is not (>= (byte)'0' and <= (byte)'9'));
                        end = end < 0 ? text.Count : end;
                        text.RemoveRange(start, end - start);
                        text.InsertRange(start, Encoding.UTF8.GetBytes(Pick(random, s_hostileValues)));
                    }

                    break;
                default:
                    text[at] = (byte)random.Next(256);
                    break;
            }
        }

        return [.. text];
    }

    private static int Side(int size, int kernel, int stride, int padding, int dilation, bool same) =>
        same ? size : ((size + (2 * padding) - (dilation * (kernel - 1)) - 1) / stride) + 1;

    private static string Input(Random random)
    {
        if (random.Next(15) == 0)
        {
            return Pick(random, s_hostileValues);
        }

        var members = new List<string>();
        foreach (string field in s_inputFields)
        {
            if (random.Next(12) != 0)
            {
                members.Add($"\"{field}\": {(random.Next(5) == 0 ? Pick(random, s_hostileValues) : random.Next(1, 40).ToString(CultureInfo.InvariantCulture))}");
            }
        }

        if (random.Next(10) == 0)
        {
            members.Add($"{Quote(UnknownName(random))}: 1");
        }

        return $"{{{string.Join(", ", members)}}}";
    }

    private static string Layer(Random random, int flavour, int index, List<string> names)
    {
        if (random.Next(25) == 0)
        {
            return Pick(random, s_hostileValues);
        }

        var members = new List<string>();
        string kind = Pick(random, s_kinds);
        if (random.Next(12) != 0)
        {
            members.Add($"\"kind\": {(random.Next(15) == 0 ? Pick(random, s_hostileValues) : Quote(kind))}");
        }

        if (random.Next(2) == 0)
        {
            string name = random.Next(3) switch
            {
                0 when names.Count > 0 => names[random.Next(names.Count)],
                1 => Pick(random, s_names),
                _ => random.Next(10) == 0 ? LongName(random) : $"n{index}",
            };
            names.Add(name);
            members.Add($"\"name\": {(random.Next(15) == 0 ? Pick(random, s_hostileValues) : Quote(name))}");
        }

        if (random.Next(flavour == 1 ? 2 : 5) == 0)
        {
            string Reference() => names.Count > 0 && random.Next(4) != 0 ? names[random.Next(names.Count)] : Pick(random, s_names);
            members.Add(random.Next(10) == 0
                ? $"\"inputs\": {Pick(random, s_hostileValues)}"
                : $"\"inputs\": [{string.Join(", ", Enumerable.Range(0, random.Next(0, random.Next(8) == 0 ? 80 : 4)).Select(_ => Quote(Reference())))}]");
        }

        foreach (string field in s_fields)
        {
            if (random.Next(flavour == 2 ? 2 : 5) == 0)
            {
                members.Add($"\"{field}\": {Value(random, field, flavour)}");
            }
        }

        if (random.Next(10) == 0)
        {
            members.Add($"{Quote(UnknownName(random))}: {Pick(random, s_hostileValues)}");
        }

        return $"{{{string.Join(", ", members.OrderBy(_ => random.Next()))}}}";
    }

    private static string Value(Random random, string field, int flavour)
    {
        if (random.Next(flavour == 2 ? 2 : 4) == 0)
        {
            return random.Next(20) == 0 ? Nested(random, random.Next(1, 60)) : Pick(random, s_hostileValues);
        }

        return field switch
        {
            "bias" => random.Next(2) == 0 ? "true" : "false",
            "p" or "slope" or "momentum" => (random.NextDouble() * 1.2).ToString("R", CultureInfo.InvariantCulture),
            "eps" or "biasInit" => (random.NextDouble() - 0.1).ToString("R", CultureInfo.InvariantCulture),
            "padding" when random.Next(4) == 0 => "\"same\"",
            "kernel" or "stride" or "padding" or "dilation" when random.Next(3) == 0 => $"[{random.Next(0, 5)}, {random.Next(0, 5)}]",
            _ => random.Next(0, 9).ToString(CultureInfo.InvariantCulture),
        };
    }

    private static string Nested(Random random, int depth) => random.Next(2) == 0
        ? new string('[', depth) + "1" + new string(']', depth)
        : string.Concat(Enumerable.Repeat("{\"a\":", depth)) + "1" + new string('}', depth);

    private static string LongName(Random random) => random.Next(3) switch
    {
        0 => new string('x', random.Next(65, 100_000)),
        1 => string.Concat(Enumerable.Repeat("🙂", random.Next(10, 5000))),
        _ => new string('y', 64),
    };

    private static string UnknownName(Random random) => random.Next(5) switch
    {
        0 => "Filters",
        1 => "unit",
        2 => new string('z', random.Next(41, 50_000)),
        3 => "\\ud800",
        _ => "é\\u0000",
    };

    // Names here are either plain or already JSON-escaped (\\ud800), so only quotes and control characters are escaped.
    private static string Quote(string text) => $"\"{text.Replace("\"", "\\\"", StringComparison.Ordinal)}\"";

    private static string Pick(Random random, string[] from) => from[random.Next(from.Length)];
}
