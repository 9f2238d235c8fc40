using TrainingService.Contracts.Specs;

namespace TrainingService.Training.Specs;

/// <summary>One layer's errors, each with its field's path and the layer's name, and the checks its fields share.</summary>
internal sealed class LayerCheck(Action<SpecIssue> report, SpecLimits limits, int index, string name)
{
    public int Count { get; private set; }

    public SpecLimits Limits => limits;

    public void Error(string field, string reason)
    {
        Count++;
        report(new SpecIssue(index, name, $"layers[{index}].{field}", $"{name}: {reason}"));
    }

    public int RequirePositive(string field, int? value)
    {
        if (value is null)
        {
            Error(field, $"{field} is required");
            return 0;
        }

        if (value <= 0)
        {
            Error(field, $"{field} must be at least 1, got {value}");
        }

        return value.Value;
    }

    public IntPair RequirePair(string field, IntPair? value)
    {
        if (value is null)
        {
            Error(field, $"{field} is required: an integer or [height, width]");
            return default;
        }

        return PositivePair(field, value.Value);
    }

    public IntPair PositivePair(string field, IntPair value)
    {
        if (value.Height <= 0 || value.Width <= 0)
        {
            Error(field, $"{field} must be at least 1, got {value}");
        }
        else if (value.Height > limits.MaxWindowSide || value.Width > limits.MaxWindowSide)
        {
            Error(field, $"{field} is {value}, over the cap of {limits.MaxWindowSide}");
        }

        return value;
    }

    public Padding NonNegativePadding(Padding value)
    {
        if (!value.Same && (value.Size.Height < 0 || value.Size.Width < 0))
        {
            Error("padding", $"padding must be 0 or more, got {value}");
        }
        else if (!value.Same && (value.Size.Height > limits.MaxWindowSide || value.Size.Width > limits.MaxWindowSide))
        {
            Error("padding", $"padding is {value}, over the cap of {limits.MaxWindowSide}");
        }

        return value;
    }

    /// <summary>conv2d, linear: the biases' starting value, which needs a bias; null for PyTorch's default.</summary>
    public double? BiasInit(LayerSpec layer)
    {
        if (layer.BiasInit is not { } value)
        {
            return null;
        }

        if (!double.IsFinite(value))
        {
            Error("biasInit", $"biasInit must be a finite number, got {value}");
        }
        else if (layer.Bias == false)
        {
            Error("biasInit", "biasInit needs a bias, but bias is false");
        }

        return value;
    }
}
