using System.Globalization;
using System.Text.RegularExpressions;
using TrainingService.Contracts.Specs;

namespace TrainingService.Training.Specs;

/// <summary>
/// Validates a model spec and infers, without torch, each layer's output shape, parameters, multiply-adds,
/// receptive field and jump, with PyTorch's formulas: out = ⌊(W + 2P − D·(F − 1) − 1)/S⌋ + 1.
/// A layer takes the previous layer's output or the earlier layers it names, so the spec is a graph in evaluation
/// order; at a merge (add, concat) the receptive field is the largest over its inputs' paths.
/// </summary>
public static partial class SpecAnalyzer
{
    private const int BytesPerFloat = 4;

    public static SpecAnalysis Analyze(ModelSpec spec, SpecLimits? limits = null) =>
        new Analysis(spec, limits ?? SpecLimits.Default).Run();

    /// <summary>Each layer's name: the given one, or its kind's prefix and the next free number (conv1, relu1, …).</summary>
    public static string[] LayerNames(IReadOnlyList<LayerSpec> layers) => new Analysis(new ModelSpec { Layers = layers }, SpecLimits.Default).AssignNames(layers);

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
    private static partial Regex LayerNamePattern();

    /// <summary>The name by which a layer's inputs refer to the model's input image.</summary>
    public const string ModelInputName = "input";

    /// <summary>What is known of one layer's output: its shape (null when it cannot be known) and receptive field.</summary>
    private sealed record Node(int[]? Shape, (int H, int W) Rf, (int H, int W) Jump, bool SpatialTracking);

    private sealed class Analysis(ModelSpec spec, SpecLimits limits)
    {
        private readonly List<SpecIssue> _errors = [];
        private readonly List<SpecIssue> _warnings = [];

        // Windows that leave input rows or columns unread, kept until the graph is known: another layer taking the
        // same input may read them (a ResNet's 1×1 stride-2 shortcut beside its 3×3 convolution), and then none is lost.
        private readonly List<(SpecIssue Issue, int Layer, int Input, bool Height, bool Width)> _unreadEdges = [];
        private readonly List<LayerReport> _reports = [];
        private readonly List<LayerPlan> _plan = [];
        private Node[] _outputs = [];
        private Node _modelInput = new(null, (1, 1), (1, 1), true);
        private string[] _names = [];

        // The layer being analysed: its (first) input, then its output. _shape is null once it cannot be known.
        private int[]? _shape;
        private int[][] _mergeInputs = [];
        private (int H, int W) _rf = (1, 1);
        private (int H, int W) _jump = (1, 1);
        private bool _spatialTracking = true;

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

            string[] names = _names = AssignNames(layers);
            _outputs = new Node[layers.Count];
            for (int i = 0; i < layers.Count; i++)
            {
                AnalyzeLayer(i, names[i], layers[i]);
                _outputs[i] = new Node(_shape, _rf, _jump, _spatialTracking);
            }

            CheckClassifierEnd(layers, names);
            WarnUnreadEdges();
            WarnUnusedOutputs(layers);
            long totalParameters = _reports.Sum(r => r.Parameters);
            if (totalParameters > limits.MaxParameters)
            {
                Error(null, null, "layers", $"the model has {N(totalParameters)} parameters, over the cap of {N(limits.MaxParameters)}");
            }

            bool valid = _errors.Count == 0;
            var result = new ModelValidationResult
            {
                Valid = valid,
                OutputShape = valid ? _shape : null,
                TotalParameters = totalParameters,
                TotalMultiplyAdds = _reports.Sum(r => r.MultiplyAdds),
                TotalActivationBytes = _reports.Sum(r => r.ActivationBytes),
                Layers = _reports,
                Warnings = _warnings,
                Errors = _errors,
            };
            return new SpecAnalysis(result, valid ? _plan : []);
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

