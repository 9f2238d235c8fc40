namespace TrainingService.Training.Monitoring;

/// <summary>One layer's output as the statistics see it: every value, and the sample the summary is taken from.</summary>
public readonly ref struct LayerOutput
{
    private readonly StatsCollector _collector;
    private readonly string _layer;
    private readonly ReadOnlySpan<float> _values;
    private readonly ReadOnlySpan<float> _sample;
    private readonly long[] _shape;

    internal LayerOutput(StatsCollector collector, string layer, ReadOnlySpan<float> values, ReadOnlySpan<float> sample, long[] shape)
    {
        _collector = collector;
        _layer = layer;
        _values = values;
        _sample = sample;
        _shape = shape;
    }

    /// <summary>The fraction of units (dimension 1: channels or features) with no positive output anywhere in the batch.</summary>
    public double InactiveUnits() => _collector.InactiveUnits(_layer, _values, _shape);

    /// <summary>The fraction of sampled outputs below <paramref name="low"/> or above <paramref name="high"/>.</summary>
    public double FractionOutside(float low, float high)
    {
        int outside = 0;
        foreach (float v in _sample)
        {
            outside += v < low || v > high ? 1 : 0;
        }

        return _sample.IsEmpty ? 0 : (double)outside / _sample.Length;
    }
}
