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

    /// <summary>Seeds initialisation, shuffling, the validation split and dropout: the same seed gives the same run.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>
    /// Fraction of the training data held out for validation. Null: the dataset's test split when it has one,
    /// else 0.1. 0: no validation.
    /// </summary>
    public double? ValidationFraction { get; init; }
}

/// <summary>What the trainer measures besides the loss.</summary>
public sealed record MonitoringOptions
{
    /// <summary>Layer and parameter statistics every this many steps; 0 turns them off.</summary>
    public int StatsEvery { get; init; } = 10;
}