        public string[] AssignNames(IReadOnlyList<LayerSpec> layers)
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
                if (name == ModelInputName)
                {
                    Error(i, name, $"layers[{i}].name", $"layer {i}: the name \"{ModelInputName}\" is kept for the model's input (layers name it in their inputs); choose another");
                }
                else if (!LayerNamePattern().IsMatch(name))
                {
                    Error(i, name, $"layers[{i}].name", $"layer {i}: name \"{name}\" must start with a letter or _ and hold only letters, digits and _ (at most 64)");
                }
                else if (!taken.TryAdd(name, i))
                {
                    Error(i, name, $"layers[{i}].name", $"{name}: duplicate name; layer {taken[name]} is already called \"{name}\"");
                }
            }

            var counters = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int i = 0; i < layers.Count; i++)
            {
                if (names[i] is not null)
                {
                    continue;
                }

                string prefix = LayerKinds.TryParse(layers[i].Kind ?? "", out LayerKind kind) ? LayerKinds.AutoNamePrefix(kind) : "layer";
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

        private void AnalyzeLayer(int i, string name, LayerSpec layer)
        {
            string at = $"layers[{i}]";
            if (!LayerKinds.TryParse(layer.Kind ?? "", out LayerKind kind))
            {
                Error(i, name, at + ".kind", layer.Kind is null
                    ? $"layer {i}: kind is missing; expected one of {string.Join(", ", LayerKinds.Names)}"
                    : $"{name}: unknown kind \"{layer.Kind}\"; expected one of {string.Join(", ", LayerKinds.Names)}");
                _shape = null;
                return;
            }

            var layerErrors = new LayerErrors(this, i, name, at);
            int[]? inputs = ResolveInputs(kind, layer, layerErrors, i);
            TakeInputs(inputs);
            CheckFieldsApply(kind, layer, layerErrors);
            LayerPlan? plan = Resolve(kind, layer, layerErrors, i, name);
            if (layerErrors.Count > 0 || plan is null || _shape is null)
            {
                _shape = null;
                return;
            }

            Infer(plan with { Inputs = inputs! }, layerErrors);
        }

        /// <summary>The indices of the layers a layer takes (<see cref="LayerPlan.ModelInput"/> for the image), or null with errors.</summary>
        private int[]? ResolveInputs(LayerKind kind, LayerSpec layer, LayerErrors errors, int index)
        {
            string what = LayerKinds.Name(kind);
            bool merge = LayerKinds.IsMerge(kind);
            string verb = kind == LayerKind.Add ? "sum" : "concatenate";
            if (layer.Inputs is not { } given)
            {
                if (merge)
                {
                    errors.Add("inputs", $"{what} needs inputs: the names of the two or more earlier layers to {verb}");
                    return null;
                }

                return [index == 0 ? LayerPlan.ModelInput : index - 1];
            }

            if (given.Count > limits.MaxInputs)
            {
                errors.Add("inputs", $"inputs names {given.Count} layers, over the cap of {limits.MaxInputs}");
                return null;
            }

            var resolved = new List<int>(given.Count);
            int before = errors.Count;
            for (int k = 0; k < given.Count; k++)
            {
                string inputName = given[k];
                int found = inputName == ModelInputName ? LayerPlan.ModelInput : Array.IndexOf(_names, inputName);
                if (found == LayerPlan.ModelInput && inputName == ModelInputName)
                {
                    resolved.Add(found);
                }
                else if (found < 0)
                {
                    errors.Add($"inputs[{k}]", $"inputs names \"{inputName}\", which is no layer of this model (\"{ModelInputName}\" is the model's input)");
                }
                else if (found == index)
                {
                    errors.Add($"inputs[{k}]", $"inputs names the layer itself: a layer cannot take its own output (that would be a cycle)");
                }
                else if (found > index)
                {
                    errors.Add($"inputs[{k}]", $"inputs names {inputName} (layer {found}), which comes after it: a layer takes only earlier layers' outputs, so the graph has no cycles; move {inputName} before it");
                }
                else
                {
                    resolved.Add(found);
                }
            }

            if (given.Count == 0)
            {
                errors.Add("inputs", merge
                    ? $"inputs is empty; {what} needs two or more earlier layers to {verb}"
                    : "inputs is empty; leave it out to take the previous layer's output");
            }
            else if (merge && given.Count < 2)
            {
                errors.Add("inputs", $"{what} needs two or more inputs to {verb}, got 1");
            }
            else if (!merge && given.Count > 1)
            {
                errors.Add("inputs", $"{what} takes one input, got {given.Count}; only add and concat merge several");
            }

            return errors.Count == before ? [.. resolved] : null;
        }

        /// <summary>Sets the inference state to the layer's inputs: the first for a single-input layer, all of them for a merge.</summary>
        private void TakeInputs(int[]? inputs)
        {
            if (inputs is null)
            {
                _shape = null;
                return;
            }

            Node[] nodes = [.. inputs.Select(j => j == LayerPlan.ModelInput ? _modelInput : _outputs[j])];
            _shape = nodes.All(n => n.Shape is not null) ? nodes[0].Shape : null;
            _mergeInputs = _shape is null ? [] : [.. nodes.Select(n => n.Shape!)];
            _rf = (nodes.Max(n => n.Rf.H), nodes.Max(n => n.Rf.W));
            _jump = (nodes.Max(n => n.Jump.H), nodes.Max(n => n.Jump.W));
            _spatialTracking = nodes.All(n => n.SpatialTracking);
        }

        private string InputName(int index) => index == LayerPlan.ModelInput ? ModelInputName : _names[index];

        private void Merge(LayerPlan plan, LayerErrors errors)
        {
            int[] first = _mergeInputs[0];
            string firstName = InputName(plan.Inputs[0]);
            for (int k = 1; k < _mergeInputs.Length; k++)
            {
                int[] other = _mergeInputs[k];
                string otherName = InputName(plan.Inputs[k]);
                if (plan.Kind == LayerKind.Add && !first.SequenceEqual(other))
                {
                    errors.Add("inputs", $"add sums element by element, so its inputs' shapes must match, but {firstName} gives {Shape(first)} and {otherName} gives {Shape(other)}{ProjectionHint(first, other, otherName)}");
                    _shape = null;
                    return;
                }

                if (plan.Kind == LayerKind.Concat && (first.Length != other.Length || (first.Length == 3 && (first[1] != other[1] || first[2] != other[2]))))
                {
                    errors.Add("inputs", first.Length != other.Length
                        ? $"concat joins inputs that are all images or all flat, but {firstName} gives {Shape(first)} and {otherName} gives {Shape(other)}"
                        : $"concat stacks channels, so its inputs' heights and widths must match, but {firstName} gives {Shape(first)} and {otherName} gives {Shape(other)}");
                    _shape = null;
                    return;
                }
            }

            long[] output = plan.Kind == LayerKind.Add
                ? Long(first)
                : [_mergeInputs.Sum(s => (long)s[0]), .. first.Skip(1).Select(d => (long)d)];
            Accept(plan, output, 0, 0, errors);
        }

        /// <summary>For an add whose inputs differ in channels or size: the 1×1 convolution that would make them match.</summary>
        private static string ProjectionHint(int[] first, int[] other, string otherName)
        {
            if (first.Length != 3 || other.Length != 3 || other[1] % first[1] != 0 || other[2] % first[2] != 0 || other[1] / first[1] != other[2] / first[2])
            {
                return "";
            }

            int stride = other[1] / first[1];
            return $"; a 1×1 conv2d with {first[0]} filters{(stride > 1 ? $" and stride {stride}" : "")} after {otherName} (a projection shortcut) would make them match";
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

        private static void CheckFieldsApply(LayerKind kind, LayerSpec layer, LayerErrors errors)
        {
            IReadOnlyList<string> allowed = LayerKinds.Fields(kind);
            (string Field, object? Value)[] given =
            [
                ("filters", layer.Filters), ("kernel", layer.Kernel), ("stride", layer.Stride), ("padding", layer.Padding),
                ("dilation", layer.Dilation), ("bias", layer.Bias), ("biasInit", layer.BiasInit), ("units", layer.Units), ("p", layer.P),
                ("slope", layer.Slope), ("eps", layer.Eps), ("momentum", layer.Momentum),
            ];
            foreach ((string field, object? value) in given)
            {
                if (value is not null && !allowed.Contains(field))
                {
                    errors.Add(field, allowed.Count == 0
                        ? $"{field} does not apply to {LayerKinds.Name(kind)}, which takes no settings"
                        : $"{field} does not apply to {LayerKinds.Name(kind)}; it takes {string.Join(", ", allowed)}");
                }
            }
        }

        private static double? BiasInit(LayerErrors errors, LayerSpec layer)
        {
            if (layer.BiasInit is not { } value)
            {
                return null;
            }

            if (!double.IsFinite(value))
            {
                errors.Add("biasInit", $"biasInit must be a finite number, got {value}");
            }
            else if (layer.Bias == false)
            {
                errors.Add("biasInit", "biasInit needs a bias, but bias is false");
            }

            return value;
        }

        private LayerPlan? Resolve(LayerKind kind, LayerSpec layer, LayerErrors errors, int index, string name)
        {
            var plan = new LayerPlan(index, name, kind, [], []);
            switch (kind)
            {
                case LayerKind.Conv2d:
                    plan = plan with
                    {
                        Filters = RequirePositive(errors, "filters", layer.Filters),
                        Kernel = RequirePair(errors, "kernel", layer.Kernel),
                        Stride = PositivePair(errors, "stride", layer.Stride ?? 1),
                        Dilation = PositivePair(errors, "dilation", layer.Dilation ?? 1),
                        Padding = NonNegativePadding(errors, layer.Padding ?? 0),
                        Bias = layer.Bias ?? true,
                        BiasInit = BiasInit(errors, layer),
                    };
                    if (plan.Padding.Same && (plan.Stride.Height != 1 || plan.Stride.Width != 1))
                    {
                        errors.Add("padding", $"padding \"same\" needs stride 1 (as in PyTorch), but stride is {plan.Stride}; give the padding as a number instead");
                    }

                    return plan;
                case LayerKind.MaxPool2d or LayerKind.AvgPool2d:
                    IntPair kernel = RequirePair(errors, "kernel", layer.Kernel);
                    if (layer.Padding is { Same: true })
                    {
                        errors.Add("padding", $"padding \"same\" applies to conv2d only; give {LayerKinds.Name(kind)} a number");
                    }

                    plan = plan with
                    {
                        Kernel = kernel,
                        Stride = layer.Stride is { } stride ? PositivePair(errors, "stride", stride) : kernel,
                        Dilation = 1,
                        Padding = NonNegativePadding(errors, layer.Padding is { Same: false } given ? given : 0),
                    };
                    if (kernel.Height > 0 && kernel.Width > 0
                        && (plan.Padding.Size.Height > kernel.Height / 2 || plan.Padding.Size.Width > kernel.Width / 2))
                    {
                        errors.Add("padding", $"padding {plan.Padding.Size} is more than half the {K(kernel)} window (PyTorch allows at most {new IntPair(kernel.Height / 2, kernel.Width / 2)})");
                    }

                    return plan;
                case LayerKind.LeakyRelu:
                    double slope = layer.Slope ?? 0.01;
                    if (!double.IsFinite(slope))
                    {
                        errors.Add("slope", $"slope must be a finite number, got {slope}");
                    }

                    return plan with { Slope = slope };
                case LayerKind.BatchNorm2d:
                    double eps = layer.Eps ?? 1e-5, momentum = layer.Momentum ?? 0.1;
                    if (!(eps > 0) || !double.IsFinite(eps))
                    {
                        errors.Add("eps", $"eps must be a small positive number, got {F(eps)}");
                    }

                    if (!(momentum is >= 0 and <= 1))
                    {
                        errors.Add("momentum", $"momentum must be in [0, 1], got {F(momentum)}");
                    }

                    return plan with { Eps = eps, Momentum = momentum };
                case LayerKind.Dropout:
                    double p = layer.P ?? 0.5;
                    if (!(p is >= 0 and < 1))
                    {
                        errors.Add("p", $"p must be in [0, 1): the probability of zeroing an element, got {F(p)}");
                    }

                    return plan with { P = p };
                case LayerKind.Linear:
                    return plan with { Units = RequirePositive(errors, "units", layer.Units), Bias = layer.Bias ?? true, BiasInit = BiasInit(errors, layer) };
                default:
                    return plan;
            }
        }

        private void Infer(LayerPlan plan, LayerErrors errors)
        {
            if (LayerKinds.IsMerge(plan.Kind))
            {
                Merge(plan, errors);
                return;
            }

            int[] input = _shape!;
            bool spatial = input.Length == 3;
            string kind = LayerKinds.Name(plan.Kind);
            long parameters = 0, multiplyAdds = 0;
            switch (plan.Kind)
            {
                case LayerKind.Conv2d or LayerKind.MaxPool2d or LayerKind.AvgPool2d:
                    if (!spatial)
                    {
                        errors.Add("kind", $"{kind} needs a channels×height×width input, but gets {Shape(input)} (after flattening); move it before the flatten");
                        break;
                    }

                    // A square window on a square input: one message for both sides, not two identical ones.
                    bool square = input[1] == input[2] && plan.Kernel.IsSquare && plan.Stride.IsSquare && plan.Padding.Size.IsSquare && plan.Dilation.IsSquare;
                    int? height = WindowOutput(plan, errors, "height", square, input[1], input[2], plan.Kernel.Height, plan.Stride.Height, plan.Padding.Size.Height, plan.Dilation.Height);
                    int? width = square
                        ? height
                        : WindowOutput(plan, errors, "width", false, input[1], input[2], plan.Kernel.Width, plan.Stride.Width, plan.Padding.Size.Width, plan.Dilation.Width);
                    if (height is null || width is null)
                    {
                        break;
                    }

                    int channels = plan.Kind == LayerKind.Conv2d ? plan.Filters : input[0];
                    if (plan.Kind == LayerKind.Conv2d)
                    {
                        try
                        {
                            long perFilter = checked((long)input[0] * plan.Kernel.Height * plan.Kernel.Width);
                            parameters = checked(plan.Filters * (perFilter + (plan.Bias ? 1 : 0)));
                            multiplyAdds = checked((long)height.Value * width.Value * plan.Filters * perFilter);
                        }
                        catch (OverflowException)
                        {
                            errors.Add("filters", $"{plan.Filters} filters of {K(plan.Kernel)}×{input[0]} make more parameters or multiply-adds than 64 bits can count");
                            break;
                        }
                    }

                    _rf = (_rf.H + (Effective(plan.Kernel.Height, plan.Dilation.Height) - 1) * _jump.H,
                           _rf.W + (Effective(plan.Kernel.Width, plan.Dilation.Width) - 1) * _jump.W);
                    _jump = (_jump.H * plan.Stride.Height, _jump.W * plan.Stride.Width);
                    Accept(plan, [channels, height.Value, width.Value], parameters, multiplyAdds, errors);
                    return;
                case LayerKind.BatchNorm2d:
                    if (!spatial)
                    {
                        errors.Add("kind", $"batchnorm2d needs a channels×height×width input, but gets {Shape(input)}; it normalises each channel over height and width");
                        break;
                    }

                    Accept(plan, Long(input), 2L * input[0], 0, errors);
                    return;
                case LayerKind.Flatten:
                    _spatialTracking = false;
                    Accept(plan, [input.Aggregate(1L, (a, b) => a * b)], 0, 0, errors);
                    return;
                case LayerKind.GlobalAvgPool:
                    if (!spatial)
                    {
                        errors.Add("kind", $"globalavgpool needs a channels×height×width input, but gets {Shape(input)}");
                        break;
                    }

                    _spatialTracking = false;
                    Accept(plan, [input[0]], 0, 0, errors);
                    return;
                case LayerKind.Linear:
                    if (spatial)
                    {
                        errors.Add("kind", $"linear needs a flat input, but gets {Shape(input)}; add {{ \"kind\": \"flatten\" }} (or globalavgpool) before it");
                        break;
                    }

                    multiplyAdds = (long)input[0] * plan.Units;
                    Accept(plan, [plan.Units], multiplyAdds + (plan.Bias ? plan.Units : 0), multiplyAdds, errors);
                    return;
                default:
                    Accept(plan, Long(input), 0, 0, errors);
                    return;
            }

            _shape = null;
        }

        private void Accept(LayerPlan plan, long[] shape, long parameters, long multiplyAdds, LayerErrors errors)
        {
            long elements = shape.Aggregate(1L, (a, b) => a * b);
            long total = _reports.Sum(r => r.ActivationBytes) + (elements * BytesPerFloat);
            if (elements > int.MaxValue)
            {
                errors.Add("kind", $"its output {string.Join("×", shape)} = {N(elements)} values per sample is more than one layer may have ({N(int.MaxValue)})");
                _shape = null;
                return;
            }

            if (total > limits.MaxActivationBytes)
            {
                errors.Add("kind", $"its output {string.Join("×", shape)} takes the layer outputs of one sample to {N(total)} bytes, over the cap of {N(limits.MaxActivationBytes)}");
                _shape = null;
                return;
            }

            int[] output = [.. shape.Select(d => (int)d)];
            bool spatial = output.Length == 3 && _spatialTracking;
            _plan.Add(plan with { InputShape = _shape!, OutputShape = output, Parameters = parameters });
            _reports.Add(new LayerReport(
                plan.Index,
                plan.Name,
                LayerKinds.Name(plan.Kind),
                output,
                parameters,
                multiplyAdds,
                spatial ? [_rf.H, _rf.W] : null,
                spatial ? [_jump.H, _jump.W] : null,
                elements * BytesPerFloat)
            {
                Inputs = [.. plan.Inputs.Select(InputName)],
            });
            _shape = output;
        }

        /// <summary>One side of a window layer's output, or null with an error naming the formula.</summary>
        private int? WindowOutput(LayerPlan plan, LayerErrors errors, string side, bool square, int inHeight, int inWidth, int kernel, int stride, int padding, int dilation)
        {
            int size = side == "height" ? inHeight : inWidth;
            if (plan.Padding.Same)
            {
                return size;
            }

            int effective = Effective(kernel, dilation);
            long span = (long)size + 2L * padding - effective;
            long output = FloorDiv(span, stride) + 1;
            string formula = dilation == 1
                ? $"⌊({size} − {kernel} + 2·{padding})/{stride}⌋ + 1 = {output}"
                : $"⌊({size} − {effective} + 2·{padding})/{stride}⌋ + 1 = {output}, with the dilated kernel {dilation}·({kernel} − 1) + 1 = {effective}";
            if (output <= 0)
            {
                string window = plan.Kind == LayerKind.Conv2d ? "kernel" : "window";
                string input = padding == 0 ? $"its {inHeight}×{inWidth} input" : $"its {inHeight}×{inWidth} input padded by {padding}";
                errors.Add(plan.Kind == LayerKind.Conv2d ? "kernel" : "kernel", $"output {side} {formula} — the {window} is larger than {input}");
                return null;
            }

            // Positions past the last window: the trailing padding among them hides no input.
            long dropped = Math.Max(0, (span % stride) - padding);
            if (dropped != 0)
            {
                string unit = (square, dropped == 1) switch
                {
                    (true, true) => "row and column",
                    (true, false) => "rows and columns",
                    (false, _) => (side == "height" ? "row" : "column") + (dropped == 1 ? "" : "s"),
                };
                string sides = square ? "height and width" : side;
                _unreadEdges.Add((new SpecIssue(plan.Index, plan.Name, $"layers[{plan.Index}].stride",
                    $"{plan.Name}: the {K(plan.Kernel)} window at stride {stride} does not tile the {sides} ({size} + 2·{padding} − {effective} = {span} is not a multiple of {stride}{(padding > 0 ? $", beyond the padding of {padding}" : "")}): the last {dropped} {unit} of the input {(dropped == 1 ? "is" : "are")} never seen"),
                    plan.Index, plan.Inputs[0], square || side == "height", square || side == "width"));
            }

            return (int)output;
        }

        private void CheckClassifierEnd(IReadOnlyList<LayerSpec> layers, string[] names)
        {
            if (layers.Count == 0)
            {
                return;
            }

            int last = layers.Count - 1;
            LayerSpec layer = layers[last];
            if (!LayerKinds.TryParse(layer.Kind ?? "", out LayerKind kind))
            {
                return;
            }

            if (kind != LayerKind.Linear)
            {
                Error(last, names[last], $"layers[{last}].kind", $"{names[last]}: the last layer must be linear, with one unit per class (its scores go to softmax and cross-entropy), but it is {layer.Kind}");
            }
            else if (layer.Units is 1)
            {
                Error(last, names[last], $"layers[{last}].units", $"{names[last]}: a classifier needs at least 2 classes, so the last linear layer needs units ≥ 2, got 1");
            }
        }

        private void Error(int? index, string? name, string field, string message) => _errors.Add(new SpecIssue(index, name, field, message));

        private sealed class LayerErrors(Analysis analysis, int index, string name, string at)
        {
            public int Count { get; private set; }

            public void Add(string field, string reason)
            {
                Count++;
                analysis.Error(index, name, $"{at}.{field}", $"{name}: {reason}");
            }
        }

        private static int RequirePositive(LayerErrors errors, string field, int? value)
        {
            if (value is null)
            {
                errors.Add(field, $"{field} is required");
                return 0;
            }

            if (value <= 0)
            {
                errors.Add(field, $"{field} must be at least 1, got {value}");
            }

            return value.Value;
        }

        private IntPair RequirePair(LayerErrors errors, string field, IntPair? value)
        {
            if (value is null)
            {
                errors.Add(field, $"{field} is required: an integer or [height, width]");
                return default;
            }

            return PositivePair(errors, field, value.Value);
        }

        private IntPair PositivePair(LayerErrors errors, string field, IntPair value)
        {
            if (value.Height <= 0 || value.Width <= 0)
            {
                errors.Add(field, $"{field} must be at least 1, got {value}");
            }
            else if (value.Height > limits.MaxWindowSide || value.Width > limits.MaxWindowSide)
            {
                errors.Add(field, $"{field} is {value}, over the cap of {limits.MaxWindowSide}");
            }

            return value;
        }

        private Padding NonNegativePadding(LayerErrors errors, Padding value)
        {
            if (!value.Same && (value.Size.Height < 0 || value.Size.Width < 0))
            {
                errors.Add("padding", $"padding must be 0 or more, got {value}");
            }
            else if (!value.Same && (value.Size.Height > limits.MaxWindowSide || value.Size.Width > limits.MaxWindowSide))
            {
                errors.Add("padding", $"padding is {value}, over the cap of {limits.MaxWindowSide}");
            }

            return value;
        }

        private static long[] Long(int[] shape) => [.. shape.Select(d => (long)d)];

        private static int Effective(int kernel, int dilation) => dilation * (kernel - 1) + 1;

        private static long FloorDiv(long a, long b) => a >= 0 ? a / b : -((-a + b - 1) / b);

        private static string K(IntPair kernel) => $"{kernel.Height}×{kernel.Width}";

        private static string Shape(int[] shape) => shape.Length == 1 ? $"{shape[0]} features" : string.Join("×", shape);

        private static string N(long n) => n.ToString("N0", CultureInfo.InvariantCulture);

        private static string F(double d) => d.ToString("R", CultureInfo.InvariantCulture);
    }
}
