using TrainingService.Contracts.Specs;
using TrainingService.Contracts.Training;
using TrainingService.Training.Data;
using TrainingService.Training.Specs;

namespace TrainingService.Training.Loop;

/// <summary>The sizes of a dataset that a plan depends on: all in the stored record, so validating a job loads no pixels.</summary>
public sealed record DatasetShape(string Name, int Channels, int Height, int Width, int Classes, int TrainCount, int TestCount)
{
    public static DatasetShape Of(ImageDataset data) =>
        new(data.Name, data.Channels, data.Height, data.Width, data.Classes, data.Train.Count, data.Test?.Count ?? 0);
}

/// <summary>
/// A job as it will run, computed once from what was asked: the effective settings (a sanity check's overrides
/// applied), the validation split and the step counts. The API validates with it; the worker and the trainer run it.
/// </summary>
public sealed record TrainingPlan
{
    public required SpecAnalysis Model { get; init; }

    public required DatasetShape Dataset { get; init; }

    /// <summary>As the trainer uses them: a sanity check's overrides already applied.</summary>
    public required Hyperparameters Hyperparameters { get; init; }

    public required MonitoringOptions Monitoring { get; init; }

    /// <summary>The sanity check run instead of training, or null.</summary>
    public SanityOptions? Sanity { get; init; }

    /// <summary>Intra-op threads of the job's own training thread: fixed with the job, so a seed means one run.</summary>
    public int Threads { get; init; } = 1;

    /// <summary>Training samples held out for validation (0 when the test split or nothing is used).</summary>
    public int ValidationCount { get; init; }

    /// <summary>Validation runs on the dataset's test split.</summary>
    public bool ValidateOnTest { get; init; }

    /// <summary>Samples trained on in each epoch.</summary>
    public int TrainCount { get; init; }

    public long StepsPerEpoch { get; init; }

    /// <summary>Steps of the whole run; a sanity check's own length (an overfitSubset may stop earlier once it passes).</summary>
    public long TotalSteps { get; init; }

    /// <summary>What one training step holds in memory, by <see cref="EstimateMemoryBytes"/>: what admission compares with its budget.</summary>
    public long EstimatedMemoryBytes { get; init; }

    /// <summary>The plan of a job, or every reason it cannot be trained, each named by its path in the request.</summary>
    public static (TrainingPlan? Plan, IReadOnlyList<SpecIssue> Errors) Create(
        SpecAnalysis model, DatasetShape data, Hyperparameters hp, MonitoringOptions monitoring, SanityOptions? sanity = null, int threads = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        List<SpecIssue> errors = Validate(model, data, hp, monitoring);
        if (sanity is not null)
        {
            errors.AddRange(ValidateSanity(sanity).Select(e => new SpecIssue(null, null, e.Field, e.Message)));
        }

        if (errors.Count > 0)
        {
            return (null, errors);
        }

        Hyperparameters effective = sanity?.Check switch
        {
            // A few samples as one batch, no regularisation, no validation, a fixed rate: can the model learn them by heart?
            SanityCheck.OverfitSubset => hp with
            {
                BatchSize = Math.Min(sanity.Samples, data.TrainCount), Epochs = sanity.MaxSteps, WeightDecay = 0, Schedule = ScheduleKind.Constant,
                ValidationFraction = 0, Augmentation = null,
            },
            SanityCheck.LearningRateRangeTest => hp with
            {
                Epochs = (int)Math.Ceiling(sanity.Steps / Math.Ceiling(data.TrainCount / (double)hp.BatchSize)), Schedule = ScheduleKind.Constant,
                ValidationFraction = 0,
            },
            _ => hp,
        };
        int validation = HeldOut(data, effective);
        int train = sanity?.Check == SanityCheck.OverfitSubset ? effective.BatchSize : data.TrainCount - validation;
        long stepsPerEpoch = (train + effective.BatchSize - 1) / effective.BatchSize;
        return (new TrainingPlan
        {
            Model = model,
            Dataset = data,
            Hyperparameters = effective,
            Monitoring = monitoring,
            Sanity = sanity,
            Threads = threads,
            ValidationCount = validation,
            ValidateOnTest = validation == 0 && data.TestCount > 0 && effective.ValidationFraction is null,
            TrainCount = train,
            StepsPerEpoch = stepsPerEpoch,
            TotalSteps = sanity?.Check == SanityCheck.LearningRateRangeTest ? sanity.Steps : stepsPerEpoch * effective.Epochs,
            EstimatedMemoryBytes = EstimateMemoryBytes(model, effective),
        }, errors);
    }

    /// <summary>The plan of a job known to be valid (stored, or built by a test); an <see cref="ArgumentException"/> naming each field otherwise.</summary>
    public static TrainingPlan Require(
        SpecAnalysis model, DatasetShape data, Hyperparameters hp, MonitoringOptions monitoring, SanityOptions? sanity = null, int threads = 1)
    {
        (TrainingPlan? plan, IReadOnlyList<SpecIssue> errors) = Create(model, data, hp, monitoring, sanity, threads);
        return plan ?? throw new ArgumentException(string.Join("; ", errors.Select(e => $"{e.Field}: {e.Message}")));
    }

