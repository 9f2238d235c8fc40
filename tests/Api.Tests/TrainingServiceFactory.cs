using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace TrainingService.Api.Tests;

/// <summary>The service in memory, with configuration a test may override.</summary>
public sealed class TrainingServiceFactory(Dictionary<string, string?>? settings = null) : WebApplicationFactory<Program>
{
    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        foreach ((string key, string? value) in settings ?? [])
        {
            builder.UseSetting(key, value);
        }
    }
}
