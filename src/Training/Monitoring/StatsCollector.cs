using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using TorchSharp.Modules;
using TrainingService.Contracts.Training;
using TrainingService.Training.Models;
using TrainingService.Training.Native;
using TrainingService.Training.Specs;
using static TorchSharp.torch;

namespace TrainingService.Training.Monitoring;

/// <summary>
/// Per-layer activation statistics and per-parameter norms, gradient norms and update ratios for one step,
/// computed on the host straight from tensor memory, with no torch ops on the training path.
/// Parameter figures are exact. A layer output of more than <see cref="SampleSize"/> values is summarised by a
/// fixed random sample of that many of them, smaller ones exactly. The sample is <see cref="RunLength"/>-value runs
/// of consecutive values at distinct run-aligned offsets, chosen uniformly once per layer and output size:
/// whole cache lines rather than scattered values, which makes it several times cheaper to read.
/// </summary>
public sealed class StatsCollector
{
    public const int HistogramBins = 32;

    public const int RunLength = 32;

    private readonly SpecModel _model;
    private readonly (string Name, Parameter Parameter)[] _parameters;
    private readonly float[][] _before;
    private readonly double[] _norms;
    private readonly double[] _gradNorms;
    private readonly LayerStats?[] _layers;
    private readonly Dictionary<(int Layer, int Count), int[]> _runStarts = [];
    private readonly float[] _sample;
    private readonly int _seed;
    private readonly Dictionary<string, bool[]> _activeUnits = [];

    public StatsCollector(SpecModel model, int sampleSize = 4096, int seed = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(sampleSize, RunLength);
        sampleSize -= sampleSize % RunLength;
        _model = model;
        _seed = seed;
        SampleSize = sampleSize;
        _parameters = [.. model.named_parameters().Select(p => (p.name, p.parameter))];
        _before = [.. _parameters.Select(p => new float[p.Parameter.numel()])];
        _norms = new double[_parameters.Length];
        _gradNorms = new double[_parameters.Length];
        _layers = new LayerStats?[model.Plan.Count];
        _sample = new float[sampleSize];
    }

    public int SampleSize { get; }

    /// <summary>ReLU layers at the last collected step: per unit (channel or feature), whether any output in the batch was positive.</summary>
    public IReadOnlyDictionary<string, bool[]> ActiveUnits => _activeUnits;

    /// <summary>Start observing layer outputs for the coming forward pass.</summary>
    public void BeginForward()
    {
        Array.Clear(_layers);
        _model.LayerOutputObserver = OnLayerOutput;
    }

    /// <summary>After backward, before the optimiser's step: weights and gradients as they are now.</summary>
    public void BeforeUpdate()
    {
        _model.LayerOutputObserver = null;
        for (int i = 0; i < _parameters.Length; i++)
        {
            Parameter p = _parameters[i].Parameter;
            ReadOnlySpan<float> weights = TensorMemory.Floats(p);
            weights.CopyTo(_before[i]);
            _norms[i] = TensorPrimitives.Norm(weights);
            using Tensor? grad = p.grad;
            _gradNorms[i] = grad is null ? 0 : TensorPrimitives.Norm(TensorMemory.Floats(grad));
        }
    }

    /// <summary>After the optimiser's step: the statistics of this step.</summary>
    public LayersEvent AfterUpdate(long step)
    {
        var parameters = new ParameterStats[_parameters.Length];
        for (int i = 0; i < _parameters.Length; i++)
        {
            double update = TensorPrimitives.Distance(TensorMemory.Floats(_parameters[i].Parameter), _before[i]);
            parameters[i] = new ParameterStats(_parameters[i].Name, _norms[i], _gradNorms[i], _norms[i] > 0 ? update / _norms[i] : 0);
        }

        return new LayersEvent
        {
            Step = step,
            Layers = [.. _layers.Where(l => l is not null).Select(l => l!)],
            Parameters = parameters,
        };
    }

    private void OnLayerOutput(int index, Tensor output)
    {
        ReadOnlySpan<float> values = TensorMemory.Floats(output);
        ReadOnlySpan<float> sample = values;
        if (values.Length > SampleSize)
        {
            int[] runs = RunStarts(index, values.Length);
            for (int i = 0; i < runs.Length; i++)
            {
                values.Slice(runs[i], RunLength).CopyTo(_sample.AsSpan(i * RunLength));
            }

            sample = _sample;
        }

        LayerPlan plan = _model.Plan[index];
        LayerStats stats = Summarise(plan.Name, plan.Kind.Name, sample);
        _layers[index] = plan.Kind.Observe(stats, new LayerOutput(this, plan.Name, values, sample, output.shape));
    }

