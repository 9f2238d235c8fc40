using System.Text.Json.Serialization;

namespace TrainingService.Contracts.Training;

[JsonConverter(typeof(JsonStringEnumConverter<OptimizerKind>))]
public enum OptimizerKind
{
    [JsonStringEnumMemberName("sgd")] Sgd,
    [JsonStringEnumMemberName("adam")] Adam,
    [JsonStringEnumMemberName("adamw")] AdamW,
}

[JsonConverter(typeof(JsonStringEnumConverter<ScheduleKind>))]
public enum ScheduleKind
{
    /// <summary>The learning rate never changes.</summary>
    [JsonStringEnumMemberName("constant")] Constant,

    /// <summary>Multiplied by gamma every stepSize epochs.</summary>
    [JsonStringEnumMemberName("step")] Step,

    /// <summary>Follows half a cosine from the learning rate down to 0 over the whole run, step by step.</summary>
    [JsonStringEnumMemberName("cosine")] Cosine,
}

/// <summary>How to train. Every field has a default.</summary>
public sealed record Hyperparameters
{
    /// <summary>Passes over the training data.</summary>
    public int Epochs { get; init; } = 10;

    /// <summary>Samples per step.</summary>
    public int BatchSize { get; init; } = 64;

    /// <summary>sgd, adam or adamw.</summary>
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.Sgd;

    /// <summary>The initial learning rate.</summary>
    public double LearningRate { get; init; } = 0.01;

    /// <summary>SGD momentum (0 for plain SGD).</summary>
    public double Momentum { get; init; } = 0.9;

    /// <summary>SGD: use Nesterov momentum.</summary>
    public bool Nesterov { get; init; }

    /// <summary>L2 penalty (sgd, adam) or decoupled weight decay (adamw).</summary>
    public double WeightDecay { get; init; }

    /// <summary>constant, step or cosine.</summary>
    public ScheduleKind Schedule { get; init; } = ScheduleKind.Constant;

    /// <summary>step schedule: epochs between decays.</summary>
    public int StepSize { get; init; } = 5;

    /// <summary>step schedule: the factor applied at each decay.</summary>
    public double Gamma { get; init; } = 0.1;

    /// <summary>Seeds initialisation, shuffling, the validation split, dropout and augmentation: the same seed gives the same run.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>
    /// Fraction of the training data held out for validation. Null: the dataset's test split when it has one,
    /// else 0.1. 0: no validation.
    /// </summary>
    public double? ValidationFraction { get; init; }

    /// <summary>Random changes to each training image, drawn per (seed, epoch, image); null: none. Never applied to validation, test or predictions.</summary>
    public AugmentationOptions? Augmentation { get; init; }
}

/// <summary>
/// Training-image augmentation, in this order: random crop, horizontal flip, translation. Each part is optional (absent:
/// not applied). Pixels moved in from outside the image are 0 (black) before normalisation, as in torchvision.
/// </summary>
public sealed record AugmentationOptions
{
    /// <summary>Zero-pad each side by padding pixels, then crop back to the image's size at a uniformly random offset (torchvision's RandomCrop(size, padding)).</summary>
    public RandomCropOptions? RandomCrop { get; init; }

    /// <summary>Mirror left to right with probability 0.5.</summary>
    public bool HorizontalFlip { get; init; }

    /// <summary>Shift by a uniformly random whole number of pixels in [−translate, translate], drawn for each axis; null: none.</summary>
    public int? Translate { get; init; }

    /// <summary>Whether any part is on.</summary>
    [JsonIgnore]
    public bool IsOn => RandomCrop is not null || HorizontalFlip || Translate is not null;
}

/// <summary>Random crop with zero padding.</summary>
public sealed record RandomCropOptions
{
    /// <summary>Pixels of zero padding on each side, 1 to half the image's shorter side.</summary>
    public required int Padding { get; init; }
}

/// <summary>What the trainer measures besides the loss.</summary>
public sealed record MonitoringOptions
{
    /// <summary>Layer and parameter statistics every this many steps; 0 turns them off.</summary>
    public int StatsEvery { get; init; } = 10;

    /// <summary>The babysitting rules the trainer applies as it goes, each raising an alert event; see docs/diagnostics.md.</summary>
    public DiagnosticsOptions Diagnostics { get; init; } = new();
}

/// <summary>What to do when the loss or a weight becomes NaN or infinite.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<NonFiniteAction>))]
public enum NonFiniteAction
{
    /// <summary>Alert and fail the job; the last checkpoint (from before) is kept.</summary>
    [JsonStringEnumMemberName("stop")] Stop,

    /// <summary>Alert only; training goes on.</summary>
    [JsonStringEnumMemberName("alert")] Alert,
}

/// <summary>
/// Thresholds of the diagnostic rules, per job. Rules that read layer statistics run only when statsEvery > 0;
/// "measurements" counts those statistics steps. docs/diagnostics.md explains each rule.
/// </summary>
public sealed record DiagnosticsOptions
{
    public bool Enabled { get; init; } = true;

    /// <summary>initial-loss: alert when the first step's loss differs from ln(classes) by more than this fraction of it.</summary>
    public double InitialLossTolerance { get; init; } = 0.5;

    /// <summary>non-finite: stop the job (default) or only alert.</summary>
    public NonFiniteAction OnNonFinite { get; init; } = NonFiniteAction.Stop;

