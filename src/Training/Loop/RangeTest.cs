using TrainingService.Contracts.Training;

namespace TrainingService.Training.Loop;

/// <summary>
/// The learning-rate range test (Smith 2017; the "LR finder"): the rate grows exponentially from the first step to the
/// last; the loss, smoothed, is recorded against it; the test stops once the smoothed loss passes four times its best
/// (or turns NaN). Suggested: a tenth of the rate at the lowest smoothed loss — safely below where it blows up.
/// </summary>
internal sealed class RangeTest(SanityOptions options)
{
    private readonly List<(double Rate, double Smoothed)> _curve = [];
    private double _average;
    private int _count;
    private double _best = double.PositiveInfinity;

    public bool Done { get; private set; }

    public double LearningRate(long step) =>
        options.MinLearningRate * Math.Pow(options.MaxLearningRate / options.MinLearningRate, Math.Min(1, (step - 1) / (double)Math.Max(1, options.Steps - 1)));

    public void Add(double rate, double loss)
    {
        if (!double.IsFinite(loss))
        {
            Done = true;
            return;
        }

        _average = (0.9 * _average) + (0.1 * loss);
        double smoothed = _average / (1 - Math.Pow(0.9, ++_count));
        _curve.Add((rate, smoothed));
        _best = Math.Min(_best, smoothed);
        Done = _count > 5 && smoothed > 4 * _best;
    }

    public SanityEvent Verdict(long step)
    {
        if (_curve.Count < 5)
        {
            return new SanityEvent
            {
                Check = SanityCheck.LearningRateRangeTest,
                Passed = false,
                Step = step,
                Message = $"The loss blew up after {_curve.Count} steps, already at a learning rate of {LearningRate(step):G2}: start the range lower (minLearningRate).",
            };
        }

        int lowest = 0;
        for (int i = 1; i < _curve.Count; i++)
        {
            if (_curve[i].Smoothed < _curve[lowest].Smoothed)
            {
                lowest = i;
            }
        }

        double first = _curve[0].Smoothed, min = _curve[lowest].Smoothed, rateAtMin = _curve[lowest].Rate;
        bool learnt = min < 0.9 * first;
        double suggestion = rateAtMin / 10;
        string end = Done ? $"blew up past {_curve[^1].Rate:G2}" : $"had not blown up by {_curve[^1].Rate:G2} (the end of the range)";
        return new SanityEvent
        {
            Check = SanityCheck.LearningRateRangeTest,
            Passed = learnt,
            Step = step,
            SuggestedLearningRate = learnt ? suggestion : null,
            Message = learnt
                ? $"The loss fell from {first:G3} to its lowest, {min:G3}, at a learning rate of {rateAtMin:G2}, and {end}. Suggested learning rate: {suggestion:G2} (a tenth of that)."
                : $"The loss never fell by 10% (from {first:G3}, lowest {min:G3} at {rateAtMin:G2}) and {end}: widen the range, or look for a bug before tuning the rate.",
        };
    }
}
