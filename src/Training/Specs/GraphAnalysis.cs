using TrainingService.Contracts.Specs;
using TrainingService.Training.Specs.Kinds;

namespace TrainingService.Training.Specs;

/// <summary>One run of <see cref="SpecAnalyzer"/>: the layers in order, each on the outputs of the layers it takes.</summary>
internal sealed class GraphAnalysis(ModelSpec spec, SpecLimits limits)
{
    private const int BytesPerFloat = 4;

    private readonly List<SpecIssue> _errors = [];
    private readonly List<SpecIssue> _warnings = [];

    // Windows that leave input rows or columns unread, kept until the graph is known: another layer taking the
    // same input may read them (a ResNet's 1×1 stride-2 shortcut beside its 3×3 convolution), and then none is lost.
    private readonly List<(SpecIssue Issue, int Layer, int Input, bool Height, bool Width)> _unreadEdges = [];
    private readonly List<LayerReport> _reports = [];
    private readonly List<LayerPlan> _plan = [];
    private OutputNode[] _outputs = [];
    private OutputNode _modelInput = new(null, (1, 1), (1, 1), true);
    private string[] _names = [];

    public SpecAnalysis Run()
    {
        CheckInput();
        IReadOnlyList<LayerSpec> layers = spec.Layers ?? [];
        if (layers.Count == 0)
        {
            Error(null, null, "layers", "the model has no layers; it needs at least one, ending in a linear layer with one unit per class");
        }
        else if (layers.Count > limits.MaxLayers)
        {
            Error(null, null, "layers", $"the model has {layers.Count} layers, over the cap of {limits.MaxLayers}");
            layers = [];
        }

        _names = LayerNaming.Assign(layers, _errors.Add);
        _outputs = new OutputNode[layers.Count];
        for (int i = 0; i < layers.Count; i++)
        {
            _outputs[i] = AnalyzeLayer(i, _names[i], layers[i]);
        }

        CheckClassifierEnd(layers);
        WarnUnreadEdges();
        WarnUnusedOutputs(layers);
        long totalParameters = Total(_reports.Select(r => r.Parameters));
        if (totalParameters > limits.MaxParameters)
        {
            string count = totalParameters == long.MaxValue ? "more parameters than 64 bits can count" : $"{SpecText.Count(totalParameters)} parameters";
            Error(null, null, "layers", $"the model has {count}, over the cap of {SpecText.Count(limits.MaxParameters)}");
        }

        bool valid = _errors.Count == 0;
        var result = new ModelValidationResult
        {
            Valid = valid,
            OutputShape = valid ? _plan[^1].OutputShape : null,
            TotalParameters = totalParameters,
            TotalMultiplyAdds = Total(_reports.Select(r => r.MultiplyAdds)),
            TotalActivationBytes = Total(_reports.Select(r => r.ActivationBytes)),
            Layers = _reports,
            Warnings = _warnings,
            Errors = _errors,
        };
        return new SpecAnalysis(result, valid ? _plan : []) { Spec = spec };
    }

    /// <summary>A sum that stops at long.MaxValue: each layer's count fits in 64 bits, their sum need not, and it only meets a cap.</summary>
    private static long Total(IEnumerable<long> counts) =>
        counts.Aggregate(0L, (sum, count) => count > long.MaxValue - sum ? long.MaxValue : sum + count);

    public string InputName(int index) => index == LayerPlan.ModelInput ? SpecAnalyzer.ModelInputName : _names[index];

    public void AddUnreadEdge(SpecIssue issue, int layer, int input, bool height, bool width) =>
        _unreadEdges.Add((issue, layer, input, height, width));

    /// <summary>Records the layer with its output shape, or reports an output too large and returns null.</summary>
    public int[]? Accept(LayerAnalysis layer, long[] shape, long parameters, long multiplyAdds)
    {
        long elements = shape.Aggregate(1L, (a, b) => a * b);
        long total = _reports.Sum(r => r.ActivationBytes) + (elements * BytesPerFloat);
        if (elements > int.MaxValue)
        {
            layer.Error("kind", $"its output {string.Join("×", shape)} = {SpecText.Count(elements)} values per sample is more than one layer may have ({SpecText.Count(int.MaxValue)})");
            return null;
        }

        if (total > limits.MaxActivationBytes)
        {
            layer.Error("kind", $"its output {string.Join("×", shape)} takes the layer outputs of one sample to {SpecText.Count(total)} bytes, over the cap of {SpecText.Count(limits.MaxActivationBytes)}");
            return null;
        }

        int[] output = [.. shape.Select(d => (int)d)];
        bool spatial = output.Length == 3 && layer.SpatialTracking;
        LayerPlan plan = layer.Plan;
        _plan.Add(plan with { InputShape = layer.Input, OutputShape = output, Parameters = parameters });
        _reports.Add(new LayerReport(
            plan.Index,
            plan.Name,
            plan.Kind.Name,
            output,
            parameters,
            multiplyAdds,
            spatial ? [layer.Rf.H, layer.Rf.W] : null,
            spatial ? [layer.Jump.H, layer.Jump.W] : null,
            elements * BytesPerFloat)
        {
            Inputs = [.. plan.Inputs.Select(InputName)],
        });
        return output;
    }

