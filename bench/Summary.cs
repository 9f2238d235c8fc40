using System.Globalization;

/// <summary>
/// Issue 15's table: each bench mode adds its headline figures against their targets; <c>bench all</c> runs the modes
/// one after another and prints this table at the end, so a change can be compared with main on the same machine.
/// </summary>
internal static class Summary
{
    private static readonly List<(string Point, string Measured, string Target, bool Met)> s_rows = [];

    /// <summary>One figure: what is measured (and how), its value as printed, the target, and whether it is met.</summary>
    public static void Add(string point, string measured, string target, bool met) => s_rows.Add((point, measured, target, met));

    public static void Add(string point, double measured, string format, string target, bool met) =>
        Add(point, measured.ToString(format, CultureInfo.InvariantCulture), target, met);

    /// <summary>
    /// At the process's end: the table, if any mode added to it; with BENCH_SUMMARY_FILE set (by <c>bench all</c>), its
    /// rows are appended to that file too.
    /// </summary>
    public static void PrintAtExit() => AppDomain.CurrentDomain.ProcessExit += (_, _) =>
    {
        if (s_rows.Count > 0)
        {
            Print();
            if (Environment.GetEnvironmentVariable("BENCH_SUMMARY_FILE") is { Length: > 0 } file)
            {
                File.AppendAllLines(file, s_rows.Select(Row));
            }
        }
    };

    private static string Row((string Point, string Measured, string Target, bool Met) row) =>
        $"| {row.Point} | {row.Measured} | {row.Target} | {(row.Met ? "yes" : "**no**")} |";

    /// <summary>Runs each mode of <paramref name="modes"/> as a child process of this program, one after another, then prints all their rows.</summary>
    public static int RunAll(IEnumerable<string[]> modes)
    {
        string file = Path.GetTempFileName();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            foreach (string[] mode in modes)
            {
                Console.WriteLine($"## bench {string.Join(' ', mode)} (at {clock.Elapsed.TotalMinutes:F1} min)");
                var start = new System.Diagnostics.ProcessStartInfo("dotnet", [typeof(Summary).Assembly.Location, .. mode]);
                start.Environment["BENCH_SUMMARY_FILE"] = file;
                using var child = System.Diagnostics.Process.Start(start)!;
                child.WaitForExit();
                if (child.ExitCode != 0)
                {
                    File.AppendAllLines(file, [$"| bench {string.Join(' ', mode)} | failed (exit code {child.ExitCode}) | | **no** |"]);
                }
            }

            Console.WriteLine();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"## Issue 15's table: {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, {clock.Elapsed.TotalMinutes:F1} min"));
            Console.WriteLine("| point | measured | target | met |");
            Console.WriteLine("|---|---:|---|---|");
            foreach (string row in File.ReadAllLines(file))
            {
                Console.WriteLine(row);
            }

            return 0;
        }
        finally
        {
            File.Delete(file);
        }
    }

    private static void Print()
    {
        Console.WriteLine();
        Console.WriteLine("| point | measured | target | met |");
        Console.WriteLine("|---|---:|---|---|");
        foreach (var row in s_rows)
        {
            Console.WriteLine(Row(row));
        }
    }
}