    private static List<SpecIssue> Validate(SpecAnalysis model, DatasetShape data, Hyperparameters hp, MonitoringOptions monitoring)
    {
        var errors = new List<SpecIssue>();
        void Check(bool ok, string field, string message)
        {
            if (!ok)
            {
                errors.Add(new SpecIssue(null, null, field, message));
            }
        }

        Check(hp.Epochs is >= 1 and <= 10_000, "hyperparameters.epochs", $"epochs must be from 1 to 10000, got {hp.Epochs}");
        Check(hp.BatchSize is >= 1 and <= 8192, "hyperparameters.batchSize", $"batchSize must be from 1 to 8192, got {hp.BatchSize}");
        Check(double.IsFinite(hp.LearningRate) && hp.LearningRate > 0 && hp.LearningRate <= 10, "hyperparameters.learningRate", $"learningRate must be above 0 and at most 10, got {hp.LearningRate}");
        Check(hp.Momentum is >= 0 and < 1, "hyperparameters.momentum", $"momentum must be in [0, 1), got {hp.Momentum}");
        Check(!hp.Nesterov || (hp.Optimizer == OptimizerKind.Sgd && hp.Momentum > 0), "hyperparameters.nesterov", "nesterov needs the sgd optimizer and momentum above 0");
        Check(hp.WeightDecay is >= 0 and <= 1, "hyperparameters.weightDecay", $"weightDecay must be in [0, 1], got {hp.WeightDecay}");
        Check(hp.StepSize >= 1, "hyperparameters.stepSize", $"stepSize must be at least 1 epoch, got {hp.StepSize}");
        Check(hp.Gamma is > 0 and <= 1, "hyperparameters.gamma", $"gamma must be in (0, 1], got {hp.Gamma}");
        Check(hp.ValidationFraction is null or (>= 0 and <= 0.9), "hyperparameters.validationFraction", $"validationFraction must be in [0, 0.9], got {hp.ValidationFraction}");
        if (hp.Augmentation is { } augmentation)
        {
            foreach ((string field, string message) in ValidateAugmentation(augmentation, data.Height, data.Width))
            {
                errors.Add(new SpecIssue(null, null, "hyperparameters.augmentation." + field, message));
            }
        }

        Check(monitoring.StatsEvery >= 0, "monitoring.statsEvery", $"statsEvery must be 0 (off) or more, got {monitoring.StatsEvery}");
        DiagnosticsOptions d = monitoring.Diagnostics ?? new DiagnosticsOptions();
        const string D = "monitoring.diagnostics.";
        Check(d.InitialLossTolerance > 0, D + "initialLossTolerance", $"initialLossTolerance must be above 0, got {d.InitialLossTolerance}");
        Check(d.ExplosionFactor > 1, D + "explosionFactor", $"explosionFactor must be above 1, got {d.ExplosionFactor}");
        Check(d.NotFallingSteps >= 30, D + "notFallingSteps", $"notFallingSteps must be at least 30 (it compares the first 10 steps with the last 20), got {d.NotFallingSteps}");
        Check(d.MinimumLossDrop is > 0 and < 1, D + "minimumLossDrop", $"minimumLossDrop must be in (0, 1), got {d.MinimumLossDrop}");
        Check(d.UpdateRatioLow > 0 && d.UpdateRatioHigh > d.UpdateRatioLow, D + "updateRatioHigh", $"updateRatioLow must be above 0 and below updateRatioHigh, got {d.UpdateRatioLow} and {d.UpdateRatioHigh}");
        Check(d.Window >= 1, D + "window", $"window must be at least 1 measurement, got {d.Window}");
        Check(d.WarmupMeasurements >= 0, D + "warmupMeasurements", $"warmupMeasurements must be 0 or more, got {d.WarmupMeasurements}");
        Check(d.DeadUnitFraction is > 0 and <= 1, D + "deadUnitFraction", $"deadUnitFraction must be in (0, 1], got {d.DeadUnitFraction}");
        Check(d.SaturatedFraction is > 0 and <= 1, D + "saturatedFraction", $"saturatedFraction must be in (0, 1], got {d.SaturatedFraction}");
        Check(d.GradientSpread > 1, D + "gradientSpread", $"gradientSpread must be above 1, got {d.GradientSpread}");
        Check(d.OverfittingEpochs >= 1, D + "overfittingEpochs", $"overfittingEpochs must be at least 1, got {d.OverfittingEpochs}");
        Check(d.OverfittingGap is >= 0 and <= 1, D + "overfittingGap", $"overfittingGap must be in [0, 1], got {d.OverfittingGap}");
        Check(d.PlateauEpochs >= 1, D + "plateauEpochs", $"plateauEpochs must be at least 1, got {d.PlateauEpochs}");
        Check(d.PlateauDelta >= 0, D + "plateauDelta", $"plateauDelta must be 0 or more, got {d.PlateauDelta}");
        if (!model.IsValid)
        {
            errors.AddRange(model.Result.Errors.Select(e => e with { Field = e.Field.Length == 0 ? "model" : $"model.{e.Field}" }));
            return errors;
        }

        int[] input = model.Plan[0].InputShape;
        Check(input[0] == data.Channels && input[1] == data.Height && input[2] == data.Width, "model.input",
            $"the model's input is {input[0]}×{input[1]}×{input[2]} (channels×height×width) but dataset {data.Name}'s images are {data.Channels}×{data.Height}×{data.Width}");
        Check(model.Classes == data.Classes, "model.layers",
            $"the last layer {model.Plan[^1].Name} scores {model.Classes} classes but dataset {data.Name} has {data.Classes}; set its units to {data.Classes}");
        int validation = HeldOut(data, hp);
        Check(data.TrainCount - validation >= 1, "hyperparameters.validationFraction", "no training samples are left after the validation split");
        return errors;
    }