    private void CheckInput()
    {
        if (spec.Input is not { } input)
        {
            Error(null, null, "input", "the model needs an input: { \"channels\", \"height\", \"width\" } of one image");
            return;
        }

        bool ok = CheckRange("input.channels", "input channels", input.Channels, 1, limits.MaxInputChannels)
            & CheckRange("input.height", "input height", input.Height, 1, limits.MaxInputSide)
            & CheckRange("input.width", "input width", input.Width, 1, limits.MaxInputSide);
        if (ok)
        {
            _modelInput = _modelInput with { Shape = [input.Channels, input.Height, input.Width] };
        }
    }

    private bool CheckRange(string field, string what, int value, int min, int max)
    {
        if (value < min)
        {
            Error(null, null, field, $"{what} must be at least {min}, got {value}");
            return false;
        }

        if (value > max)
        {
            Error(null, null, field, $"{what} is {value}, over the cap of {max}");
            return false;
        }

        return true;
    }

    private OutputNode AnalyzeLayer(int i, string name, LayerSpec layer)
    {
        var unknown = new OutputNode(null, (1, 1), (1, 1), true);
        if (!LayerKinds.TryParse(layer.Kind ?? "", out LayerKind? kind))
        {
            Error(i, name, $"layers[{i}].kind", layer.Kind is null
                ? $"layer {i}: kind is missing; expected one of {string.Join(", ", LayerKinds.Names)}"
                : $"{name}: unknown kind \"{layer.Kind}\"; expected one of {string.Join(", ", LayerKinds.Names)}");
            return unknown;
        }

        var check = new LayerCheck(_errors.Add, limits, i, name);
        int[]? inputs = ResolveInputs(kind, layer, check, i);
        CheckFieldsApply(kind, layer, check);
        LayerPlan plan = kind.Resolve(new LayerPlan(i, name, kind, [], []), layer, check);
        OutputNode[]? nodes = inputs?.Select(j => j == LayerPlan.ModelInput ? _modelInput : _outputs[j]).ToArray();
        if (check.Count > 0 || nodes is null || nodes.Any(n => n.Shape is null))
        {
            return unknown;
        }

        var analysis = new LayerAnalysis(this, plan with { Inputs = inputs! }, nodes, check);
        kind.Infer(analysis);
        return analysis.Node;
    }

    /// <summary>The indices of the layers a layer takes (<see cref="LayerPlan.ModelInput"/> for the image), or null with errors.</summary>
    private int[]? ResolveInputs(LayerKind kind, LayerSpec layer, LayerCheck check, int index)
    {
        string what = kind.Name;
        bool merge = kind.IsMerge;
        string? verb = kind.MergeVerb;
        if (layer.Inputs is not { } given)
        {
            if (merge)
            {
                check.Error("inputs", $"{what} needs inputs: the names of the two or more earlier layers to {verb}");
                return null;
            }

            return [index == 0 ? LayerPlan.ModelInput : index - 1];
        }

        if (given.Count > limits.MaxInputs)
        {
            check.Error("inputs", $"inputs names {given.Count} layers, over the cap of {limits.MaxInputs}");
            return null;
        }

        var resolved = new List<int>(given.Count);
        int before = check.Count;
        for (int k = 0; k < given.Count; k++)
        {
            string inputName = given[k];
            int found = inputName == SpecAnalyzer.ModelInputName ? LayerPlan.ModelInput : Array.IndexOf(_names, inputName);
            if (found == LayerPlan.ModelInput && inputName == SpecAnalyzer.ModelInputName)
            {
                resolved.Add(found);
            }
            else if (found < 0)
            {
                check.Error($"inputs[{k}]", $"inputs names \"{inputName}\", which is no layer of this model (\"{SpecAnalyzer.ModelInputName}\" is the model's input)");
            }
            else if (found == index)
            {
                check.Error($"inputs[{k}]", $"inputs names the layer itself: a layer cannot take its own output (that would be a cycle)");
            }
            else if (found > index)
            {
                check.Error($"inputs[{k}]", $"inputs names {inputName} (layer {found}), which comes after it: a layer takes only earlier layers' outputs, so the graph has no cycles; move {inputName} before it");
            }
            else
            {
                resolved.Add(found);
            }
        }

        if (given.Count == 0)
        {
            check.Error("inputs", merge
                ? $"inputs is empty; {what} needs two or more earlier layers to {verb}"
                : "inputs is empty; leave it out to take the previous layer's output");
        }
        else if (merge && given.Count < 2)
        {
            check.Error("inputs", $"{what} needs two or more inputs to {verb}, got 1");
        }
        else if (!merge && given.Count > 1)
        {
            check.Error("inputs", $"{what} takes one input, got {given.Count}; only add and concat merge several");
        }

        return check.Count == before ? [.. resolved] : null;
    }

