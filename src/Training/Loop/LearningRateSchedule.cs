using TrainingService.Contracts.Training;

namespace TrainingService.Training.Loop;

/// <summary>The learning rate as a pure function of position, so a resumed run needs no schedule state.</summary>
public static class LearningRateSchedule
{
    /// <param name="epoch">Epoch from 1.</param>
    /// <param name="step">Global step from 1.</param>
    /// <param name="totalSteps">Steps of the whole run.</param>
    public static double At(Hyperparameters hyperparameters, int epoch, long step, long totalSteps) => hyperparameters.Schedule switch
    {
        ScheduleKind.Step => hyperparameters.LearningRate * Math.Pow(hyperparameters.Gamma, (epoch - 1) / hyperparameters.StepSize),
        ScheduleKind.Cosine => 0.5 * hyperparameters.LearningRate * (1 + Math.Cos(Math.PI * (step - 1) / Math.Max(1, totalSteps))),
        _ => hyperparameters.LearningRate,
    };
}
