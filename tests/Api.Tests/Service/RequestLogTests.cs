using TrainingService.Api.Tests.Jobs;

namespace TrainingService.Api.Tests.Service;

/// <summary>Each request's log line goes through the configured logger: its level, its overrides and the node's name.</summary>
public sealed class RequestLogTests
{
    [Fact]
    public async Task RequestLinesFollowTheLoggingConfiguration()
    {
        string quiet = Directory.CreateTempSubdirectory("requestlog").FullName;
        string verbose = Directory.CreateTempSubdirectory("requestlog").FullName;
        try
        {
            // ServiceProcess starts the service with Serilog:MinimumLevel:Default Warning: no line per request.
            using (ServiceProcess service = await ServiceProcess.StartAsync(quiet))
            {
                (await service.Client.GetAsync(new Uri("/jobs", UriKind.Relative))).EnsureSuccessStatusCode();
                await Task.Delay(500);
                Assert.DoesNotContain("HTTP GET /jobs responded", service.RecentLog, StringComparison.Ordinal);
            }

            using (ServiceProcess service = await ServiceProcess.StartAsync(verbose, "--Serilog:MinimumLevel:Default", "Information", "--Telemetry:Node", "node-for-the-log"))
            {
                (await service.Client.GetAsync(new Uri("/jobs", UriKind.Relative))).EnsureSuccessStatusCode();
                string? line = null;
                for (int i = 0; i < 50 && line is null; i++, await Task.Delay(100))
                {
                    line = service.RecentLog.Split('\n').FirstOrDefault(l => l.Contains("HTTP GET /jobs responded 200", StringComparison.Ordinal));
                }

                Assert.NotNull(line);
                Assert.Contains("\"Node\": \"node-for-the-log\"", line, StringComparison.Ordinal); // the configured template and enricher
            }
        }
        finally
        {
            Directory.Delete(quiet, recursive: true);
            Directory.Delete(verbose, recursive: true);
        }
    }
}
