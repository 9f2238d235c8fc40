using System.Formats.Tar;
using System.Globalization;
using System.IO.Compression;
using System.Text.RegularExpressions;
using TrainingService.Training.Data;

namespace TrainingService.Api.Datasets;

/// <summary>
/// A CIFAR upload: the batches as file parts (images, once per train batch; testImages; classNames), or the standard
/// cifar-10-binary.tar.gz / cifar-100-binary.tar.gz (or the .tar) in archive, whose files are found by name in any folder.
/// </summary>
internal static partial class CifarUpload
{
    private const string TestBatch = "test_batch.bin";
    private const string BatchesMeta = "batches.meta.txt";
    private const string Train100 = "train.bin";
    private const string Test100 = "test.bin";
    private const string FineNames = "fine_label_names.txt";
    private const string CoarseNames = "coarse_label_names.txt";

    /// <summary>Reads the upload's CIFAR files; an archive's members are copied into <paramref name="folder"/> first.</summary>
    /// <exception cref="DatasetFormatException">A file or the archive is bad, or the archive breaks a cap of <paramref name="limits"/>.</exception>
    public static ImageDataset Read(ReceivedUpload upload, string folder, UploadOptions limits)
    {
        if (upload.PathOf(DatasetUpload.Archive) is not { } archive)
        {
            return CifarReader.Read(
                upload.Name,
                VariantOf(upload.Variant) ?? CifarVariant.Cifar10,
                [.. upload.All(DatasetUpload.Images).Select(f => new CifarFile(f.Field, f.FileName, f.Path))],
                upload.All(DatasetUpload.TestImages) is [var test] ? new CifarFile(test.Field, test.FileName, test.Path) : null,
                upload.All(DatasetUpload.ClassNamesField) is [var names] ? new CifarFile(names.Field, names.FileName, names.Path) : null,
                limits);
        }

        Dictionary<string, CifarFile> members = Extract(archive, folder, new ArchiveBudget(limits));
        CifarVariant variant = Choose(VariantOf(upload.Variant), members);
        List<CifarFile> train = variant == CifarVariant.Cifar10
            ? [.. members.Where(m => BatchNumber(m.Key) is not null).OrderBy(m => BatchNumber(m.Key)).Select(m => m.Value)]
            : [members[Train100]];
        string testName = variant == CifarVariant.Cifar10 ? TestBatch : Test100;
        string namesName = variant switch
        {
            CifarVariant.Cifar10 => BatchesMeta,
            CifarVariant.Cifar100 => FineNames,
            _ => CoarseNames,
        };
        return CifarReader.Read(upload.Name, variant, train, members.GetValueOrDefault(testName), members.GetValueOrDefault(namesName), limits);
    }

    private static CifarVariant? VariantOf(string? variant) => variant switch
    {
        null => null,
        DatasetUpload.Cifar10 => CifarVariant.Cifar10,
        DatasetUpload.Cifar100 => CifarVariant.Cifar100,
        _ => CifarVariant.Cifar100Coarse,
    };

    // The variant asked for must match the archive's train files; without one, the files decide.
    private static CifarVariant Choose(CifarVariant? asked, Dictionary<string, CifarFile> members)
    {
        bool batches = members.Keys.Any(k => BatchNumber(k) is not null), train100 = members.ContainsKey(Train100);
        return (asked, batches, train100) switch
        {
            (CifarVariant.Cifar10, true, _) => CifarVariant.Cifar10,
            (CifarVariant.Cifar10, false, _) => throw ArchiveBudget.Refused(
                $"variant cifar10 needs CIFAR-10's train batches (data_batch_1.bin …), and the archive has none{(train100 ? "; it has CIFAR-100's train.bin: send variant cifar100 or leave variant out" : "")}"),
            ({ } hundred, _, true) => hundred,
            ({ }, _, false) => throw ArchiveBudget.Refused(
                $"variant {(asked == CifarVariant.Cifar100 ? DatasetUpload.Cifar100 : DatasetUpload.Cifar100Coarse)} needs CIFAR-100's train.bin, and the archive has none{(batches ? "; it has CIFAR-10's data_batch_*.bin: send variant cifar10 or leave variant out" : "")}"),
            (null, true, true) => throw ArchiveBudget.Refused("the archive has both CIFAR-10's data_batch_*.bin and CIFAR-100's train.bin: send variant (cifar10, cifar100 or cifar100-coarse) to choose"),
            (null, true, false) => CifarVariant.Cifar10,
            (null, false, true) => CifarVariant.Cifar100,
            (null, false, false) => throw ArchiveBudget.Refused(
                "no CIFAR train file in the archive: expected data_batch_1.bin … data_batch_5.bin (CIFAR-10, the binary version) or train.bin (CIFAR-100), in any folder"),
        };
    }

    // Copies the CIFAR members of a tar or tar.gz into the folder, by file name; everything else is read past (and counted).
    private static Dictionary<string, CifarFile> Extract(string archivePath, string folder, ArchiveBudget budget)
    {
        var members = new Dictionary<string, CifarFile>(StringComparer.Ordinal);
        using var file = new FileStream(archivePath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        var prefix = new byte[2];
        int got = file.ReadAtLeast(prefix, 2, throwOnEndOfStream: false);
        if (got == 0)
        {
            throw ArchiveBudget.Refused("the file is empty: expected CIFAR's .tar.gz (or .tar)");
        }

        file.Position = 0;
        bool gzip = got == 2 && prefix[0] == 0x1f && prefix[1] == 0x8b;
        Stream raw = gzip ? new GZipStream(file, CompressionMode.Decompress, leaveOpen: true) : file;
        long compressed = file.Length;
        using Stream counted = budget.Count(raw, () => compressed, "the archive");
        try
        {
            using var guard = new TarHeaderGuard(counted);
            using var tar = new TarReader(guard);
            while (tar.GetNextEntry(copyData: false) is { } entry)
            {
                budget.CountEntries(1);
                string[] segments = ArchiveBudget.Segments(entry.Name);
                if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || segments.Length == 0 || !IsMember(segments[^1]))
                {
                    continue; // folders, links, metadata and other files hold nothing CIFAR reads
                }

                string name = segments[^1];
                if (members.TryGetValue(name, out CifarFile? first))
                {
                    throw ArchiveBudget.Refused($"two entries are named {name} ({ArchiveBudget.Quote(first.Name)} and {ArchiveBudget.Quote(entry.Name)}): which one is meant?");
                }

                string path = Path.Combine(folder, $"member-{members.Count}");
                using (var output = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
                {
                    entry.DataStream?.CopyTo(output);
                }

                members[name] = new CifarFile(DatasetUpload.Archive, entry.Name, path);
            }
        }
        catch (Exception ex) when (ex is InvalidDataException or FormatException or EndOfStreamException or ArgumentException or InvalidOperationException)
        {
            throw ArchiveBudget.Refused($"not a valid {(gzip ? "tar.gz" : "tar (nor a gzip)")} file: {ex.Message}", ex);
        }

        return members;
    }

    private static bool IsMember(string name) =>
        name is TestBatch or BatchesMeta or Train100 or Test100 or FineNames or CoarseNames || BatchNumber(name) is not null;

    private static int? BatchNumber(string name) =>
        DataBatch().Match(name) is { Success: true } match && int.TryParse(match.Groups[1].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out int number)
            ? number
            : null;

    [GeneratedRegex(@"^data_batch_([0-9]{1,6})\.bin$", RegexOptions.CultureInvariant)]
    private static partial Regex DataBatch();
}
