using TrainingService.Contracts.Specs;

namespace TrainingService.Training.Specs.Kinds;

/// <summary>maxpool2d and avgpool2d: a window over each channel, stride the window unless given, no parameters.</summary>
public abstract class PoolKind : WindowKind
{
    public override IReadOnlyList<string> Fields => ["kernel", "stride", "padding"];

    internal override LayerPlan Resolve(LayerPlan plan, LayerSpec layer, LayerCheck check)
    {
        IntPair kernel = check.RequirePair("kernel", layer.Kernel);
        if (layer.Padding is { Same: true })
        {
            check.Error("padding", $"padding \"same\" applies to conv2d only; give {Name} a number");
        }

        plan = plan with
        {
            Kernel = kernel,
            Stride = layer.Stride is { } stride ? check.PositivePair("stride", stride) : kernel,
            Dilation = 1,
            Padding = check.NonNegativePadding(layer.Padding is { Same: false } given ? given : 0),
        };
        if (kernel.Height > 0 && kernel.Width > 0
            && (plan.Padding.Size.Height > kernel.Height / 2 || plan.Padding.Size.Width > kernel.Width / 2))
        {
            check.Error("padding", $"padding {plan.Padding.Size} is more than half the {SpecText.Window(kernel)} window (PyTorch allows at most {new IntPair(kernel.Height / 2, kernel.Width / 2)})");
        }

        return plan;
    }

    private protected override (long Channels, long Parameters, long MultiplyAdds)? Count(LayerAnalysis layer, int height, int width) =>
        (layer.Input[0], 0, 0);
}
