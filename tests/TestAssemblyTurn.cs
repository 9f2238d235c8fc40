using System.Runtime.CompilerServices;

namespace TrainingService.Tests;

/// <summary>
/// Test assemblies take turns: `dotnet test` may start them side by side, and on a 2-core machine three assemblies that
/// train networks at once triple each other's times, so the tests that time things (the dashboard drawing 100,000 steps
/// within 2 s, restarts, a killed process resuming) would measure the contention. Each assembly, when loaded, waits for an
/// exclusive lock on one file in the temp folder and holds it until its process ends.
/// </summary>
internal static class TestAssemblyTurn
{
    private static FileStream? s_turn;

    [ModuleInitializer]
    internal static void WaitForTurn()
    {
        string path = Path.Combine(Path.GetTempPath(), "trainingservice-test-assemblies.lock");
        DateTime giveUp = DateTime.UtcNow.AddMinutes(20);
        while (true)
        {
            try
            {
                s_turn = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
                return;
            }
            catch (IOException) when (DateTime.UtcNow < giveUp)
            {
                Thread.Sleep(200); // another test assembly is running
            }
        }
    }
}
