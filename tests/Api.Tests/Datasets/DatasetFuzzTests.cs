using System.Buffers.Binary;
using System.Net;
using System.Text;
using System.Text.Json;
using FsCheck;
using FsCheck.Fluent;
using Microsoft.FSharp.Core;
using SkiaSharp;
using TrainingService.Api.Datasets;
using TrainingService.Training.Data;
using Xunit.Abstractions;
using static TrainingService.Api.Tests.Datasets.ArchiveFiles;

namespace TrainingService.Api.Tests.Datasets;

/// <summary>
/// Valid dataset files of every format, mutated (bit flips, truncations, inserted bytes, huge declared sizes), through the
/// readers and through POST /datasets: only DatasetFormatException, never a 500, nothing left behind, and no allocation
/// beyond the caps. Fixed seeds and counts, so a run is repeatable and bounded.
/// </summary>
public sealed class DatasetFuzzTests(ITestOutputHelper output) : IDisposable
{
    private const int ReaderCases = 150, ApiCases = 20;
    private const ulong Seed = 20261127, Gamma = 0x9E3779B97F4A7C15;
    private const long MiB = 1 << 20;

    // Small caps, so that an allocation past them is visible.
    private static readonly UploadOptions s_limits = new()
    {
        MaxDatasetBytes = MiB,
        MaxUncompressedBytes = 8 * MiB,
        MaxImagePixels = 1 << 16,
        MaxArchiveEntries = 1000,
    };

    // What a reader may allocate: the dataset and decoding buffers (each within a cap), a few times over for copies.
    private static readonly long s_allocationCap = 16 * (s_limits.MaxDatasetBytes + DecodeBudget.RatioGraceBytes);

    private static readonly Gen<Mutation> s_mutation =
        from kind in Gen.Choose(0, 6)
        from at in Gen.Choose(0, int.MaxValue)
        from value in Gen.Choose(0, 255)
        from length in Gen.Choose(1, 64)
        select new Mutation((MutationKind)kind, at, (byte)value, length);

    private static readonly Gen<Case> s_case =
        from count in Gen.Choose(1, 3)
        from a in s_mutation
        from b in s_mutation
        from c in s_mutation
        from other in Gen.Choose(0, 1)
        select new Case(new[] { a, b, c }[..count], other == 1);

    private readonly string _folder = Directory.CreateTempSubdirectory("dataset-fuzz-").FullName;