    /// <summary>loss-explosion: alert when the loss, smoothed over ~10 steps, exceeds this multiple of the first step's loss.</summary>
    public double ExplosionFactor { get; init; } = 3;

    /// <summary>loss-not-falling: after this many steps, the mean loss of the last 20 must be below the first 10 steps' mean by <see cref="MinimumLossDrop"/>.</summary>
    public int NotFallingSteps { get; init; } = 300;

    /// <summary>loss-not-falling: the fraction by which the loss must have fallen.</summary>
    public double MinimumLossDrop { get; init; } = 0.05;

    /// <summary>
    /// update-ratio-high: a weight tensor's ‖Δw‖/‖w‖ above this in every one of the last <see cref="Window"/> measurements.
    /// About 1e-3 is the rule of thumb for healthy; a healthy LeNet-5 on Fashion-MNIST (SGD 0.05, momentum 0.9) keeps
    /// conv1 at 1.4–3e-2 through its first 600 steps, hence 3e-2 (docs/diagnostics.md).
    /// </summary>
    public double UpdateRatioHigh { get; init; } = 3e-2;

    /// <summary>update-ratio-low: below this in every one of the last <see cref="Window"/> measurements (not judged while a schedule has taken the learning rate under a tenth of its start).</summary>
    public double UpdateRatioLow { get; init; } = 1e-5;

    /// <summary>Measurements a layer-statistics rule looks back over (persistence).</summary>
    public int Window { get; init; } = 10;

    /// <summary>Measurements skipped before the layer-statistics rules start (the first steps are unlike the rest).</summary>
    public int WarmupMeasurements { get; init; } = 5;

    /// <summary>dead-relu: alert when more than this fraction of a ReLU layer's units had no positive output in every batch of the window.</summary>
    public double DeadUnitFraction { get; init; } = 0.5;

    /// <summary>saturation: alert when more than this fraction of a sigmoid or tanh layer's outputs are within 2% of its limits, over the window.</summary>
    public double SaturatedFraction { get; init; } = 0.5;

    /// <summary>vanishing-/exploding-gradients: alert when weight layers' ‖∂L/∂w‖/‖w‖ differ across depth by more than this factor, over the window.</summary>
    public double GradientSpread { get; init; } = 1e4;

    /// <summary>overfitting: alert when the validation loss has stayed over 5% above its best for this many epochs while the train−validation accuracy gap widened.</summary>
    public int OverfittingEpochs { get; init; } = 3;

    /// <summary>overfitting: and the gap is at least this large.</summary>
    public double OverfittingGap { get; init; } = 0.05;

    /// <summary>plateau: alert (info) when the best validation accuracy has not improved by <see cref="PlateauDelta"/> for this many epochs.</summary>
    public int PlateauEpochs { get; init; } = 4;

    public double PlateauDelta { get; init; } = 0.002;
}

/// <summary>Steer a job: new values for any of these apply from its next step (PATCH /jobs/{id}/hyperparameters).</summary>
public sealed record HyperparameterChange
{
    /// <summary>The new base learning rate, in (0, 10]; a schedule still scales it.</summary>
    public double? LearningRate { get; init; }

    /// <summary>The new momentum, in [0, 1); sgd only.</summary>
    public double? Momentum { get; init; }

    /// <summary>The new weight decay, in [0, 1].</summary>
    public double? WeightDecay { get; init; }

    /// <summary>Why (kept with the change in the job's history), at most 200 characters (configuration Jobs:MaxReasonLength).</summary>
    public string? Reason { get; init; }
}

/// <summary>A sanity check to run instead of normal training.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<SanityCheck>))]
public enum SanityCheck
{
    /// <summary>Train on a few samples without regularisation: a correct model and pipeline drive the loss to ~0.</summary>
    [JsonStringEnumMemberName("overfitSubset")] OverfitSubset,

    /// <summary>Raise the learning rate exponentially step by step, record the loss, stop when it blows up, suggest a rate.</summary>
    [JsonStringEnumMemberName("learningRateRangeTest")] LearningRateRangeTest,
}

/// <summary>POST /jobs "sanity": run a sanity check instead of training (docs/diagnostics.md).</summary>
public sealed record SanityOptions
{
    public required SanityCheck Check { get; init; }

    /// <summary>overfitSubset: how many training samples (one batch), 2..1000.</summary>
    public int Samples { get; init; } = 20;

    /// <summary>overfitSubset: at most this many steps.</summary>
    public int MaxSteps { get; init; } = 300;

    /// <summary>overfitSubset: passed once the batch loss is below this.</summary>
    public double TargetLoss { get; init; } = 0.01;

    /// <summary>learningRateRangeTest: the first step's learning rate.</summary>
    public double MinLearningRate { get; init; } = 1e-6;

    /// <summary>learningRateRangeTest: the last step's learning rate.</summary>
    public double MaxLearningRate { get; init; } = 1;

    /// <summary>
    /// learningRateRangeTest: steps from the first rate to the last. 300 by default: over six decades, 100 steps leave
    /// too few at the rates where a model starts to learn (LeNet-5 on the built-in shapes with SGD: "the loss never fell
    /// by 10%"). The test ends sooner once the loss blows up.
    /// </summary>
    public int Steps { get; init; } = 300;
}
