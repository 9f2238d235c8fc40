using System.Globalization;
using TrainingService.Contracts.Specs;

namespace TrainingService.Training.Specs;

/// <summary>How the analyser's messages write numbers, windows and shapes.</summary>
internal static class SpecText
{
    /// <summary>A count with thousands separators: 1,234,567.</summary>
    public static string Count(long n) => n.ToString("N0", CultureInfo.InvariantCulture);

    /// <summary>A setting as given: the shortest text that reads back as the same double.</summary>
    public static string Number(double d) => d.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>A window's size as height×width.</summary>
    public static string Window(IntPair kernel) => $"{kernel.Height}×{kernel.Width}";

    /// <summary>A layer output's shape: "120 features", or channels×height×width.</summary>
    public static string Shape(int[] shape) => shape.Length == 1 ? $"{shape[0]} features" : string.Join("×", shape);
}
