using System.Text.Json;
using Google.Protobuf;
using TrainingService.Contracts.Specs;
using TrainingService.Training.Export.Onnx;
using TrainingService.Training.Specs;
using AttributeType = TrainingService.Training.Export.Onnx.AttributeProto.Types.AttributeType;
using DataType = TrainingService.Training.Export.Onnx.TensorProto.Types.DataType;

namespace TrainingService.Training.Export;

/// <summary>
/// A spec's network as an ONNX model (opset 17, IR version 8), written from the spec's plan and a state dict, without
/// torch; the graph computes what <see cref="Models.Inference"/> computes, node for node. Input <see cref="InputName"/>:
/// raw pixels 0–255 as float, batch × channels × height × width, the batch dimension named <see cref="BatchDimension"/>;
/// the graph scales and normalises them as training does (x · 1/(255·std) + (−mean/std), per channel), runs the
/// layers (each value named after its layer, initializers by their PyTorch names) and gives <see cref="ScoresName"/>
/// (the logits, batch × classes) and <see cref="ProbabilitiesName"/> (their softmax). Class names, input mean and std
/// and the caller's entries go into metadata_props.
/// </summary>
public static class OnnxExporter
{
    /// <summary>ONNX 1.12's opset: every operator used here has had its current form since opset 16 or earlier.</summary>
    public const int Opset = 17;

    /// <summary>The IR version that goes with opset 17 (ONNX 1.12).</summary>
    public const long IrVersion = 8;

    public const string InputName = "pixels";
    public const string ScoresName = "scores";
    public const string ProbabilitiesName = "probabilities";
    public const string BatchDimension = "batch";
    public const string ProducerName = "TrainingService";

    /// <summary>Writes the model; <paramref name="mean"/> and <paramref name="std"/> are per channel (or one for all) of pixel/255.</summary>
    /// <param name="classNames">One per class, in score order; stored as a JSON array under "classes".</param>
    /// <param name="metadata">More metadata_props (spec, source, step, …).</param>
    public static void Write(
        Stream output, SpecAnalysis analysis, IReadOnlyList<StateTensor> state, float[] mean, float[] std,
        IReadOnlyList<string> classNames, IReadOnlyDictionary<string, string>? metadata = null) =>
        Build(analysis, state, mean, std, classNames, metadata).WriteTo(output);

    internal static ModelProto Build(
        SpecAnalysis analysis, IReadOnlyList<StateTensor> state, float[] mean, float[] std,
        IReadOnlyList<string> classNames, IReadOnlyDictionary<string, string>? metadata = null)
    {
        if (!analysis.IsValid)
        {
            throw new ArgumentException("the spec has errors", nameof(analysis));
        }

        if (classNames.Count != analysis.Classes)
        {
            throw new ArgumentException($"the model scores {analysis.Classes} classes, but {classNames.Count} class names were given", nameof(classNames));
        }

        var graph = new GraphBuilder(analysis.Plan, state);
        graph.Normalisation(mean, std);
        foreach (LayerPlan layer in analysis.Plan)
        {
            graph.Layer(layer);
        }

        graph.Outputs(analysis.Classes);
        var model = new ModelProto
        {
            IrVersion = IrVersion,
            OpsetImport = { new OperatorSetIdProto { Domain = "", Version = Opset } },
            ProducerName = ProducerName,
            ProducerVersion = typeof(OnnxExporter).Assembly.GetName().Version?.ToString() ?? "",
            DocString = $"Input {InputName}: raw pixels 0–255 as float, {BatchDimension} × channels × height × width; outputs {ScoresName} (logits) and {ProbabilitiesName} (softmax).",
            Graph = graph.Graph,
        };
        var props = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["classes"] = JsonSerializer.Serialize(classNames),
            ["input_mean"] = JsonSerializer.Serialize(mean),
            ["input_std"] = JsonSerializer.Serialize(std),
        };
        foreach ((string key, string value) in metadata ?? new Dictionary<string, string>())
        {
            props.TryAdd(key, value);
        }

