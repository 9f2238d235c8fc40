using Microsoft.AspNetCore.SignalR;
using Serilog;
using TrainingService.Api.Access;
using TrainingService.Api.Datasets;
using TrainingService.Api.Infrastructure;
using TrainingService.Api.Jobs;
using TrainingService.Api.Models;
using TrainingService.Api.Outputs;
using TrainingService.Api.Persistence;
using TrainingService.Api.Quotas;
using TrainingService.Api.Streaming;
using TrainingService.Api.Sweeps;
using TrainingService.Training.Native;

// glibc's malloc settings first, before the host starts its threads: each thread's first allocation may make an arena,
// and an arena made before the limit stays.
NativeTuning.Apply();

// A plain logger until the host's is built (a reloadable bootstrap logger can be frozen once per process, which
// breaks hosts built side by side in tests).
Log.Logger = new LoggerConfiguration().WriteTo.Console().CreateLogger();

try
{
    WebApplicationBuilder builder = WebApplication.CreateBuilder(args);
    NodeRole role = JobDispatch.RoleOf(builder.Configuration);
    builder.Services.AddSerilog((services, logger) => logger
        .ReadFrom.Configuration(builder.Configuration)
        .ReadFrom.Services(services)
        .Enrich.FromLogContext()
        .Enrich.WithProperty("Node", Telemetry.NodeName(builder.Configuration))
        .Filter.ByExcluding(e => e.Exception is HubException) // a refused hub command is an answer to the caller, not a server error
        .WriteTo.Console(outputTemplate: "[{Timestamp:HH:mm:ss} {Level:u3}] {Message:lj} {Properties:j}{NewLine}{Exception}"), preserveStaticLogger: true);
    builder.Services.AddApiBasics();
    builder.Services.AddReverseProxy();
    builder.Services.AddCrossOrigin();
    builder.Services.AddBodyLimits();
    builder.Services.AddRateLimits();
    builder.Services.AddStorage(builder.Configuration);
    builder.Services.AddAccess();
    builder.Services.AddQuotas();
    builder.Services.AddDatasets();
    builder.Services.AddSpecs();
    builder.Services.AddStreaming(builder.Configuration);
    builder.Services.AddJobs(role);
    builder.Services.AddSweeps();
    builder.Services.AddOutputs();
    builder.Services.AddSwagger();
    builder.Services.AddTelemetry(builder.Configuration);

    WebApplication app = builder.Build();
    await using (await app.StartupLockAsync()) // nodes starting together take turns
    {
        await app.MigrateDatabaseAsync();
        await app.SweepStorageAsync();
        if (role != NodeRole.Worker)
        {
            await app.EnsureAdminAsync(); // api nodes answer people; a worker has no one to sign in
        }
    }

    app.UseReverseProxy();
    app.UseSecurityHeaders();
    app.UseResponseCompression();
    app.UseExceptionHandler();
    app.UseStatusCodePages();
    // The configured logger (level, overrides, the node's name, the template): without it the middleware writes
    // through the static bootstrap logger, which knows none of the configuration.
    app.UseSerilogRequestLogging(o => o.Logger = app.Services.GetRequiredService<Serilog.ILogger>());
    app.UseCrossOrigin();
    app.UseAuthentication(); // before the rate limiter, which counts per signed-in user
    app.UseRateLimiter();
    app.UseBodyLimits();
    if (role != NodeRole.Worker)
    {
        app.UseDashboard();
        app.UseSwaggerWithUi();
    }

    app.UseAuthorization(); // after the dashboard's files and Swagger, which anyone may load (they hold no data)
    app.MapHealth();
    app.MapMetrics();
    if (role != NodeRole.Worker)
    {
        // A worker trains and answers only /health and /metrics: people and dashboards go to api nodes.
        app.MapAccess().RequireRateLimiting(RateLimits.PerOwner);
        app.MapModels().RequireRateLimiting(RateLimits.PerOwner);
        app.MapDatasets().RequireRateLimiting(RateLimits.PerOwner);
        app.MapJobs().RequireRateLimiting(RateLimits.PerOwner);
        app.MapSweeps().RequireRateLimiting(RateLimits.PerOwner);
    }
    await app.RunAsync();
    return Environment.ExitCode; // 0, or what a refusal to serve set (Auth:Mode=Open beyond loopback: 2)
}
catch (Exception ex) when (ex is not HostAbortedException)
{
    Log.Fatal(ex, "TrainingService stopped unexpectedly");
    return 1;
}
finally
{
    Log.CloseAndFlush();
}

/// <summary>The entry point, public for WebApplicationFactory in tests.</summary>
public partial class Program;
