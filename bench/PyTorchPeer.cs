using System.Diagnostics;
using System.Globalization;

/// <summary>
/// bench/pytorch_lenet.py in a child process: the same model, data path, optimiser, batch and threads as our loop.
/// OpenBLAS on one thread (Debian's libopenblas0-pthread, OPENBLAS_NUM_THREADS=1) is PyTorch's fastest setting on this
/// machine kind (docs/benchmarks.md); torch's own intra-op threads are set by --threads.
/// </summary>
internal static class PyTorchPeer
{
    /// <summary>
    /// What the script prints: images/s, or with <paramref name="profile"/> a JSON object of phase times.
    /// <paramref name="model"/>: lenet (Fashion-MNIST) or vgg (the small VGG on CIFAR-shaped 3×32×32 images);
    /// <paramref name="channelsLast"/>: weights and batches in NHWC memory order.
    /// </summary>
    public static string Run(int steps, int batch, int threads, bool profile = false, string model = "lenet", bool channelsLast = false)
    {
        var start = new ProcessStartInfo("/usr/bin/python3",
            [Path.Combine(AppContext.BaseDirectory, "pytorch_lenet.py"), "--steps", Text(steps), "--batch", Text(batch), "--threads", Text(threads),
                "--model", model, .. profile ? ["--profile"] : Array.Empty<string>(), .. channelsLast ? ["--channels-last"] : Array.Empty<string>()])
        {
            RedirectStandardOutput = true,
            Environment = { ["OPENBLAS_NUM_THREADS"] = "1" },
        };
        using Process process = Process.Start(start)!;
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return process.ExitCode == 0 ? output.Trim() : throw new InvalidOperationException($"pytorch_lenet.py exited with {process.ExitCode}");
    }

    public static bool Available()
    {
        if (!File.Exists("/usr/bin/python3"))
        {
            return false;
        }

        using Process? process = Process.Start(new ProcessStartInfo("/usr/bin/python3", ["-c", "import torch, numpy"]) { RedirectStandardError = true });
        process!.WaitForExit();
        return process.ExitCode == 0;
    }

    private static string Text(int value) => value.ToString(CultureInfo.InvariantCulture);
}
