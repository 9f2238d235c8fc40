using System.Diagnostics;
using System.Security.Cryptography;
using TrainingService.Build;
using Xunit;
using static TorchSharp.torch;

namespace TrainingService.Training.Tests.Native;

/// <summary>
/// TorchSharp-cpu's native library needs GLIBCXX_3.4.32, which Debian 12's libstdc++ lacks; every build output gets a
/// copy with that need marked weak. These tests check the patched copy, and the patcher on the package's original.
/// </summary>
public sealed class TorchSharpNativeFixTests : IDisposable
{
    private const string Version = "GLIBCXX_3.4.32";
    private const string Library = "runtimes/linux-x64/native/libLibTorchSharp.so";

    private readonly string _folder = Directory.CreateTempSubdirectory("elf-patcher-").FullName;

    [Fact]
    public void TorchLoadsAndMultipliesMatrices()
    {
        using Tensor a = tensor(new float[] { 1, 2, 3, 4 }, [2, 2]);
        using Tensor b = tensor(new float[] { 5, 6, 7, 8 }, [2, 2]);
        using Tensor product = a.matmul(b);

        Assert.Equal([19f, 22f, 43f, 50f], product.data<float>().ToArray());
    }

    [Fact]
    public void TheCopyBesideTheTestsHasTheVersionNeedMarkedWeak()
    {
        string path = Path.Combine(AppContext.BaseDirectory, Library);
        Assert.True(File.Exists(path), $"{path} is missing");

        Assert.Equal(ElfPatchOutcome.AlreadyWeak, ElfVersionPatcher.Inspect(File.ReadAllBytes(path), Version, out _));
    }

    [Fact]
    public void PatchingTheOriginalChangesOneByteOnceAndLeavesThePackageUntouched()
    {
        string original = OriginalLibrary();
        byte[] originalBytes = File.ReadAllBytes(original);
        Assert.Equal(ElfPatchOutcome.Patched, ElfVersionPatcher.Inspect(originalBytes, Version, out int flagsOffset));
        string copy = Path.Combine(_folder, "libLibTorchSharp.so");
        File.Copy(original, copy);

        Assert.Equal(ElfPatchOutcome.Patched, ElfVersionPatcher.MakeVersionNeedWeak(copy, Version));
        byte[] once = File.ReadAllBytes(copy);
        Assert.Equal(ElfPatchOutcome.AlreadyWeak, ElfVersionPatcher.MakeVersionNeedWeak(copy, Version));
        byte[] twice = File.ReadAllBytes(copy);

        Assert.Equal(originalBytes.Length, once.Length);
        int[] changed = [.. Enumerable.Range(0, once.Length).Where(i => once[i] != originalBytes[i])];
        int only = Assert.Single(changed);
        Assert.Equal(flagsOffset, only);
        Assert.Equal(originalBytes[only] | 0x2, once[only]);
        Assert.Equal(once, twice);
        Assert.Equal(SHA256.HashData(originalBytes), SHA256.HashData(File.ReadAllBytes(original)));
        Assert.Equal(ElfPatchOutcome.Patched, ElfVersionPatcher.Inspect(File.ReadAllBytes(original), Version, out _));
        Assert.Empty(Directory.GetFiles(_folder, "*.patching"));
    }

    [Fact]
    public void ReadelfShowsThePatchedNeedAsWeak()
    {
        if (!File.Exists("/usr/bin/readelf"))
        {
            return; // binutils not installed: nothing to cross-check with
        }

        string copy = Path.Combine(_folder, "libLibTorchSharp.so");
        File.Copy(OriginalLibrary(), copy);
        Assert.DoesNotContain(VersionLine(copy), "WEAK", StringComparison.Ordinal);

        ElfVersionPatcher.MakeVersionNeedWeak(copy, Version);

        Assert.Matches($@"Name: {Version}\s+Flags: WEAK\b", VersionLine(copy));
    }

    [Fact]
    public void AFileThatIsNotElf64IsReportedAndLeftAlone()
    {
        string text = Path.Combine(_folder, "notes.txt");
        File.WriteAllText(text, "not a shared object, but long enough to hold an ELF header of sixty-four bytes");

        Assert.Equal(ElfPatchOutcome.NotElf64, ElfVersionPatcher.MakeVersionNeedWeak(text, Version));
        Assert.Equal(ElfPatchOutcome.NotElf64, ElfVersionPatcher.Inspect([0x7F, (byte)'E', (byte)'L', (byte)'F'], Version, out _));
        Assert.StartsWith("not a shared object", File.ReadAllText(text), StringComparison.Ordinal);
    }

    [Fact]
    public void AVersionTheLibraryDoesNotNeedIsReported()
    {
        byte[] elf = File.ReadAllBytes(OriginalLibrary());

        Assert.Equal(ElfPatchOutcome.VersionNotNeeded, ElfVersionPatcher.Inspect(elf, "GLIBCXX_9.9.99", out int offset));
        Assert.Equal(-1, offset);
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static string OriginalLibrary()
    {
        string packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } configured
            ? configured
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        string path = Path.Combine(packages, "torchsharp", "0.107.0", Library);
        Assert.True(File.Exists(path), $"TorchSharp's original native library is not in the NuGet cache at {path}: run `dotnet restore`.");
        return path;
    }

    private static string VersionLine(string path)
    {
        using var readelf = Process.Start(new ProcessStartInfo("readelf", ["-V", "-W", path]) { RedirectStandardOutput = true })!;
        string text = readelf.StandardOutput.ReadToEnd();
        readelf.WaitForExit();
        return text.Split('\n').Single(line => line.Contains($"Name: {Version}", StringComparison.Ordinal));
    }
}
