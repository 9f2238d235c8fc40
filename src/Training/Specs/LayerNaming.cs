using System.Globalization;
using System.Text.RegularExpressions;
using TrainingService.Contracts.Specs;

namespace TrainingService.Training.Specs;

/// <summary>Each layer's name: the given one, checked, or its kind's prefix and the next free number (conv1, relu1, …).</summary>
internal static partial class LayerNaming
{
    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
    private static partial Regex LayerNamePattern();

    public static string[] Assign(IReadOnlyList<LayerSpec> layers, Action<SpecIssue> report)
    {
        var names = new string[layers.Count];
        var taken = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < layers.Count; i++)
        {
            if (layers[i].Name is not { } name)
            {
                continue;
            }

            names[i] = name;
            string field = $"layers[{i}].name";
            if (name == SpecAnalyzer.ModelInputName)
            {
                report(new SpecIssue(i, name, field, $"layer {i}: the name \"{SpecAnalyzer.ModelInputName}\" is kept for the model's input (layers name it in their inputs); choose another"));
            }
            else if (!LayerNamePattern().IsMatch(name))
            {
                report(new SpecIssue(i, name, field, $"layer {i}: name \"{name}\" must start with a letter or _ and hold only letters, digits and _ (at most 64)"));
            }
            else if (!taken.TryAdd(name, i))
            {
                report(new SpecIssue(i, name, field, $"{name}: duplicate name; layer {taken[name]} is already called \"{name}\""));
            }
        }

        var counters = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < layers.Count; i++)
        {
            if (names[i] is not null)
            {
                continue;
            }

            string prefix = LayerKinds.TryParse(layers[i].Kind ?? "", out LayerKind? kind) ? kind.AutoNamePrefix : "layer";
            int n = counters.GetValueOrDefault(prefix);
            string candidate;
            do
            {
                n++;
                candidate = prefix + n.ToString(CultureInfo.InvariantCulture);
            }
            while (taken.ContainsKey(candidate));

            counters[prefix] = n;
            taken[candidate] = i;
            names[i] = candidate;
        }

        return names;
    }
}
