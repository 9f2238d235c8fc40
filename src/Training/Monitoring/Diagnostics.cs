using TrainingService.Contracts.Training;

namespace TrainingService.Training.Monitoring;

/// <summary>
/// The known rules of babysitting a network, applied as the run goes: it is told every step's loss, every layer
/// statistics measurement and every epoch, and answers with alerts (a rule fires once, and again only after its
/// condition has cleared). Pure C#: the trainer feeds it, the tests feed it synthetic runs. docs/diagnostics.md.
/// </summary>
/// <param name="baseLearningRate">The job's learning rate before any schedule: a rate annealed far below it is not "too low".</param>
public sealed class Diagnostics(DiagnosticsOptions options, int classes, double baseLearningRate = double.NaN)
{
    private readonly DiagnosticsOptions _o = options;
    private readonly HashSet<string> _active = [];
    private readonly Queue<double> _recentLosses = new();
    private readonly Dictionary<string, Queue<double>> _ratios = [];
    private readonly Dictionary<string, Queue<double>> _saturation = [];
    private readonly Dictionary<string, int[]> _lastActive = [];
    private readonly Queue<double> _spreads = new();
    private double _bestValidationLoss = double.PositiveInfinity;
    private int _bestLossEpoch;
    private double _gapAtBestLoss;
    private double _firstLoss = double.NaN;
    private double _firstTenSum;
    private int _firstTenCount;
    private double _smoothed = double.NaN;
    private long _firstStep = -1;
    private int _measurements;
    private double _bestAccuracy = double.NegativeInfinity;
    private int _epochsWithoutImprovement;
    private bool _nonFinite;

    private double _baseLearningRate = baseLearningRate;

    /// <summary>A person changed the learning rate: "annealed" is judged against the new one.</summary>
    public void SetBaseLearningRate(double learningRate) => _baseLearningRate = learningRate;

    /// <summary>Set when a NaN or infinity appeared and the options say to stop: the job's failure reason.</summary>
    public string? Failure { get; private set; }

    public List<AlertEvent> OnStep(long step, double loss, double learningRate)
    {
        var alerts = new List<AlertEvent>();
        if (!_o.Enabled)
        {
            return alerts;
        }

        if (_firstStep < 0)
        {
            _firstStep = step;
        }

        if (!double.IsFinite(loss))
        {
            NonFinite(alerts, step, null, $"The loss became {loss} at step {step} (learning rate {learningRate:G3}).", learningRate);
            return alerts;
        }

        if (step == 1)
        {
            InitialLoss(alerts, loss);
        }

        if (double.IsNaN(_firstLoss))
        {
            _firstLoss = loss;
        }

        if (_firstTenCount < 10)
        {
            _firstTenSum += loss;
            _firstTenCount++;
        }

        _smoothed = double.IsNaN(_smoothed) ? loss : (0.9 * _smoothed) + (0.1 * loss);
        Raise(alerts, _smoothed > _o.ExplosionFactor * _firstLoss, "loss-explosion", null, step, "warning",
            () => $"The loss (smoothed over ~10 steps) is {_smoothed:G3}, {_smoothed / _firstLoss:F1}× its first value {_firstLoss:G3}.",
            () => $"The learning rate is too high: try {learningRate / 10:G2} instead of {learningRate:G3} (or find one with a learning-rate range test).");

        _recentLosses.Enqueue(loss);
        if (_recentLosses.Count > 20)
        {
            _recentLosses.Dequeue();
        }

        // Judged once, NotFallingSteps steps into a run that started at step 1 (a resumed run has no first steps to compare).
        if (_firstStep == 1 && step == _o.NotFallingSteps && _firstTenCount == 10)
        {
            double first = _firstTenSum / 10, recent = _recentLosses.Average();
            Raise(alerts, recent > (1 - _o.MinimumLossDrop) * first, "loss-not-falling", null, step, "warning",
                () => $"After {step} steps the loss is {recent:G3} (mean of the last 20), against {first:G3} over the first 10: it fell {100 * (first - recent) / first:F1}%, less than {100 * _o.MinimumLossDrop:F0}%.",
                () => $"If the learning rate ({learningRate:G3}) is small, raise it about 10×; if not, overfit ~20 samples first (overfitSubset) to find a bug in the labels, the loss or the data.");
        }

        return alerts;
    }

