using Serilog;
using TrainingService.Api.Infrastructure;
using TrainingService.Api.Models;
using TrainingService.Api.Persistence;

Log.Logger = new LoggerConfiguration().WriteTo.Console().CreateBootstrapLogger();

try
{
    WebApplicationBuilder builder = WebApplication.CreateBuilder(args);
    builder.Services.AddSerilog((services, logger) => logger
        .ReadFrom.Configuration(builder.Configuration)
        .ReadFrom.Services(services)
        .Enrich.FromLogContext()
        .WriteTo.Console());
    builder.Services.AddApiBasics();
    builder.Services.AddStorage();
    builder.Services.AddSpecs();
    builder.Services.AddSwagger();

    WebApplication app = builder.Build();
    await app.MigrateDatabaseAsync();
    app.UseExceptionHandler();
    app.UseStatusCodePages();
    app.UseSerilogRequestLogging();
    app.UseSwaggerWithUi();
    app.MapHealth();
    app.MapModels();
    await app.RunAsync();
    return 0;
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