    public static TheoryData<FuzzedFormat> Formats => new(Enum.GetValues<FuzzedFormat>());

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Theory]
    [MemberData(nameof(Formats))]
    public void AMutatedFileIsReadOrRefusedWithinTheCaps(FuzzedFormat format)
    {
        int accepted = 0, refused = 0, run = 0;
        long largest = 0;
        Check(ReaderCases, fuzz =>
        {
            string folder = Directory.CreateDirectory(Path.Combine(_folder, $"case-{run++}")).FullName;
            Func<ImageDataset> read = Reader(format, Files(format, fuzz), folder);
            long before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                read();
                accepted++;
            }
            catch (DatasetFormatException)
            {
                refused++;
            }

            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            largest = Math.Max(largest, allocated);
            Directory.Delete(folder, recursive: true);
            if (allocated > s_allocationCap)
            {
                throw new InvalidOperationException($"{fuzz}: the reader allocated {allocated:N0} bytes, over {s_allocationCap:N0}");
            }
        });

        output.WriteLine($"{format}: {run} cases, {accepted} read, {refused} refused, largest allocation {largest / (double)MiB:F2} MiB");
        Assert.Equal(ReaderCases, run);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public async Task AMutatedUploadGetsACreatedOrAProblemAndLeavesNothingBehind(FuzzedFormat format)
    {
        var statuses = new Dictionary<HttpStatusCode, int>();
        await using var factory = new TrainingServiceFactory(new()
        {
            ["Uploads:MaxDatasetBytes"] = $"{s_limits.MaxDatasetBytes}",
            ["Uploads:MaxUncompressedBytes"] = $"{s_limits.MaxUncompressedBytes}",
            ["Uploads:MaxImagePixels"] = $"{s_limits.MaxImagePixels}",
            ["Uploads:MaxArchiveEntries"] = $"{s_limits.MaxArchiveEntries}",
        });
        using HttpClient client = factory.CreateClient();
        string datasets = Path.Combine(factory.DataFolder, "datasets");
        foreach (Case fuzz in Cases(ApiCases))
        {
            using HttpResponseMessage response = await client.PostAsync(new Uri("/datasets", UriKind.Relative), Form(format, Files(format, fuzz)));
            string body = await response.Content.ReadAsStringAsync();
            Assert.True(
                response.StatusCode is HttpStatusCode.Created or HttpStatusCode.BadRequest or HttpStatusCode.RequestEntityTooLarge,
                $"{fuzz}: {(int)response.StatusCode} {body}");
            statuses[response.StatusCode] = statuses.GetValueOrDefault(response.StatusCode) + 1;
            if (response.StatusCode == HttpStatusCode.Created)
            {
                string id = JsonSerializer.Deserialize<JsonElement>(body).GetProperty("id").GetString()!;
                using HttpResponseMessage sample = await client.GetAsync(new Uri($"/datasets/{id}/samples/0.png", UriKind.Relative));
                using HttpResponseMessage deleted = await client.DeleteAsync(new Uri($"/datasets/{id}", UriKind.Relative));
                Assert.True(
                    sample.StatusCode == HttpStatusCode.OK && deleted.StatusCode == HttpStatusCode.NoContent,
                    $"{fuzz}: accepted, then its sample got {(int)sample.StatusCode} and its deletion {(int)deleted.StatusCode}");
            }

            Assert.True(
                !Directory.Exists(datasets) || Directory.GetFileSystemEntries(datasets).Length == 0,
                $"{fuzz}: left behind in datasets/");
        }

        output.WriteLine($"{format}: {ApiCases} uploads, {string.Join(", ", statuses.OrderBy(s => s.Key).Select(s => $"{(int)s.Key}: {s.Value}"))}");
        Assert.Equal(ApiCases, statuses.Values.Sum());
    }

    private static Config Settings(int cases) => Config.QuickThrowOnFailure.WithMaxTest(cases).WithQuietOnSuccess(true)
        .WithReplay(FSharpOption<Replay>.Some(new Replay(new Rnd(Seed, Gamma), FSharpOption<int>.None)));

    // The reader runs inside the property, so FsCheck shrinks a failing case.
    private static void Check(int cases, Action<Case> property) => FsCheck.Check.One(Settings(cases), Prop.ForAll(Arb.From(s_case), property));

    // The cases FsCheck generates from the seed, for a property that awaits.
    private static List<Case> Cases(int count)
    {
        var cases = new List<Case>();
        Check(count, cases.Add);
        return cases;
    }

    // The format's valid files with the case's mutations applied: to the first file, or with Other to the second
    // (IDX labels) or to an image inside the archive (zips).
    private static (string Field, string FileName, byte[] Bytes)[] Files(FuzzedFormat format, Case fuzz)
    {
        byte[] M(byte[] bytes, bool target) => target ? fuzz.Apply(bytes) : bytes;
        switch (format)
        {
            case FuzzedFormat.IdxRaw or FuzzedFormat.IdxGzip:
                Func<byte[], byte[]> encode = format == FuzzedFormat.IdxGzip ? b => DatasetFiles.Gzip(b) : b => b;
                return
                [
                    ("images", "images.idx", M(encode(DatasetFiles.Images(6, 4, 4)), !fuzz.Other)),
                    ("labels", "labels.idx", M(encode(DatasetFiles.Labels(6, 2)), fuzz.Other)),
                ];
            case FuzzedFormat.Csv:
                string csv = string.Concat(Enumerable.Range(0, 6).Select(i => $"{i % 2},{i},{i * 40},255,{i * 7}\n"));
                return [("images", "train.csv", fuzz.Apply(Encoding.ASCII.GetBytes(csv)))];
            case FuzzedFormat.Cifar:
                return [("images", "data_batch_1.bin", fuzz.Apply(Cifar10(3)))];
            case FuzzedFormat.Tar:
                return [("archive", "c.tar", fuzz.Apply(Tar(false, ("cifar-10-batches-bin/data_batch_1.bin", Cifar10(2)), ("cifar-10-batches-bin/readme.html", [1, 2, 3]))))];
            default:
                Func<int, int, SKColor, byte[]> image = format == FuzzedFormat.ZipPng ? Png : Jpeg;
                string extension = format == FuzzedFormat.ZipPng ? "png" : "jpg";
                byte[] first = M(image(8, 8, SKColors.Red), fuzz.Other), second = image(6, 10, SKColors.Blue);
                return [("archive", "images.zip", M(Zip(($"a/0.{extension}", first), ($"b/0.{extension}", second)), !fuzz.Other))];
        }
    }

    private static Func<ImageDataset> Reader(FuzzedFormat format, (string Field, string FileName, byte[] Bytes)[] files, string folder)
    {
        string[] paths = [.. files.Select(f => Path.Combine(folder, f.Field))];
        for (int i = 0; i < files.Length; i++)
        {
            File.WriteAllBytes(paths[i], files[i].Bytes);
        }

        return format switch
        {
            FuzzedFormat.IdxRaw or FuzzedFormat.IdxGzip => () => IdxReader.Read("fuzz", paths[0], paths[1], limits: s_limits),
            FuzzedFormat.Csv => () => CsvDatasetReader.Read("fuzz", paths[0], null, 1, 2, 2, s_limits),
            FuzzedFormat.Cifar => () => CifarReader.Read("fuzz", CifarVariant.Cifar10, [new CifarFile("images", "data_batch_1.bin", paths[0])], limits: s_limits),
            FuzzedFormat.Tar => () => CifarUpload.Read(
                new ReceivedUpload("fuzz", DatasetUpload.CifarFormat, [new ReceivedFile("archive", "c.tar", paths[0])]), folder, s_limits),
            _ => () => ImageFolderReader.Read("fuzz", paths[0], 3, 8, 8, pad: false, s_limits),
        };
    }

    private static MultipartFormDataContent Form(FuzzedFormat format, (string Field, string FileName, byte[] Bytes)[] files) => format switch
    {
        FuzzedFormat.Csv => ArchiveFiles.Form("csv", [("channels", "1"), ("height", "2"), ("width", "2")], files),
        FuzzedFormat.Cifar or FuzzedFormat.Tar => ArchiveFiles.Form("cifar", [], files),
        FuzzedFormat.ZipPng or FuzzedFormat.ZipJpeg => ArchiveFiles.Form("imagefolder", [("imageSize", "8")], files),
        _ => ArchiveFiles.Form("idx", [], files),
    };
}

