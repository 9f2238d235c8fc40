using System.Diagnostics;
using Xunit.Abstractions;

namespace TrainingService.Dashboard.Tests;

/// <summary>The dashboard's TypeScript unit tests (src/Api/ClientApp/src/*.test.ts, Node's test runner), run as part of dotnet test.</summary>
public sealed class ClientAppUnitTests(ITestOutputHelper output)
{
    [Fact]
    public async Task TheDashboardsOwnUnitTestsPass()
    {
        string clientApp = Path.Combine(Dashboard.RepositoryRoot, "src", "Api", "ClientApp");
        var start = new ProcessStartInfo("npm", ["test", "--silent"])
        {
            WorkingDirectory = clientApp,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using Process npm = Process.Start(start)!;
        Task<string> stdout = npm.StandardOutput.ReadToEndAsync();
        Task<string> stderr = npm.StandardError.ReadToEndAsync();
        await npm.WaitForExitAsync();
        string log = await stdout + await stderr;
        output.WriteLine(log);
        Assert.True(npm.ExitCode == 0, $"npm test exited with {npm.ExitCode}:\n{log}");
        Assert.Contains("# fail 0", log, StringComparison.Ordinal);
        Assert.DoesNotContain("# pass 0", log, StringComparison.Ordinal);
    }
}