    /// <summary>
    /// Marks each unit (dimension 1: a channel or a feature) active when any of its outputs in the batch is positive,
    /// reading the whole output (a unit can be active in one image only); returns the fraction never active.
    /// </summary>
    internal double InactiveUnits(string layer, ReadOnlySpan<float> values, long[] shape)
    {
        int units = shape.Length > 1 ? (int)shape[1] : 1;
        int inner = 1;
        for (int d = 2; d < shape.Length; d++)
        {
            inner *= (int)shape[d];
        }

        if (!_activeUnits.TryGetValue(layer, out bool[]? active) || active.Length != units)
        {
            _activeUnits[layer] = active = new bool[units];
        }

        Array.Clear(active);
        int remaining = units;
        for (int offset = 0, unit = 0; offset < values.Length && remaining > 0; offset += inner, unit = unit + 1 == units ? 0 : unit + 1)
        {
            if (!active[unit] && (inner == 1 ? values[offset] > 0 : TensorPrimitives.Max(values.Slice(offset, inner)) > 0))
            {
                active[unit] = true;
                remaining--;
            }
        }

        return (double)remaining / units;
    }

    internal static LayerStats Summarise(string name, string kind, ReadOnlySpan<float> values)
    {
        if (values.IsEmpty)
        {
            return new LayerStats(name, kind, 0, 0, 0, 0, 0, new long[HistogramBins]);
        }

        float min = TensorPrimitives.Min(values);
        float max = TensorPrimitives.Max(values);
        // Four independent accumulators and sub-histograms: runs of equal values (a ReLU's zeros) would otherwise
        // serialise every increment on one memory location.
        // NaN or infinite outputs (a diverging run) leave the histogram empty; mean and std show NaN/∞.
        bool finite = float.IsFinite(min) && float.IsFinite(max);
        float scale = finite && max > min ? HistogramBins / (max - min) : 0;
        Span<long> bins = stackalloc long[4 * HistogramBins];
        bins.Clear();
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0, q0 = 0, q1 = 0, q2 = 0, q3 = 0;
        int zeros = 0, i = 0;
        for (; i + 4 <= values.Length; i += 4)
        {
            double a = values[i], b = values[i + 1], c = values[i + 2], d = values[i + 3];
            s0 += a;
            s1 += b;
            s2 += c;
            s3 += d;
            q0 += a * a;
            q1 += b * b;
            q2 += c * c;
            q3 += d * d;
            zeros += (a == 0 ? 1 : 0) + (b == 0 ? 1 : 0) + (c == 0 ? 1 : 0) + (d == 0 ? 1 : 0);
            bins[Bin(values[i], min, scale)]++;
            bins[HistogramBins + Bin(values[i + 1], min, scale)]++;
            bins[(2 * HistogramBins) + Bin(values[i + 2], min, scale)]++;
            bins[(3 * HistogramBins) + Bin(values[i + 3], min, scale)]++;
        }

        for (; i < values.Length; i++)
        {
            double a = values[i];
            s0 += a;
            q0 += a * a;
            zeros += a == 0 ? 1 : 0;
            bins[Bin(values[i], min, scale)]++;
        }

        double sum = s0 + s1 + s2 + s3, sumOfSquares = q0 + q1 + q2 + q3;
        var histogram = new long[HistogramBins];
        for (int b = 0; b < HistogramBins && finite; b++)
        {
            histogram[b] = bins[b] + bins[HistogramBins + b] + bins[(2 * HistogramBins) + b] + bins[(3 * HistogramBins) + b];
        }

        double mean = sum / values.Length;
        double variance = Math.Max(0, (sumOfSquares / values.Length) - (mean * mean));
        return new LayerStats(name, kind, mean, Math.Sqrt(variance), min, max, (double)zeros / values.Length, histogram);
    }

    private static int Bin(float value, float min, float scale)
    {
        int bin = (int)((value - min) * scale);
        return bin < 0 ? 0 : bin < HistogramBins ? bin : HistogramBins - 1; // < 0: NaN converts to int.MinValue
    }

    private int[] RunStarts(int layer, int count)
    {
        if (_runStarts.TryGetValue((layer, count), out int[]? starts))
        {
            return starts;
        }

        // Floyd's algorithm: distinct run slots, uniform, sorted for sequential reads.
        int slots = count / RunLength, wanted = SampleSize / RunLength;
        var random = new Random(unchecked((_seed * 1_000_003) + (layer * 7_919) + count)); // HashCode is randomised per process
        var chosen = new HashSet<int>(wanted);
        for (int j = slots - wanted; j < slots; j++)
        {
            int t = random.Next(j + 1);
            chosen.Add(chosen.Contains(t) ? j : t);
        }

        starts = [.. chosen.Order().Select(slot => slot * RunLength)];
        _runStarts[(layer, count)] = starts;
        return starts;
    }
}