    /// <param name="activeUnits">ReLU layers: per unit, whether it had a positive output in this batch.</param>
    public List<AlertEvent> OnLayers(LayersEvent e, IReadOnlyDictionary<string, bool[]>? activeUnits, double learningRate)
    {
        var alerts = new List<AlertEvent>();
        if (!_o.Enabled)
        {
            return alerts;
        }

        foreach (ParameterStats p in e.Parameters)
        {
            if (!double.IsFinite(p.Norm) || !double.IsFinite(p.GradNorm))
            {
                NonFinite(alerts, e.Step, p.Name, $"{p.Name} became non-finite at step {e.Step} (‖w‖ = {p.Norm}, ‖∂L/∂w‖ = {p.GradNorm}).", learningRate);
                return alerts;
            }
        }

        _measurements++;
        bool warm = _measurements > _o.WarmupMeasurements;
        var kinds = e.Layers.ToDictionary(l => l.Name, l => l.Kind);
        var weights = e.Parameters.Where(p => IsWeight(p.Name, kinds)).ToList();

        foreach (ParameterStats p in weights)
        {
            Queue<double> window = Window(_ratios, p.Name, p.UpdateRatio, warm);
            bool full = window.Count == _o.Window;
            double median = full ? Median(window) : 0;
            Raise(alerts, full && window.All(r => r > _o.UpdateRatioHigh), "update-ratio-high", p.Name, e.Step, "warning",
                () => $"{p.Name}: updates are {median:G2} of the weights (median of the last {_o.Window} measurements), above {_o.UpdateRatioHigh:G1}; about 1e-3 is healthy.",
                () => $"The learning rate is too high for this layer: try about {learningRate * 1e-3 / Math.Max(median, 1e-12):G2} (now {learningRate:G3}).");
            bool annealed = learningRate < 0.1 * _baseLearningRate;
            Raise(alerts, full && !annealed && window.All(r => r < _o.UpdateRatioLow), "update-ratio-low", p.Name, e.Step, "warning",
                () => $"{p.Name}: updates are {median:G2} of the weights (median of the last {_o.Window} measurements), below {_o.UpdateRatioLow:G1}; about 1e-3 is healthy.",
                () => $"The learning rate is too low for this layer (or its gradient vanishes): try about {learningRate * 1e-3 / Math.Max(median, 1e-12):G2} (now {learningRate:G3}).");
        }

        foreach ((string layer, bool[] active) in activeUnits ?? new Dictionary<string, bool[]>())
        {
            if (!_lastActive.TryGetValue(layer, out int[]? last) || last.Length != active.Length)
            {
                _lastActive[layer] = last = new int[active.Length];
                Array.Fill(last, _measurements);
            }

            int dead = 0;
            for (int u = 0; u < active.Length; u++)
            {
                if (active[u])
                {
                    last[u] = _measurements;
                }
                else if (_measurements - last[u] >= _o.Window)
                {
                    dead++;
                }
            }

            double fraction = active.Length == 0 ? 0 : (double)dead / active.Length;
            Raise(alerts, warm && fraction > _o.DeadUnitFraction, "dead-relu", layer, e.Step, "warning",
                () => $"{layer}: {dead} of {active.Length} units ({fraction:P0}) had no positive output in any batch of the last {_o.Window} measurements.",
                () => "Dead ReLUs: lower the learning rate, check biases are not initialised negative, or use leaky ReLU; batch normalisation before the ReLU helps.");
        }

        foreach (LayerStats l in e.Layers.Where(l => l.Saturated is not null))
        {
            Queue<double> window = Window(_saturation, l.Name, l.Saturated!.Value, warm);
            Raise(alerts, window.Count == _o.Window && window.All(s => s > _o.SaturatedFraction), "saturation", l.Name, e.Step, "warning",
                () => $"{l.Name} ({l.Kind}): {Median(window):P0} of its outputs are within 2% of the function's limits, over the last {_o.Window} measurements; gradients barely pass through it.",
                () => "Saturated units: use ReLU, put batch normalisation before the activation, or initialise the weights smaller.");
        }

        // Gradients across depth: ‖∂L/∂w‖/‖w‖ of each weight tensor, first layer to last.
        double[] relative = [.. weights.Select(p => p.Norm > 0 ? p.GradNorm / p.Norm : 0)];
        if (relative.Length >= 2 && relative.All(r => r > 0))
        {
            double min = relative.Min(), max = relative.Max();
            Queue<double> window = Window(_spreads, max / min, warm);
            bool persistent = window.Count == _o.Window && window.All(s => s > _o.GradientSpread);
            int slowest = Array.IndexOf(relative, min);
            bool vanishing = slowest < relative.Length / 2.0;
            string first = weights[0].Name, lastName = weights[^1].Name;
            Raise(alerts, persistent && vanishing, "vanishing-gradients", weights[slowest].Name, e.Step, "warning",
                () => $"Relative gradients ‖∂L/∂w‖/‖w‖ span {max / min:G2}× across depth (from {relative[0]:G2} at {first} to {relative[^1]:G2} at {lastName}): the early layers hardly learn.",
                () => "Vanishing gradients: use ReLU instead of sigmoid/tanh, batch normalisation, a better initialisation, or a shallower network.");
            Raise(alerts, persistent && !vanishing, "exploding-gradients", weights[slowest].Name, e.Step, "warning",
                () => $"Relative gradients ‖∂L/∂w‖/‖w‖ span {max / min:G2}× across depth (from {relative[0]:G2} at {first} to {relative[^1]:G2} at {lastName}): the early layers get far larger updates than the late ones.",
                () => "Exploding gradients: lower the learning rate, add batch normalisation or clip gradients.");
        }

        return alerts;
    }