public enum FuzzedFormat
{
    IdxRaw,
    IdxGzip,
    Csv,
    Cifar,
    Tar,
    ZipPng,
    ZipJpeg,
}

internal enum MutationKind
{
    FlipBit,
    Truncate,
    Insert,
    Overwrite,
    HugeBigEndian,
    HugeLittleEndian,
    HugeTarSize,
}

internal sealed record Mutation(MutationKind Kind, int At, byte Value, int Length)
{
    public byte[] Apply(byte[] input)
    {
        if (input.Length == 0)
        {
            return Kind == MutationKind.Insert ? [.. Enumerable.Repeat(Value, Length)] : input;
        }

        byte[] bytes = [.. input];
        int at = At % bytes.Length;
        // Declared sizes sit in headers: near the start (IDX, a zip's local headers) or the end (a zip's directory).
        int header = At % 2 == 0
            ? ((At / 2) % Math.Min(bytes.Length, 64)) & ~3
            : Math.Max(0, bytes.Length - 4 - (At % Math.Min(bytes.Length, 128)));
        switch (Kind)
        {
            case MutationKind.FlipBit:
                bytes[at] ^= (byte)(1 << (Value % 8));
                return bytes;
            case MutationKind.Truncate:
                return bytes[..at];
            case MutationKind.Insert:
                return [.. bytes[..at], .. Enumerable.Range(0, Length).Select(i => (byte)(Value + (i * 37))), .. bytes[at..]];
            case MutationKind.Overwrite:
                bytes[at] = Value;
                return bytes;
            case MutationKind.HugeBigEndian when header + 4 <= bytes.Length:
                BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(header), 0xFFFFFF00u | Value);
                return bytes;
            case MutationKind.HugeLittleEndian when header + 4 <= bytes.Length:
                BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(header), 0x7FFFFF00u | Value);
                return bytes;
            case MutationKind.HugeTarSize when bytes.Length >= 1024:
                // 8 GiB, just under 2 GiB or 16 MiB; half the time in the first block, which is always a header.
                int block = At % 2 == 0 ? 0 : Math.Min(512 * ((At / 2) % (bytes.Length / 512)), bytes.Length - 512);
                return ArchiveFiles.WithTarSize(bytes, block, (Value % 3) switch { 0 => "77777777777", 1 => "17777777000", _ => "00100000000" });
            default:
                bytes[at] ^= 0xFF;
                return bytes;
        }
    }
}

internal sealed record Case(Mutation[] Mutations, bool Other)
{
    public byte[] Apply(byte[] bytes) => Mutations.Aggregate(bytes, (current, mutation) => mutation.Apply(current));

    public override string ToString() => $"{(Other ? "other file: " : "")}{string.Join("; ", Mutations.Select(m => m.ToString()))}";
}
