using System.Runtime.InteropServices;

namespace TrainingService.Training.Native;

/// <summary>
/// glibc malloc settings that keep libtorch's large, short-lived buffers out of mmap/munmap, so a step does not
/// page-fault its buffers in again. Their effect is within this machine's noise (docs/benchmarks.md), and they cost nothing.
/// </summary>
public static partial class NativeTuning
{
    private const int MallocTrimThreshold = -1; // M_TRIM_THRESHOLD
    private const int MallocMmapThreshold = -3; // M_MMAP_THRESHOLD

    private static int s_applied;

    /// <summary>Applies the settings once per process; harmless elsewhere than Linux/glibc.</summary>
    public static bool Apply()
    {
        if (Interlocked.Exchange(ref s_applied, 1) == 1 || !OperatingSystem.IsLinux())
        {
            return false;
        }

        try
        {
            return mallopt(MallocMmapThreshold, 32 * 1024 * 1024) == 1 & mallopt(MallocTrimThreshold, 256 * 1024 * 1024) == 1;
        }
        catch (EntryPointNotFoundException)
        {
            return false; // not glibc (e.g. musl)
        }
        catch (DllNotFoundException)
        {
            return false;
        }
    }

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int mallopt(int parameter, int value);
}
