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
/// fixed uniform random sample of that many of them (chosen once per layer and output size), smaller ones exactly.
/// </summary>
public sealed class StatsCollector
{
    public const int HistogramBins = 32;

    private readonly SpecModel _model;
    private readonly (string Name, Parameter Parameter)[] _parameters;
    private readonly float[][] _before;
    private readonly double[] _norms;
    private readonly double[] _gradNorms;
    private readonly LayerStats?[] _layers;
    private readonly Dictionary<(int Layer, long Count), int[]> _samplePositions = [];
    private readonly float[] _sample;
    private readonly int _seed;

    public StatsCollector(SpecModel model, int sampleSize = 4096, int seed = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(sampleSize, 16);
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
            int[] positions = Positions(index, values.Length);
            for (int i = 0; i < positions.Length; i++)
            {
                _sample[i] = values[positions[i]];
            }

            sample = _sample;
        }

        LayerPlan plan = _model.Plan[index];
        _layers[index] = Summarise(plan.Name, LayerKinds.Name(plan.Kind), sample);
    }

    internal static LayerStats Summarise(string name, string kind, ReadOnlySpan<float> values)
    {
        if (values.IsEmpty)
        {
            return new LayerStats(name, kind, 0, 0, 0, 0, 0, new long[HistogramBins]);
        }

        float min = TensorPrimitives.Min(values);
        float max = TensorPrimitives.Max(values);
        double sum = 0, sumOfSquares = 0;
        int zeros = 0;
        var histogram = new long[HistogramBins];
        double scale = max > min ? HistogramBins / ((double)max - min) : 0;
        foreach (float v in values)
        {
            sum += v;
            sumOfSquares += (double)v * v;
            if (v == 0)
            {
                zeros++;
            }

            histogram[Math.Min(HistogramBins - 1, (int)((v - (double)min) * scale))]++;
        }

        double mean = sum / values.Length;
        double variance = Math.Max(0, (sumOfSquares / values.Length) - (mean * mean));
        return new LayerStats(name, kind, mean, Math.Sqrt(variance), min, max, (double)zeros / values.Length, histogram);
    }

    private int[] Positions(int layer, int count)
    {
        if (_samplePositions.TryGetValue((layer, count), out int[]? positions))
        {
            return positions;
        }

        // Floyd's algorithm: SampleSize distinct positions, uniform, sorted for sequential reads.
        var random = new Random(unchecked((_seed * 1_000_003) + (layer * 7_919) + count)); // HashCode is randomised per process
        var chosen = new HashSet<int>(SampleSize);
        for (int j = count - SampleSize; j < count; j++)
        {
            int t = random.Next(j + 1);
            chosen.Add(chosen.Contains(t) ? j : t);
        }

        positions = [.. chosen.Order()];
        _samplePositions[(layer, count)] = positions;
        return positions;
    }
}