    public List<AlertEvent> OnEpoch(EpochEvent e, long step, double learningRate)
    {
        var alerts = new List<AlertEvent>();
        if (!_o.Enabled || e.ValidationAccuracy is not { } accuracy || e.ValidationLoss is not { } loss)
        {
            return alerts;
        }

        // Overfitting, as early stopping sees it: the validation loss has not come back to its best for K epochs and
        // is clearly above it, while the train−validation accuracy gap is wider than it was then.
        if (loss < _bestValidationLoss)
        {
            _bestValidationLoss = loss;
            _bestLossEpoch = e.Epoch;
            _gapAtBestLoss = Gap(e);
        }

        int since = e.Epoch - _bestLossEpoch;
        Raise(alerts, since >= _o.OverfittingEpochs && loss > _bestValidationLoss * 1.05 && Gap(e) > _gapAtBestLoss && Gap(e) >= _o.OverfittingGap,
            "overfitting", null, step, "warning",
            () => $"The validation loss is {loss:G3}, up from {_bestValidationLoss:G3} at epoch {_bestLossEpoch} ({since} epochs ago), and the train−validation accuracy gap grew from {_gapAtBestLoss:P1} to {Gap(e):P1} (train {e.TrainAccuracy:P1}, validation {accuracy:P1}).",
            () => $"Overfitting: add dropout or weight decay, augment the data, get more data, or stop early (epoch {_bestLossEpoch} had the best validation loss).",
            once: true);

        if (accuracy > _bestAccuracy + _o.PlateauDelta)
        {
            _bestAccuracy = accuracy;
            _epochsWithoutImprovement = 0;
        }
        else
        {
            _epochsWithoutImprovement++;
        }

        Raise(alerts, _epochsWithoutImprovement >= _o.PlateauEpochs, "plateau", null, step, "info",
            () => $"Validation accuracy has not improved by {_o.PlateauDelta:P1} for {_epochsWithoutImprovement} epochs (best {_bestAccuracy:P1}).",
            () => $"A plateau: decay the learning rate (e.g. to {learningRate / 10:G2} from {learningRate:G3}, or use the step or cosine schedule), or stop here.");
        return alerts;
    }

