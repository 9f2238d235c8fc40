using TrainingService.Contracts.Sweeps;

namespace TrainingService.Training.Sweeps;

/// <summary>
/// Asynchronous successive halving (ASHA; Li et al., MLSys 2020), the stopping form: every trial is planned for
/// <see cref="MaxEpochs"/>; at each rung (minEpochs·η^k epochs, below the maximum) a trial goes on only if its metric is
/// not worse than the cut of the values earlier trials reported at that rung — their (1 − 1/η) quantile when higher is
/// better, their 1/η quantile when lower is — so about one trial in η passes each rung. No trial waits for another: the
/// first to reach a rung always goes on.
/// </summary>
public sealed class Asha
{
    public Asha(int minEpochs, int reductionFactor, int maxEpochs)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(minEpochs, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(reductionFactor, 2);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxEpochs, minEpochs);
        MinEpochs = minEpochs;
        ReductionFactor = reductionFactor;
        MaxEpochs = maxEpochs;
        var rungs = new List<int>();
        for (long r = minEpochs; r < maxEpochs; r *= reductionFactor)
        {
            rungs.Add((int)r);
        }

        Rungs = rungs;
    }

    public int MinEpochs { get; }

    public int ReductionFactor { get; }

    public int MaxEpochs { get; }

    /// <summary>The epochs at whose end a trial is judged, ascending: (1, 3, 9) gives 1 and 3.</summary>
    public IReadOnlyList<int> Rungs { get; }

    /// <summary>
    /// Whether a trial that reports <paramref name="value"/> at a rung goes on, given the values earlier trials reported at
    /// that rung (in any order; non-finite ones are left out). A non-finite value never goes on.
    /// </summary>
    public bool Continues(double value, IReadOnlyCollection<double> earlier, MetricGoal goal) =>
        double.IsFinite(value) && (Cut(earlier, goal) is not double cut || (goal == MetricGoal.Maximize ? value >= cut : value <= cut));

    /// <summary>
    /// The cut of a rung: the (1 − 1/η) quantile of the finite values reported there before (1/η when lower is better);
    /// null when there are none, and the trial goes on.
    /// </summary>
    public double? Cut(IReadOnlyCollection<double> earlier, MetricGoal goal)
    {
        double[] finite = [.. earlier.Where(double.IsFinite)];
        double fraction = 1.0 / ReductionFactor;
        return finite.Length == 0 ? null : Quantile(finite, goal == MetricGoal.Maximize ? 1 - fraction : fraction);
    }

    /// <summary>The <paramref name="q"/> quantile with linear interpolation between the closest ranks (NumPy's default).</summary>
    public static double Quantile(IReadOnlyCollection<double> values, double q)
    {
        ArgumentOutOfRangeException.ThrowIfZero(values.Count);
        ArgumentOutOfRangeException.ThrowIfLessThan(q, 0);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(q, 1);
        double[] sorted = [.. values.Order()];
        double position = q * (sorted.Length - 1);
        int below = (int)Math.Floor(position);
        int above = Math.Min(below + 1, sorted.Length - 1);
        return sorted[below] + ((position - below) * (sorted[above] - sorted[below]));
    }
}
