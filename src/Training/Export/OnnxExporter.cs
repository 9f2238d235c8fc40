using System.Text.Json;
using Google.Protobuf;
using TrainingService.Training.Export.Onnx;
using TrainingService.Training.Specs;

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

        var graph = new OnnxGraph(analysis.Plan, state);
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
}
