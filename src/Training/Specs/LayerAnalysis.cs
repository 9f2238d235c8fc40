using TrainingService.Contracts.Specs;

namespace TrainingService.Training.Specs;

/// <summary>What is known of one layer's output: its shape (null when it cannot be known) and receptive field.</summary>
internal sealed record OutputNode(int[]? Shape, (int H, int W) Rf, (int H, int W) Jump, bool SpatialTracking);

/// <summary>
/// One layer while its kind infers it: its inputs' shapes and receptive field, which the kind updates, and the output
/// it is accepted with. At a merge the receptive field and jump are the largest over the inputs.
/// </summary>
internal sealed class LayerAnalysis
{
    private readonly GraphAnalysis _graph;
    private readonly LayerCheck _check;

    public LayerAnalysis(GraphAnalysis graph, LayerPlan plan, OutputNode[] inputs, LayerCheck check)
    {
        _graph = graph;
        _check = check;
        Plan = plan;
        InputShapes = [.. inputs.Select(n => n.Shape!)];
        Rf = (inputs.Max(n => n.Rf.H), inputs.Max(n => n.Rf.W));
        Jump = (inputs.Max(n => n.Jump.H), inputs.Max(n => n.Jump.W));
        SpatialTracking = inputs.All(n => n.SpatialTracking);
    }

    public LayerPlan Plan { get; }

    /// <summary>The first input's shape: the only one, but for a merge.</summary>
    public int[] Input => InputShapes[0];

    public int[][] InputShapes { get; }

    public (int H, int W) Rf { get; set; }

    public (int H, int W) Jump { get; set; }

    /// <summary>False once a flatten or global pool has mixed every position: no receptive field is reported after it.</summary>
    public bool SpatialTracking { get; set; }

    /// <summary>The accepted output shape; null while not accepted.</summary>
    public int[]? Output { get; private set; }

    public OutputNode Node => new(Output, Rf, Jump, SpatialTracking);

    public void Error(string field, string reason) => _check.Error(field, reason);

    /// <summary>The name of input <paramref name="k"/>: a layer's, or "input".</summary>
    public string InputName(int k) => _graph.InputName(Plan.Inputs[k]);

    /// <summary>A window leaves edges of its input unread: a warning unless another layer on the same input reads them.</summary>
    public void WarnUnreadEdge(SpecIssue issue, bool height, bool width) =>
        _graph.AddUnreadEdge(issue, Plan.Index, Plan.Inputs[0], height, width);

    public void Accept(long[] shape, long parameters, long multiplyAdds) =>
        Output = _graph.Accept(this, shape, parameters, multiplyAdds);

    public void Accept(int[] shape, long parameters, long multiplyAdds) =>
        Accept([.. shape.Select(d => (long)d)], parameters, multiplyAdds);
}