    /// <summary>
    /// Bytes a training step of a valid model needs, roughly: every layer output of a batch in float32, three times
    /// (the forward outputs autograd keeps, their gradients, the temporaries of backward), plus parameters and their
    /// gradients and the optimiser's state (one buffer for momentum SGD, two for Adam).
    /// </summary>
    public static long EstimateMemoryBytes(SpecAnalysis model, Hyperparameters hp)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(hp);
        static long Elements(int[] shape) => shape.Aggregate(1L, (product, side) => product * side);
        long activations = Elements(model.Plan[0].InputShape) + model.Plan.Sum(layer => Elements(layer.OutputShape));
        long parameters = model.Plan.Sum(layer => layer.Parameters);
        int optimizerBuffers = hp.Optimizer == OptimizerKind.Sgd ? (hp.Momentum > 0 ? 1 : 0) : 2;
        return (activations * sizeof(float) * 3 * hp.BatchSize) + (parameters * sizeof(float) * (2 + optimizerBuffers));
    }

    private static int HeldOut(DatasetShape data, Hyperparameters hp) =>
        (int)Math.Round(data.TrainCount * (hp.ValidationFraction ?? (data.TestCount == 0 ? 0.1 : 0)));

    /// <summary>
    /// Augmentation settings for images of <paramref name="height"/>×<paramref name="width"/>: each error with its field
    /// as <paramref name="fields"/> names it (by default the option's path under "augmentation.").
    /// </summary>
    public static IEnumerable<(string Field, string Message)> ValidateAugmentation(
        AugmentationOptions augmentation, int height, int width, AugmentationFields? fields = null)
    {
        ArgumentNullException.ThrowIfNull(augmentation);
        (string paddingField, string translateField) = fields ?? new AugmentationFields();
        int side = Math.Min(height, width);
        if (augmentation.RandomCrop is { Padding: int padding } && (padding < 1 || padding > side / 2))
        {
            yield return (paddingField, $"{paddingField} must be from 1 to {side / 2} (half the image's shorter side, {side}), got {padding}");
        }

        if (augmentation.Translate is int translate && (translate < 1 || translate > side / 4))
        {
            yield return (translateField, side >= 4
                ? $"{translateField} must be from 1 to {side / 4} pixels (a quarter of the image's shorter side, {side}), or left out, got {translate}"
                : $"{translateField} needs images of at least 4×4 pixels; these are {height}×{width}");
        }
    }

    /// <summary>A sanity check's settings: each error with its field (under "sanity.").</summary>
    public static IEnumerable<(string Field, string Message)> ValidateSanity(SanityOptions sanity)
    {
        if (sanity.Check == SanityCheck.OverfitSubset)
        {
            if (sanity.Samples is < 2 or > 1000)
            {
                yield return ("sanity.samples", $"samples must be 2..1000, got {sanity.Samples}");
            }

            if (sanity.MaxSteps is < 1 or > 100_000)
            {
                yield return ("sanity.maxSteps", $"maxSteps must be 1..100000, got {sanity.MaxSteps}");
            }

            if (!(sanity.TargetLoss > 0))
            {
                yield return ("sanity.targetLoss", $"targetLoss must be above 0, got {sanity.TargetLoss}");
            }
        }
        else
        {
            if (!(sanity.MinLearningRate > 0 && sanity.MinLearningRate < sanity.MaxLearningRate && sanity.MaxLearningRate <= 100))
            {
                yield return ("sanity.maxLearningRate", $"the range needs 0 < minLearningRate < maxLearningRate ≤ 100, got {sanity.MinLearningRate} to {sanity.MaxLearningRate}");
            }

            if (sanity.Steps is < 10 or > 100_000)
            {
                yield return ("sanity.steps", $"steps must be 10..100000, got {sanity.Steps}");
            }
        }
    }
}

/// <summary>What a request calls the augmentation options that can be out of range.</summary>
public sealed record AugmentationFields(string RandomCropPadding = "randomCrop.padding", string Translate = "translate");