    private static double Gap(EpochEvent e) => e.TrainAccuracy - (e.ValidationAccuracy ?? e.TrainAccuracy);

    private static bool IsWeight(string parameter, Dictionary<string, string> kinds)
    {
        int dot = parameter.LastIndexOf('.');
        return dot > 0 && parameter[(dot + 1)..] == "weight"
            && kinds.TryGetValue(parameter[..dot], out string? kind) && kind is "conv2d" or "linear";
    }

    private Queue<double> Window(Dictionary<string, Queue<double>> windows, string key, double value, bool warm)
    {
        if (!windows.TryGetValue(key, out Queue<double>? window))
        {
            windows[key] = window = new Queue<double>();
        }

        return Window(window, value, warm);
    }

    private Queue<double> Window(Queue<double> window, double value, bool warm)
    {
        if (warm)
        {
            window.Enqueue(value);
            if (window.Count > _o.Window)
            {
                window.Dequeue();
            }
        }

        return window;
    }

    private static double Median(IEnumerable<double> values)
    {
        double[] sorted = [.. values.Order()];
        return sorted.Length == 0 ? double.NaN : sorted[sorted.Length / 2];
    }

    private void InitialLoss(List<AlertEvent> alerts, double loss)
    {
        double expected = Math.Log(classes);
        double off = Math.Abs(loss - expected) / expected;
        Raise(alerts, off > _o.InitialLossTolerance, "initial-loss", null, 1, "warning",
            () => $"The first step's loss is {loss:G3}; with {classes} classes and small random weights it should be near ln({classes}) = {expected:G3} ({off:P0} off).",
            () => loss > expected
                ? "The scores start far from zero: initialise the weights (the last layer's above all) smaller, and check the inputs are normalised."
                : "The loss starts suspiciously low: check that labels do not leak into the inputs and that they cover all the classes.");
    }

    private void NonFinite(List<AlertEvent> alerts, long step, string? layer, string message, double learningRate)
    {
        // Once per run: after the first NaN everything downstream is NaN too.
        if (_nonFinite)
        {
            return;
        }

        _nonFinite = true;
        bool stop = _o.OnNonFinite == NonFiniteAction.Stop;
        if (Raise(alerts, true, "non-finite", layer, step, "critical", () => message + (stop ? " The job stops; its last checkpoint is kept." : ""),
            () => $"Lower the learning rate (now {learningRate:G3}) about 10×, check the inputs for NaN, add batch normalisation or gradient clipping.") && stop)
        {
            Failure = message;
        }
    }

    /// <summary>Adds the alert when the condition holds and the rule is not already active for this layer; clears it otherwise.</summary>
    /// <param name="once">Fire at most once per run, even if the condition clears and returns (noisy epoch-level signals).</param>
    private bool Raise(List<AlertEvent> alerts, bool condition, string code, string? layer, long step, string severity, Func<string> message, Func<string> suggestion, bool once = false)
    {
        string key = $"{code}|{layer}";
        if (!condition)
        {
            if (!once)
            {
                _active.Remove(key);
            }

            return false;
        }

        if (!_active.Add(key))
        {
            return false;
        }

        alerts.Add(new AlertEvent { Code = code, Severity = severity, Layer = layer, Step = step, Message = message(), Suggestion = suggestion() });
        return true;
    }
}
