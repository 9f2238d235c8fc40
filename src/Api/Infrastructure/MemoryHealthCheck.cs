using System.Globalization;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace TrainingService.Api.Infrastructure;

/// <summary>
/// The "memory" part of /health/ready: the process's resident set against Health:MemoryBudgetBytes (3 GiB by default,
/// under compose's 4 GiB limit), Degraded above it, so an operator sees memory run out before the kernel's OOM killer
/// does. Its peak (VmHWM) is reported too: what a probe drove it to since the start.
/// </summary>
internal sealed class MemoryHealthCheck(IConfiguration configuration) : IHealthCheck
{
    public const string Key = "Health:MemoryBudgetBytes";

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        long budget = configuration.GetValue(Key, 3L << 30);
        long now = Environment.WorkingSet;
        long peak = PeakBytes() ?? now;
        string text = string.Create(CultureInfo.InvariantCulture, $"resident {now >> 20} MiB, peak {peak >> 20} MiB, budget {budget >> 20} MiB ({Key})");
        return Task.FromResult(now > budget ? HealthCheckResult.Degraded("over the memory budget: " + text) : HealthCheckResult.Healthy(text));
    }

    // Linux only (/proc); elsewhere the peak is not known and the current size stands for it.
    private static long? PeakBytes()
    {
        try
        {
            string? line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
            return line is null ? null : long.Parse(line[6..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
        }
        catch (IOException)
        {
            return null;
        }
    }
}
