using TrainingService.Contracts.Specs;

namespace TrainingService.Training.Specs.Kinds;

/// <summary>conv2d and the pools: a window slid over height and width, which grows the receptive field.</summary>
public abstract class WindowKind : LayerKind
{
    /// <summary>What messages call the window: a convolution's kernel, a pool's window.</summary>
    private protected virtual string WindowWord => "window";

    internal override void Infer(LayerAnalysis layer)
    {
        LayerPlan plan = layer.Plan;
        int[] input = layer.Input;
        if (input.Length != 3)
        {
            layer.Error("kind", $"{Name} needs a channels×height×width input, but gets {SpecText.Shape(input)} (after flattening); move it before the flatten");
            return;
        }

        // A square window on a square input: one message for both sides, not two identical ones.
        bool square = input[1] == input[2] && plan.Kernel.IsSquare && plan.Stride.IsSquare && plan.Padding.Size.IsSquare && plan.Dilation.IsSquare;
        int? height = OutputSide(layer, "height", square, plan.Kernel.Height, plan.Stride.Height, plan.Padding.Size.Height, plan.Dilation.Height);
        int? width = square
            ? height
            : OutputSide(layer, "width", false, plan.Kernel.Width, plan.Stride.Width, plan.Padding.Size.Width, plan.Dilation.Width);
        if (height is null || width is null || Count(layer, height.Value, width.Value) is not var (channels, parameters, multiplyAdds))
        {
            return;
        }

        layer.Rf = (layer.Rf.H + ((Effective(plan.Kernel.Height, plan.Dilation.Height) - 1) * layer.Jump.H),
                    layer.Rf.W + ((Effective(plan.Kernel.Width, plan.Dilation.Width) - 1) * layer.Jump.W));
        layer.Jump = (layer.Jump.H * plan.Stride.Height, layer.Jump.W * plan.Stride.Width);
        layer.Accept([channels, height.Value, width.Value], parameters, multiplyAdds);
    }

    /// <summary>The output's channels, the parameters and multiply-adds for an output of this size; null with an error.</summary>
    private protected abstract (long Channels, long Parameters, long MultiplyAdds)? Count(LayerAnalysis layer, int height, int width);

    /// <summary>One side of the output, or null with an error naming the formula.</summary>
    private int? OutputSide(LayerAnalysis layer, string side, bool square, int kernel, int stride, int padding, int dilation)
    {
        LayerPlan plan = layer.Plan;
        int inHeight = layer.Input[1], inWidth = layer.Input[2];
        int size = side == "height" ? inHeight : inWidth;
        if (plan.Padding.Same)
        {
            return size;
        }

        int effective = Effective(kernel, dilation);
        long span = (long)size + (2L * padding) - effective;
        long output = FloorDiv(span, stride) + 1;
        string formula = dilation == 1
            ? $"⌊({size} − {kernel} + 2·{padding})/{stride}⌋ + 1 = {output}"
            : $"⌊({size} − {effective} + 2·{padding})/{stride}⌋ + 1 = {output}, with the dilated kernel {dilation}·({kernel} − 1) + 1 = {effective}";
        if (output <= 0)
        {
            string input = padding == 0 ? $"its {inHeight}×{inWidth} input" : $"its {inHeight}×{inWidth} input padded by {padding}";
            layer.Error("kernel", $"output {side} {formula} — the {WindowWord} is larger than {input}");
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
            layer.WarnUnreadEdge(new SpecIssue(plan.Index, plan.Name, $"layers[{plan.Index}].stride",
                $"{plan.Name}: the {SpecText.Window(plan.Kernel)} window at stride {stride} does not tile the {sides} ({size} + 2·{padding} − {effective} = {span} is not a multiple of {stride}{(padding > 0 ? $", beyond the padding of {padding}" : "")}): the last {dropped} {unit} of the input {(dropped == 1 ? "is" : "are")} never seen"),
                square || side == "height", square || side == "width");
        }

        return (int)output;
    }

    /// <summary>ONNX's pads: top, left, bottom, right.</summary>
    private protected static long[] Pads(IntPair p) => [p.Height, p.Width, p.Height, p.Width];

    private static int Effective(int kernel, int dilation) => (dilation * (kernel - 1)) + 1;

    private static long FloorDiv(long a, long b) => a >= 0 ? a / b : -((-a + b - 1) / b);
}
