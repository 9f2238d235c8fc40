using TrainingService.Contracts.Training;
using TrainingService.Training.Specs;

namespace TrainingService.Training.Loop;

/// <summary>
/// The bytes of event history a job stores over its whole run, from its plan alone: a step event every step, a layers
/// event every statsEvery steps (an entry per layer and per parameter tensor), an epoch event and a snapshot event per
/// epoch, and its state events, each a database row of the stream's JSON with its key. Alerts, pauses and a person's
/// changes are left out: a few per run. Admission compares <see cref="Bytes"/> with Jobs:MaxHistoryBytesPerJob;
/// tests/Api.Tests/Jobs/HistoryEstimateTests.cs holds it to what real runs store.
/// </summary>
public sealed record HistoryEstimate
{
    // Bytes of each stored event's JSON (camelCase names, round-trip doubles of ~19 characters, the time to 100 ns), as
    // measured on real rows; names are added at their length, seq and step at their digits.
    /// <summary>A stored event's bytes besides its JSON: job id (36 characters), seq and kind in the row, again in the key's index, SQLite's headers.</summary>
    public const int RowBytes = 110;
    internal const int StepJson = 165; // epoch, loss, learningRate (a scheduled rate is ~16 characters longer), samplesPerSecond

    /// <summary>
    /// A step event's figures again, as the database keeps them for charts: SQLite's index of step events (job id, seq,
    /// bytes, step, epoch and the three figures' text: ~100 bytes an entry), PostgreSQL's generated columns (~60).
    /// </summary>
    public const int StepFiguresBytes = 100;
    internal const int LayersJson = 115; // "layers":[], "parameters":[]
    internal const int LayerJson = 255; // mean, std, min, max, zeroFraction, 32 histogram counts of ≤ 4,096 values, ReLU's or tanh's figure
    internal const int ParameterJson = 103; // norm, gradNorm, updateRatio
    internal const int EpochJson = 195; // train and validation loss and accuracy
    internal const int SnapshotJson = 85;
    internal const int StateJson = 82; // Running at the start, Succeeded at the end
    internal const int ThinnedJson = 85; // a thinned layers event: seq, kind, time, step and "thinned":true

    /// <summary>Steps of the whole run: a step event each.</summary>
    public long Steps { get; init; }

    /// <summary>Steps whose layer statistics are recorded: a layers event each.</summary>
    public long Measurements { get; init; }

    /// <summary>Epochs of the run: an epoch event each, and a snapshot event after each of a training run's.</summary>
    public long Epochs { get; init; }

    /// <summary>Layers whose output statistics each layers event holds.</summary>
    public int Layers { get; init; }

    /// <summary>Parameter tensors whose norms and update ratios each layers event holds.</summary>
    public int ParameterTensors { get; init; }

    /// <summary>One step event's row.</summary>
    public long StepBytes { get; init; }

    /// <summary>One layers event's row: what monitoring.statsEvery multiplies.</summary>
    public long MeasurementBytes { get; init; }

    /// <summary>One layers event's row once thinned (its statistics dropped).</summary>
    public long ThinnedMeasurementBytes { get; init; }

    /// <summary>One epoch's epoch and snapshot rows.</summary>
    public long EpochBytes { get; init; }

    /// <summary>The rows of the run's start and end.</summary>
    public long FixedBytes { get; init; }

    /// <summary>The whole run's history.</summary>
    public long Bytes => FixedBytes + (Steps * StepBytes) + (Measurements * MeasurementBytes) + (Epochs * EpochBytes);

    /// <summary>
    /// The history the run keeps at the least: every layers event thinned. Thinning keeps a job's stored history under
    /// Jobs:MaxHistoryBytesPerJob; what it cannot thin (every step's loss, epochs, states) must fit in half of it.
    /// </summary>
    public HistoryEstimate Kept => this with { MeasurementBytes = Math.Min(MeasurementBytes, ThinnedMeasurementBytes) };

    /// <summary>What the layer statistics take of <see cref="Bytes"/>.</summary>
    public long StatisticsBytes => Measurements * MeasurementBytes;

    /// <summary>The request field that sets the run's length: hyperparameters.epochs, or a sanity check's steps.</summary>
    public required string LengthField { get; init; }

    /// <summary>The run's length as that field gives it (epochs, or a sanity check's steps).</summary>
    public long Length { get; init; }

    /// <summary>The field to change to write less: monitoring.statsEvery when statistics are most of it, else <see cref="LengthField"/>.</summary>
    public string DrivingField => StatisticsBytes * 2 > Bytes ? "monitoring.statsEvery" : LengthField;

    public static HistoryEstimate Of(TrainingPlan plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        long steps = plan.TotalSteps;
        long measurements = plan.Monitoring.StatsEvery > 0 ? steps / plan.Monitoring.StatsEvery : 0;
        long epochs = (steps + plan.StepsPerEpoch - 1) / plan.StepsPerEpoch;
        // Seq and step are written in full in every step and layers event: ~2 × their digits.
        int digits = (steps + measurements + (2 * epochs)).ToString(System.Globalization.CultureInfo.InvariantCulture).Length;
        long layers = 0, parameters = 0;
        int tensors = 0;
        foreach (LayerPlan layer in plan.Model.Plan)
        {
            layers += LayerJson + layer.Name.Length + layer.Kind.Name.Length;
            IReadOnlyList<string> names = layer.Kind.ParameterNames(layer);
            tensors += names.Count;
            parameters += names.Sum(name => ParameterJson + layer.Name.Length + 1 + name.Length);
        }

        (string lengthField, long length) = plan.Sanity switch
        {
            { Check: SanityCheck.LearningRateRangeTest } sanity => ("sanity.steps", sanity.Steps),
            { } sanity => ("sanity.maxSteps", sanity.MaxSteps),
            null => ("hyperparameters.epochs", plan.Hyperparameters.Epochs),
        };
        return new HistoryEstimate
        {
            Steps = steps,
            Measurements = measurements,
            Epochs = epochs,
            Layers = plan.Model.Plan.Count,
            ParameterTensors = tensors,
            StepBytes = RowBytes + StepJson + StepFiguresBytes + (2 * digits),
            MeasurementBytes = RowBytes + LayersJson + (2 * digits) + layers + parameters,
            ThinnedMeasurementBytes = RowBytes + ThinnedJson + (2 * digits),
            EpochBytes = RowBytes + EpochJson + (plan.Sanity is null ? RowBytes + SnapshotJson : 0), // a sanity check takes no snapshots
            FixedBytes = 2 * (RowBytes + StateJson),
            LengthField = lengthField,
            Length = length,
        };
    }

    /// <summary>The smallest statsEvery whose run fits in <paramref name="limit"/> bytes; 0 when only no statistics fit, null when nothing does.</summary>
    public long? StatsEveryWithin(long limit)
    {
        long without = Bytes - StatisticsBytes;
        if (without > limit)
        {
            return null;
        }

        long measurements = (limit - without) / MeasurementBytes;
        long every = (Steps / (measurements + 1)) + 1; // the least every with Steps / every ≤ measurements
        return every > Steps ? 0 : every;
    }

    /// <summary>The longest run (in <see cref="LengthField"/>'s unit) that fits in <paramref name="limit"/> bytes: history grows with the length.</summary>
    public long LengthWithin(long limit) =>
        Bytes <= FixedBytes ? Length : (long)(Length * ((double)Math.Max(0, limit - FixedBytes) / (Bytes - FixedBytes)));
}
