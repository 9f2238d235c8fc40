using Google.Protobuf;
using TrainingService.Training.Export.Onnx;
using TrainingService.Training.Specs;
using AttributeType = TrainingService.Training.Export.Onnx.AttributeProto.Types.AttributeType;
using DataType = TrainingService.Training.Export.Onnx.TensorProto.Types.DataType;

namespace TrainingService.Training.Export;

/// <summary>The ONNX graph being written: nodes, initializers from the state dict, value shapes.</summary>
internal sealed class OnnxGraph(IReadOnlyList<LayerPlan> plan, IReadOnlyList<StateTensor> state)
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
        Graph.Input.Add(Value(OnnxExporter.InputName, _inputShape));
        Graph.Initializer.Add(Floats("input.scale", perChannel, [.. std.Select(s => 1f / (255f * s))]));
        Graph.Initializer.Add(Floats("input.shift", perChannel, [.. mean.Zip(std, (m, s) => -m / s)]));
        Node("Mul", "input.mul", [OnnxExporter.InputName, "input.scale"], ["input.scaled"]);
        Node("Add", "input.add", ["input.scaled", "input.shift"], [Normalised]);
        Graph.ValueInfo.Add(Value("input.scaled", _inputShape));
        Graph.ValueInfo.Add(Value(Normalised, _inputShape));
    }

    public void Layer(LayerPlan layer)
    {
        string output = ValueName(layer.Index);
        string[] inputs = [.. layer.Inputs.Select(j => j == LayerPlan.ModelInput ? Normalised : ValueName(j))];
        layer.Kind.ToOnnx(layer, this, inputs, output);
        if (output != OnnxExporter.ScoresName)
        {
            Graph.ValueInfo.Add(Value(output, layer.OutputShape));
        }
    }

    /// <summary>Adds a node.</summary>
    public void Node(string op, string name, IEnumerable<string> inputs, IEnumerable<string> outputs, params AttributeProto[] attributes) =>
        Graph.Node.Add(NewNode(op, name, inputs, outputs, attributes));

    /// <summary>Declares an intermediate value's shape (behind the batch dimension).</summary>
    public void ValueInfo(string name, int[] shape) => Graph.ValueInfo.Add(Value(name, shape));

    public void Outputs(int classes)
    {
        Node("Softmax", $"{OnnxExporter.ScoresName}.softmax", [OnnxExporter.ScoresName], [OnnxExporter.ProbabilitiesName], Int("axis", 1));
        Graph.Output.Add(Value(OnnxExporter.ScoresName, [classes]));
        Graph.Output.Add(Value(OnnxExporter.ProbabilitiesName, [classes]));
    }

    /// <summary>A layer's output value: its name, but the last layer's is the graph's scores, and no layer's hides a graph input or output.</summary>
    private string ValueName(int index) => index == plan.Count - 1
        ? OnnxExporter.ScoresName
        : plan[index].Name is OnnxExporter.InputName or OnnxExporter.ScoresName or OnnxExporter.ProbabilitiesName ? $"{plan[index].Name}.output" : plan[index].Name;

    /// <summary>conv2d, linear: the bias initializer, or nothing when the layer has none.</summary>
    public IEnumerable<string> OptionalBias(LayerPlan layer, int size) =>
        _state.ContainsKey($"{layer.Name}.bias") ? [Weight(layer, "bias", [size])] : [];

    /// <summary>The initializer of a state tensor, checked against the shape the spec gives it.</summary>
    public string Weight(LayerPlan layer, string field, long[] shape)
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
    public string WeightOr(LayerPlan layer, string field, int channels, float constant)
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
        var dims = new TensorShapeProto { Dim = { new TensorShapeProto.Types.Dimension { DimParam = OnnxExporter.BatchDimension } } };
        dims.Dim.AddRange(shape.Select(d => new TensorShapeProto.Types.Dimension { DimValue = d }));
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)DataType.Float, Shape = dims } } };
    }

    private static NodeProto NewNode(string op, string name, IEnumerable<string> inputs, IEnumerable<string> outputs, params AttributeProto[] attributes) =>
        new() { OpType = op, Name = name, Input = { inputs }, Output = { outputs }, Attribute = { attributes } };

    public static AttributeProto Ints(string name, long[] values) => new() { Name = name, Type = AttributeType.Ints, Ints = { values } };

    public static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeType.Int, I = value };

    public static AttributeProto Float(string name, float value) => new() { Name = name, Type = AttributeType.Float, F = value };
}
