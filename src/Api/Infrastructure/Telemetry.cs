using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using TrainingService.Api.Access;
using TrainingService.Api.Jobs;
using TrainingService.Api.Streaming;
using TrainingService.Contracts.Streaming;
using TrainingService.Contracts.Training;
using TrainingService.Training.Loop;

namespace TrainingService.Api.Infrastructure;

/// <summary>
/// OpenTelemetry: metrics scraped by Prometheus at /metrics (an admin key, sent as a bearer token, like every other
/// request that reads all jobs), and traces sent over OTLP when Telemetry:OtlpEndpoint (or OTEL_EXPORTER_OTLP_ENDPOINT)
/// names a collector. The node's name (Telemetry:Node, else the machine's) is on every metric and log line.
/// </summary>
public static class Telemetry
{
    public static string NodeName(IConfiguration configuration) => configuration["Telemetry:Node"] is { Length: > 0 } node ? node : Environment.MachineName;

    public static IServiceCollection AddTelemetry(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSingleton<TrainingMetrics>();
        string? otlp = configuration["Telemetry:OtlpEndpoint"] is { Length: > 0 } endpoint ? endpoint : configuration["OTEL_EXPORTER_OTLP_ENDPOINT"];
        OpenTelemetry.OpenTelemetryBuilder telemetry = services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService("trainingservice", serviceInstanceId: NodeName(configuration)))
            .WithMetrics(metrics => metrics
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddRuntimeInstrumentation()
                .AddMeter(TrainingMetrics.MeterName, TrainingMeter.Name, "Microsoft.EntityFrameworkCore")
                .AddPrometheusExporter(o => o.ScrapeResponseCacheDurationMilliseconds = 0));
        if (!string.IsNullOrEmpty(otlp))
        {
            // Traces cost a little on every request and query: made only when someone collects them.
            telemetry.WithTracing(tracing => tracing
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddEntityFrameworkCoreInstrumentation()
                .AddOtlpExporter(o => o.Endpoint = new Uri(otlp)));
        }

        return services;
    }

    public static WebApplication MapMetrics(this WebApplication app)
    {
        app.MapPrometheusScrapingEndpoint("/metrics").WithMetadata(new HttpMethodMetadata(["GET"])).WithTags("Health")
            .RequireAuthorization(AccessSetup.Admin);
        return app;
    }
}

/// <summary>
/// The service's own metrics (meter "TrainingService"): the queue, running jobs and each one's latest figures (so a
/// Grafana board can watch training too), events persisted, dashboards connected. Per-job series exist only while the
/// job runs on this node: their number is bounded by Jobs:Concurrency.
/// </summary>
public sealed class TrainingMetrics
{
    public const string MeterName = "TrainingService";

    private readonly Counter<long> _events;
    private readonly Counter<long> _leases;
    private readonly ConcurrentDictionary<Guid, JobFigures> _running = new();

    public TrainingMetrics(IMeterFactory meters, JobDispatch dispatch, JobControls controls, HubConnections hub, RedisBus? redis = null)
    {
        Meter meter = meters.Create(MeterName);
        meter.CreateObservableGauge("trainingservice.jobs.queued", () => dispatch.Queued, unit: "{job}", description: "Jobs waiting for a worker, in the whole service (counted by this node's worker every 2 s; 0 on an api node)");
        meter.CreateObservableGauge("trainingservice.jobs.running", () => controls.Running, unit: "{job}", description: "Jobs training on this node");
        meter.CreateObservableGauge("trainingservice.hub.connections", () => hub.Count, unit: "{connection}", description: "Dashboards and other hub clients connected to this node");
        meter.CreateObservableGauge("trainingservice.job.samples_per_second", () => Each(f => f.SamplesPerSecond), unit: "{sample}/s", description: "Training speed of each running job");
        meter.CreateObservableGauge("trainingservice.job.loss", () => Each(f => f.Loss), description: "Latest step's loss of each running job");
        meter.CreateObservableGauge("trainingservice.job.validation_accuracy", () => Each(f => f.ValidationAccuracy), description: "Latest epoch's validation accuracy of each running job");
        meter.CreateObservableGauge("trainingservice.job.step", () => Each(f => f.Step), unit: "{step}", description: "Latest step of each running job");
        if (redis is not null)
        {
            meter.CreateObservableCounter("trainingservice.redis.messages", () => new[]
            {
                new Measurement<long>(redis.Published, new KeyValuePair<string, object?>("outcome", "published")),
                new Measurement<long>(redis.Received, new KeyValuePair<string, object?>("outcome", "received")),
                new Measurement<long>(redis.Failed, new KeyValuePair<string, object?>("outcome", "failed")),
            }, unit: "{message}", description: "Redis messages (live events, revocations) this node published, received, or failed to publish");
        }

        _events = meter.CreateCounter<long>("trainingservice.events.persisted", unit: "{event}", description: "Job events persisted and sent");
        _leases = meter.CreateCounter<long>("trainingservice.leases.renewals", unit: "{renewal}", description: "Lease renewals of this node's runs, by outcome (held, lost)");
    }

    /// <summary>Called by the event pump once events are in the history.</summary>
    internal void LeaseRenewed(bool held) => _leases.Add(1, new KeyValuePair<string, object?>("outcome", held ? "held" : "lost"));

    internal void Persisted(Guid jobId, List<StreamEvent> events)
    {
        _events.Add(events.Count);
        JobFigures figures = _running.GetOrAdd(jobId, _ => new JobFigures());
        foreach (StreamEvent e in events)
        {
            switch (e.Kind)
            {
                case "step":
                    figures.Step = e.Step;
                    figures.Loss = e.Loss;
                    figures.SamplesPerSecond = e.SamplesPerSecond;
                    break;
                case "epoch" when e.ValidationAccuracy is not null:
                    figures.ValidationAccuracy = e.ValidationAccuracy;
                    break;
                case "state" when e.State is { } state && (state.IsEnded() || state == RunState.Queued):
                    _running.TryRemove(jobId, out _);
                    return;
            }
        }
    }

    private IEnumerable<Measurement<double>> Each(Func<JobFigures, double?> figure)
    {
        foreach ((Guid jobId, JobFigures figures) in _running)
        {
            if (figure(figures) is double value && double.IsFinite(value))
            {
                yield return new Measurement<double>(value, new KeyValuePair<string, object?>("job.id", jobId.ToString()));
            }
        }
    }

    private sealed class JobFigures
    {
        public double? Step { get; set; }

        public double? Loss { get; set; }

        public double? SamplesPerSecond { get; set; }

        public double? ValidationAccuracy { get; set; }
    }
}