        model.MetadataProps.AddRange(props.Select(p => new StringStringEntryProto { Key = p.Key, Value = p.Value }));
        return model;
    }

    private sealed class GraphBuilder(IReadOnlyList<LayerPlan> plan, IReadOnlyList<StateTensor> state)
    {
        /// <summary>The model's input after normalisation: the name by which specs refer to the image.</summary>
        private const string Normalised = SpecAnalyzer.ModelInputName;

        private readonly Dictionary<string, StateTensor> _state = state.ToDictionary(t => t.Name, StringComparer.Ordinal);
        private readonly HashSet<string> _initialized = new(StringComparer.Ordinal);
        private int[] _inputShape = [];

        public GraphProto Graph { get; } = new() { Name = "TrainingService" };

        public void Normalisation(float[] mean, float[] std)
        {
            _inputShape = plan[0].Inputs[0] == LayerPlan.ModelInput ? plan[0].InputShape : throw new ArgumentException("the first layer must take the model's input");
            int channels = _inputShape[0];
            if (mean.Length != std.Length || (mean.Length != channels && mean.Length != 1))
            {
                throw new ArgumentException($"mean and std need one value per channel ({channels}) or one for all; got {mean.Length} and {std.Length}");
            }

            long[] perChannel = [1, mean.Length, 1, 1];
            Graph.Input.Add(Value(InputName, _inputShape));
            Graph.Initializer.Add(Floats("input.scale", perChannel, [.. std.Select(s => 1f / (255f * s))]));
            Graph.Initializer.Add(Floats("input.shift", perChannel, [.. mean.Zip(std, (m, s) => -m / s)]));
            Graph.Node.Add(Node("Mul", "input.mul", [InputName, "input.scale"], ["input.scaled"]));
            Graph.Node.Add(Node("Add", "input.add", ["input.scaled", "input.shift"], [Normalised]));
            Graph.ValueInfo.Add(Value("input.scaled", _inputShape));
            Graph.ValueInfo.Add(Value(Normalised, _inputShape));
        }

        public void Layer(LayerPlan layer)
        {
            string name = layer.Name, output = ValueName(layer.Index);
            string[] inputs = [.. layer.Inputs.Select(j => j == LayerPlan.ModelInput ? Normalised : ValueName(j))];
            string x = inputs[0];
            long[] Pair(IntPair p) => [p.Height, p.Width];
            switch (layer.Kind)
            {
                case LayerKind.Conv2d:
                    long[] pads = [layer.Padding.Size.Height, layer.Padding.Size.Width, layer.Padding.Size.Height, layer.Padding.Size.Width];
                    if (layer.Padding.Same)
                    {
                        // PyTorch's "same": total padding dilation·(kernel−1) per axis, the odd pixel at the bottom/right.
                        long h = layer.Dilation.Height * (layer.Kernel.Height - 1), w = layer.Dilation.Width * (layer.Kernel.Width - 1);
                        pads = [h / 2, w / 2, h - (h / 2), w - (w / 2)];
                    }

                    Graph.Node.Add(Node("Conv", name, [x, Weight(layer, "weight", [layer.Filters, layer.InputShape[0], layer.Kernel.Height, layer.Kernel.Width]), .. OptionalBias(layer, layer.Filters)], [output],
                        Ints("kernel_shape", Pair(layer.Kernel)), Ints("strides", Pair(layer.Stride)), Ints("pads", pads),
                        Ints("dilations", Pair(layer.Dilation)), Int("group", 1)));
                    break;
                case LayerKind.MaxPool2d:
                    Graph.Node.Add(Node("MaxPool", name, [x], [output],
                        Ints("kernel_shape", Pair(layer.Kernel)), Ints("strides", Pair(layer.Stride)), Ints("pads", Pads(layer.Padding.Size)), Int("ceil_mode", 0)));
                    break;
                case LayerKind.AvgPool2d:
                    Graph.Node.Add(Node("AveragePool", name, [x], [output],
                        Ints("kernel_shape", Pair(layer.Kernel)), Ints("strides", Pair(layer.Stride)), Ints("pads", Pads(layer.Padding.Size)),
                        Int("count_include_pad", 1), Int("ceil_mode", 0)));
                    break;
                case LayerKind.Relu:
                    Graph.Node.Add(Node("Relu", name, [x], [output]));
                    break;
                case LayerKind.LeakyRelu:
                    Graph.Node.Add(Node("LeakyRelu", name, [x], [output], Float("alpha", (float)layer.Slope)));
                    break;
                case LayerKind.Sigmoid:
                    Graph.Node.Add(Node("Sigmoid", name, [x], [output]));
                    break;
                case LayerKind.Tanh:
                    Graph.Node.Add(Node("Tanh", name, [x], [output]));
                    break;
                case LayerKind.BatchNorm2d:
                    // Eval mode: the running statistics; ONNX's momentum attribute only matters for training.
                    int channels = layer.InputShape[0];
                    Graph.Node.Add(Node("BatchNormalization", name,
                        [x, WeightOr(layer, "weight", channels, 1f), WeightOr(layer, "bias", channels, 0f),
                         Weight(layer, "running_mean", [channels]), Weight(layer, "running_var", [channels])],
                        [output], Float("epsilon", (float)layer.Eps)));
                    break;
                case LayerKind.Dropout:
                    Graph.Node.Add(Node("Identity", name, [x], [output])); // evaluation mode: dropout passes its input on
                    break;
                case LayerKind.Flatten:
                    Graph.Node.Add(Node("Flatten", name, [x], [output], Int("axis", 1)));
                    break;
                case LayerKind.Linear:
                    Graph.Node.Add(Node("Gemm", name, [x, Weight(layer, "weight", [layer.Units, layer.InputShape[0]]), .. OptionalBias(layer, layer.Units)], [output],
                        Int("transB", 1)));
                    break;
                case LayerKind.GlobalAvgPool:
                    string pooled = $"{name}.pooled";
                    Graph.Node.Add(Node("GlobalAveragePool", pooled, [x], [pooled]));
                    Graph.Node.Add(Node("Flatten", name, [pooled], [output], Int("axis", 1)));
                    Graph.ValueInfo.Add(Value(pooled, [layer.InputShape[0], 1, 1]));
                    break;
                case LayerKind.Add:
                    // Left to right, as the model sums: ((a + b) + c) + …
                    string sum = inputs[0];
                    for (int k = 1; k < inputs.Length; k++)
                    {
                        string next = k == inputs.Length - 1 ? output : $"{name}.sum{k}";
                        Graph.Node.Add(Node("Add", k == inputs.Length - 1 ? name : next, [sum, inputs[k]], [next]));
                        if (next != output)
                        {
                            Graph.ValueInfo.Add(Value(next, layer.OutputShape));
                        }

                        sum = next;
                    }

                    break;
                case LayerKind.Concat:
                    Graph.Node.Add(Node("Concat", name, inputs, [output], Int("axis", 1)));
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(layer), layer.Kind, "no ONNX form for this kind");
            }

            if (output != ScoresName)
            {
                Graph.ValueInfo.Add(Value(output, layer.OutputShape));
            }
        }

        public void Outputs(int classes)
        {
            Graph.Node.Add(Node("Softmax", $"{ScoresName}.softmax", [ScoresName], [ProbabilitiesName], Int("axis", 1)));
            Graph.Output.Add(Value(ScoresName, [classes]));
            Graph.Output.Add(Value(ProbabilitiesName, [classes]));
        }

        /// <summary>A layer's output value: its name, but the last layer's is the graph's scores, and no layer's hides a graph input or output.</summary>
        private string ValueName(int index) => index == plan.Count - 1
            ? ScoresName
            : plan[index].Name is InputName or ScoresName or ProbabilitiesName ? $"{plan[index].Name}.output" : plan[index].Name;

        private static long[] Pads(IntPair p) => [p.Height, p.Width, p.Height, p.Width];

        private IEnumerable<string> OptionalBias(LayerPlan layer, int size) =>
            _state.ContainsKey($"{layer.Name}.bias") ? [Weight(layer, "bias", [size])] : [];

        /// <summary>The initializer of a state tensor, checked against the shape the spec gives it.</summary>
        private string Weight(LayerPlan layer, string field, long[] shape)
        {
            string name = $"{layer.Name}.{field}";
            if (!_state.TryGetValue(name, out StateTensor? tensor))
            {
                throw new InvalidDataException($"the weights have no {name}");
            }

            if (!tensor.Shape.SequenceEqual(shape))
            {
                throw new InvalidDataException($"{name} is [{string.Join(", ", tensor.Shape)}] in the weights, but the spec makes it [{string.Join(", ", shape)}]");
            }

            if (tensor.ElementType != 6)
            {
                throw new InvalidDataException($"{name}: element type {tensor.ElementType} is not float32");
            }

            if (_initialized.Add(name))
            {
                Graph.Initializer.Add(new TensorProto { Name = name, DataType = (int)DataType.Float, Dims = { shape }, RawData = ByteString.CopyFrom(tensor.Data) });
            }

            return name;
        }

        /// <summary>Batch norm's affine weight or bias; a constant when the state has none.</summary>
        private string WeightOr(LayerPlan layer, string field, int channels, float constant)
        {
            string name = $"{layer.Name}.{field}";
            if (_state.ContainsKey(name))
            {
                return Weight(layer, field, [channels]);
            }

            if (_initialized.Add(name))
            {
                Graph.Initializer.Add(Floats(name, [channels], [.. Enumerable.Repeat(constant, channels)]));
            }

            return name;
        }

        private static TensorProto Floats(string name, long[] shape, float[] values) =>
            new() { Name = name, DataType = (int)DataType.Float, Dims = { shape }, FloatData = { values } };

        /// <summary>A float tensor of one image's <paramref name="shape"/> behind the symbolic batch dimension.</summary>
        private static ValueInfoProto Value(string name, int[] shape)
        {
            var dims = new TensorShapeProto { Dim = { new TensorShapeProto.Types.Dimension { DimParam = BatchDimension } } };
            dims.Dim.AddRange(shape.Select(d => new TensorShapeProto.Types.Dimension { DimValue = d }));
            return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)DataType.Float, Shape = dims } } };
        }

        private static NodeProto Node(string op, string name, IEnumerable<string> inputs, IEnumerable<string> outputs, params AttributeProto[] attributes) =>
            new() { OpType = op, Name = name, Input = { inputs }, Output = { outputs }, Attribute = { attributes } };

        private static AttributeProto Ints(string name, long[] values) => new() { Name = name, Type = AttributeType.Ints, Ints = { values } };

        private static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeType.Int, I = value };

        private static AttributeProto Float(string name, float value) => new() { Name = name, Type = AttributeType.Float, F = value };
    }
}
