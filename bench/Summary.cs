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

    public static void Print()
    {
        Console.WriteLine();
        Console.WriteLine("| point | measured | target | met |");
        Console.WriteLine("|---|---:|---|---|");
        foreach (var (point, measured, target, met) in s_rows)
        {
            Console.WriteLine($"| {point} | {measured} | {target} | {(met ? "yes" : "**no**")} |");
        }
    }
}