    private static void CheckFieldsApply(LayerKind kind, LayerSpec layer, LayerCheck check)
    {
        IReadOnlyList<string> allowed = kind.Fields;
        foreach ((string field, Func<LayerSpec, object?> given, _) in SpecReader.LayerFields)
        {
            if (given(layer) is not null && !allowed.Contains(field))
            {
                check.Error(field, allowed.Count == 0
                    ? $"{field} does not apply to {kind.Name}, which takes no settings"
                    : $"{field} does not apply to {kind.Name}; it takes {string.Join(", ", allowed)}");
            }
        }
    }

    private void CheckClassifierEnd(IReadOnlyList<LayerSpec> layers)
    {
        if (layers.Count == 0)
        {
            return;
        }

        int last = layers.Count - 1;
        LayerSpec layer = layers[last];
        if (!LayerKinds.TryParse(layer.Kind ?? "", out LayerKind? kind))
        {
            return;
        }

        if (kind is not LinearKind)
        {
            Error(last, _names[last], $"layers[{last}].kind", $"{_names[last]}: the last layer must be linear, with one unit per class (its scores go to softmax and cross-entropy), but it is {layer.Kind}");
        }
        else if (layer.Units is 1)
        {
            Error(last, _names[last], $"layers[{last}].units", $"{_names[last]}: a classifier needs at least 2 classes, so the last linear layer needs units ≥ 2, got 1");
        }
    }

    /// <summary>
    /// Warns of a window's unread rows or columns unless another layer taking the same input reads them; a layer that
    /// is not a window (ReLU, add, flatten, …) reads every value.
    /// </summary>
    private void WarnUnreadEdges()
    {
        bool complete = _errors.Count == 0 && _plan.Count == _outputs.Length;
        foreach ((SpecIssue issue, int layer, int input, bool height, bool width) in _unreadEdges)
        {
            bool ReadByAnother(bool heightSide) => complete && _plan.Any(other => other.Index != layer && other.Inputs.Contains(input)
                && !_unreadEdges.Any(e => e.Layer == other.Index && (heightSide ? e.Height : e.Width)));
            if ((height && !ReadByAnother(true)) || (width && !ReadByAnother(false)))
            {
                _warnings.Add(issue);
            }
        }

        List<SpecIssue> inLayerOrder = [.. _warnings.OrderBy(w => w.LayerIndex ?? -1)]; // stable: a layer's own warnings keep their order
        _warnings.Clear();
        _warnings.AddRange(inLayerOrder);
    }

    /// <summary>A layer whose output no later layer takes is computed for nothing: almost always a wrong name in an inputs list.</summary>
    private void WarnUnusedOutputs(IReadOnlyList<LayerSpec> layers)
    {
        if (_errors.Count > 0 || _plan.Count != layers.Count)
        {
            return;
        }

        var used = new HashSet<int>(_plan.SelectMany(p => p.Inputs));
        foreach (LayerPlan plan in _plan.Take(_plan.Count - 1).Where(p => !used.Contains(p.Index)))
        {
            _warnings.Add(new SpecIssue(plan.Index, plan.Name, $"layers[{plan.Index}]",
                $"{plan.Name}: no layer takes its output, so it does not change the model's scores; did a later layer mean to name it in its inputs?"));
        }
    }

    private void Error(int? index, string? name, string field, string message) => _errors.Add(new SpecIssue(index, name, field, message));
}
