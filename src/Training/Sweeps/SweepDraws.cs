namespace TrainingService.Training.Sweeps;

/// <summary>
/// The numbers a sweep draws for its trials' settings. A draw is a function of (sweep seed, trial, dimension) alone, so
/// a trial's settings do not depend on the order trials are made in, and the same seed gives the same sweep.
/// </summary>
public static class SweepDraws
{
    /// <summary>A number uniform in [0, 1) (53 random bits), from SplitMix64's output function over the three keys.</summary>
    public static double Unit(int seed, int trial, int dimension)
    {
        ulong z = Mix(Mix(Mix((uint)seed) ^ (uint)trial) ^ (uint)dimension);
        return (z >> 11) * (1.0 / (1UL << 53));
    }

    /// <summary>uniform: min + u·(max − min).</summary>
    public static double Uniform(double u, double min, double max) => min + (u * (max - min));

    /// <summary>logUniform: uniform in log space, for rates and decays that span decades; min &gt; 0.</summary>
    public static double LogUniform(double u, double min, double max) => Math.Exp(Math.Log(min) + (u * (Math.Log(max) - Math.Log(min))));

    /// <summary>intUniform: a whole number in [min, max], each equally likely.</summary>
    public static long IntUniform(double u, long min, long max) => Math.Min(max, min + (long)Math.Floor(u * ((double)(max - min) + 1)));

    /// <summary>choice: an index in [0, count), each equally likely.</summary>
    public static int Choice(double u, int count) => Math.Min(count - 1, (int)(u * count));

    /// <summary>
    /// A grid dimension over a range: <paramref name="points"/> values from min to max, both included, evenly spaced —
    /// on a log scale when <paramref name="logarithmic"/> (logUniform's grid).
    /// </summary>
    public static double[] Points(double min, double max, int points, bool logarithmic)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(points, 1);
        if (points == 1)
        {
            return [logarithmic ? Math.Sqrt(min * max) : (min + max) / 2];
        }

        var values = new double[points];
        for (int i = 0; i < points; i++)
        {
            double t = (double)i / (points - 1);
            values[i] = logarithmic ? LogUniform(t, min, max) : Uniform(t, min, max);
        }

        values[0] = min; // the ends exactly, whatever the rounding of exp(log)
        values[^1] = max;
        return values;
    }

    private static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
        return z ^ (z >> 31);
    }
}
