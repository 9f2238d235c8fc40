using TrainingService.Contracts.Sweeps;

namespace TrainingService.Training.Sweeps;

/// <summary>
/// Asynchronous successive halving (ASHA; Li et al., MLSys 2020). Every trial is planned for <see cref="MaxEpochs"/> and
/// judged at each rung (minEpochs·η^k epochs, below the maximum), in one of two forms:
/// <list type="bullet">
/// <item>promotion (the paper's): a trial waits at the rung it reached, its slot given to the next trial; a waiting trial
/// is promoted — trained on to the next rung — once it is among the best ⌊n/η⌋ of the n trials that reported at that
/// rung (<see cref="Next"/>), higher rungs first. At the sweep's end the waiting trials not promoted are cut.</item>
/// <item>stopping: a trial goes on at once if its metric is not worse than the cut of the values earlier trials reported
/// at that rung — their (1 − 1/η) quantile when higher is better, their 1/η quantile when lower is — else it stops
/// (<see cref="Continues"/>). Nothing waits, but the first trials to reach a rung are judged against few others and
/// pass easily.</item>
/// </list>
/// </summary>
public sealed class Asha
{
    public Asha(int minEpochs, int reductionFactor, int maxEpochs, bool promotion = false)
    {
        Promotes = promotion;
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

    /// <summary>A stored sweep's asha, or null when it has none.</summary>
    public static Asha? Of(AshaOptions? options) => options is { MinEpochs: int min, ReductionFactor: int eta, MaxEpochs: int max }
        ? new Asha(min, eta, max, options.Mode == AshaModes.Promotion)
        : null;

    /// <summary>The promotion form (trials wait at rungs); false: the stopping form.</summary>
    public bool Promotes { get; }

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

    /// <summary>
    /// The promotion form's next step for a sweep: of the trials waiting at a rung, the one to train on to the next rung —
    /// at the highest rung that has one, the best waiting trial among the best ⌊n/η⌋ of the n reports there (ties to
    /// the lower trial index) — or null when none may go on yet. With <paramref name="ending"/> (no trial left to start
    /// and none training) a rung where no trial went on gives its best waiting trial, so a sweep always trains a trial
    /// to the end, even one of fewer than η trials.
    /// </summary>
    public Promotion? Next(IReadOnlyList<RungEntry> reports, MetricGoal goal, bool ending)
    {
        for (int r = Rungs.Count - 1; r >= 0; r--)
        {
            int rung = Rungs[r];
            RungEntry[] ranked = Ranked(reports, rung, goal);
            int n = reports.Count(e => e.Epoch == rung);
            int k = Math.Min(n / ReductionFactor, ranked.Length);
            for (int i = 0; i < k; i++)
            {
                if (ranked[i].Waiting)
                {
                    return new Promotion(ranked[i].Trial, rung, ranked[k - 1].Value, k, n);
                }
            }
        }

        if (ending)
        {
            for (int r = Rungs.Count - 1; r >= 0; r--)
            {
                int rung = Rungs[r];
                RungEntry[] ranked = Ranked(reports, rung, goal);
                if (!reports.Any(e => e.Epoch == rung && e.Promoted) && ranked.FirstOrDefault(e => e.Waiting) is { Waiting: true } best)
                {
                    return new Promotion(best.Trial, rung, best.Value, 1, reports.Count(e => e.Epoch == rung));
                }
            }
        }

        return null;
    }

    /// <summary>
    /// Where a waiting trial stands when the sweep ends without promoting it: the cut it missed — the ⌊n/η⌋-th best value
    /// at its rung, or the best where fewer than η reported (the end promotes that one) — and n. Null: no finite value.
    /// </summary>
    public (double? Cut, int Count) CutAt(IReadOnlyList<RungEntry> reports, int rung, MetricGoal goal)
    {
        RungEntry[] ranked = Ranked(reports, rung, goal);
        int n = reports.Count(e => e.Epoch == rung);
        int k = Math.Min(Math.Max(1, n / ReductionFactor), ranked.Length);
        return (k == 0 ? null : ranked[k - 1].Value, n);
    }

    /// <summary>The finite reports at a rung, best first, ties to the lower trial index.</summary>
    private static RungEntry[] Ranked(IReadOnlyList<RungEntry> reports, int rung, MetricGoal goal) =>
        [.. reports.Where(e => e.Epoch == rung && double.IsFinite(e.Value))
            .OrderBy(e => goal == MetricGoal.Maximize ? -e.Value : e.Value).ThenBy(e => e.Trial)];
}

/// <summary>A trial's report at a rung: waiting there for promotion, promoted (trained on), or neither (stopped, cut).</summary>
public readonly record struct RungEntry(int Trial, int Epoch, double Value, bool Waiting, bool Promoted);

/// <summary>The promotion form's decision: trial <paramref name="Trial"/> trains on from <paramref name="Epoch"/>, being among the best <paramref name="Best"/> of the <paramref name="Count"/> reports there, whose worst is <paramref name="Cut"/>.</summary>
public readonly record struct Promotion(int Trial, int Epoch, double Cut, int Best, int Count);
