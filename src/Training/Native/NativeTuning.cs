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
    private const int MallocArenaMax = -8; // M_ARENA_MAX

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
            // At most one arena per core from here on, not glibc's eight per core. The threads the runtime started
            // before this line have made theirs already (seven arenas on a 2-core machine: docs/benchmarks.md), so
            // what keeps jobs' freed memory from spreading over them is that each worker slot trains its jobs on one
            // long-lived thread (the service's TrainingThread), which keeps its arena.
            return mallopt(MallocMmapThreshold, 32 * 1024 * 1024) == 1 & mallopt(MallocTrimThreshold, 256 * 1024 * 1024) == 1
                & mallopt(MallocArenaMax, Math.Max(2, Environment.ProcessorCount)) == 1;
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

    /// <summary>
    /// Gives the memory malloc holds free back to the system (glibc's <c>malloc_trim</c>: every arena, not only the
    /// top of each), for a thread that has just finished a job. The trim threshold above keeps a running job's buffers
    /// mapped between steps; once the job is over, what it freed would otherwise stay resident in its arena for good.
    /// </summary>
    public static void ReleaseFreed()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        try
        {
            _ = malloc_trim(0);
        }
        catch (EntryPointNotFoundException)
        {
        }
        catch (DllNotFoundException)
        {
        }
    }

    [LibraryImport("libc", EntryPoint = "malloc_trim")]
    private static partial int malloc_trim(nuint pad);

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int mallopt(int parameter, int value);
}
