namespace TrainingService.Api.Outputs;

/// <summary>How many loaded things the outputs keep in memory (configuration section Outputs).</summary>
public sealed class OutputsOptions
{
    /// <summary>Jobs whose model stays loaded for predictions; each holds its weights in native memory.</summary>
    public int LoadedModels { get; set; } = 8;

    /// <summary>Jobs whose latest visual snapshot (filters and feature maps) stays read.</summary>
    public int Snapshots { get; set; } = 8;
}

public static class OutputsSetup
{
    public static IServiceCollection AddOutputs(this IServiceCollection services)
    {
        services.AddOptions<OutputsOptions>().BindConfiguration("Outputs")
            .Validate(o => o.LoadedModels >= 1 && o.Snapshots >= 1, "Outputs:LoadedModels and Outputs:Snapshots must be at least 1")
            .ValidateOnStart();
        services.AddOptions<PredictOptions>().BindConfiguration("Predict")
            .Validate(o => o.MaxImages >= 1 && o.MaxPixelsPerRequest >= 1 && o.MaxRequestBytes >= 1, "Predict: every cap must be positive")
            .ValidateOnStart();
        services.AddSingleton<LoadedModels>();
        services.AddSingleton<Snapshots>();
        return services;
    }
}
