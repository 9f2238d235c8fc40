using System.Globalization;
using System.Text;

namespace TrainingService.Training.Data;

/// <summary>Which CIFAR binary layout, and which label of CIFAR-100's two.</summary>
public enum CifarVariant
{
    /// <summary>CIFAR-10: records of 1 label byte + 3×32×32 pixels; 10 classes.</summary>
    Cifar10,

    /// <summary>CIFAR-100 with its fine label: records of 2 label bytes (coarse, fine) + 3×32×32 pixels; 100 classes.</summary>
    Cifar100,

    /// <summary>CIFAR-100 with its coarse label (the superclass); 20 classes.</summary>
    Cifar100Coarse,
}

/// <summary>One CIFAR input file: the form field it came through, the name to report in errors, and where it is on disk.</summary>
/// <param name="Field">The upload's field at fault when the file is bad ("images", "testImages", "classNames" or "archive").</param>
/// <param name="Name">The file's name as sent, e.g. data_batch_3.bin or cifar-10-batches-bin/test_batch.bin.</param>
/// <param name="Path">The file on disk.</param>
public sealed record CifarFile(string Field, string Name, string Path);

/// <summary>
/// Reads the CIFAR-10/100 binary layout: each file is a run of records, each record the label byte(s) then 3×32×32 pixels,
/// channel by channel (red, green, blue), row by row. Class names come from a text file with one name per line
/// (batches.meta.txt, fine_label_names.txt or coarse_label_names.txt); blank lines are skipped.
/// Each error names the field, the file and the record.
/// </summary>
public static class CifarReader
{
    public const int Side = 32;
    public const int Channels = 3;
    public const int PixelBytes = Channels * Side * Side;
    public const int MaxNamesBytes = 1 << 20;

    private const int RecordsPerRead = 1024;

    /// <summary>Bytes per record: the label bytes, then the pixels.</summary>
    public static int RecordSize(CifarVariant variant) => LabelBytes(variant) + PixelBytes;

    /// <summary>The number of classes of <paramref name="variant"/>.</summary>
    public static int ClassCount(CifarVariant variant) => variant switch
    {
        CifarVariant.Cifar10 => 10,
        CifarVariant.Cifar100 => 100,
        _ => 20,
    };

    /// <summary>Reads the train files (in order), the optional test file and the optional class names.</summary>
    /// <exception cref="DatasetFormatException">A file is empty, truncated, too large, has a label out of range, or the names do not fit.</exception>
    public static ImageDataset Read(
        string name, CifarVariant variant, IReadOnlyList<CifarFile> train, CifarFile? test = null, CifarFile? classNames = null, DatasetLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(train);
        ArgumentOutOfRangeException.ThrowIfZero(train.Count);
        int classes = ClassCount(variant);
        IReadOnlyList<string>? names = classNames is null ? null : ReadNames(classNames, variant, classes);
        limits ??= new DatasetLimits();
        ImageSplit trainSplit = ReadSplit(train, variant, limits, 0);
        ImageSplit? testSplit = test is null ? null : ReadSplit([test], variant, limits, trainSplit.Images.Length);
        (float[] mean, float[] std) = ImageStatistics.MeanStd(trainSplit.Images, Channels, Side, Side);
        return new ImageDataset
        {
            Name = name,
            Channels = Channels,
            Height = Side,
            Width = Side,
            Classes = classes,
            Train = trainSplit,
            Test = testSplit,
            Mean = mean,
            Std = std,
            ClassNames = names,
        };
    }

    private static int LabelBytes(CifarVariant variant) => variant == CifarVariant.Cifar10 ? 1 : 2;

    private static string Describe(CifarVariant variant) => variant switch
    {
        CifarVariant.Cifar10 => "CIFAR-10",
        CifarVariant.Cifar100 => "CIFAR-100 (fine labels)",
        _ => "CIFAR-100 (coarse labels)",
    };

    private static ImageSplit ReadSplit(IReadOnlyList<CifarFile> files, CifarVariant variant, DatasetLimits limits, long bytesBefore)
    {
        int recordSize = RecordSize(variant);
        long total = 0;
        foreach (CifarFile file in files)
        {
            long length = new FileInfo(file.Path).Length;
            if (length == 0)
            {
                throw new DatasetFormatException(file.Field, $"{file.Name}: the file is empty");
            }

            if (length % recordSize != 0)
            {
                long whole = length / recordSize;
                int other = variant == CifarVariant.Cifar10 ? RecordSize(CifarVariant.Cifar100) : RecordSize(CifarVariant.Cifar10);
                string hint = length % other == 0
                    ? $"; it is a whole number of {N(other)}-byte records, as {(variant == CifarVariant.Cifar10 ? "CIFAR-100 has: send variant cifar100" : "CIFAR-10 has: send variant cifar10")}"
                    : "";
                throw new DatasetFormatException(
                    file.Field,
                    $"{file.Name}: {N(length)} bytes are not a whole number of {N(recordSize)}-byte {Describe(variant)} records: record {N(whole + 1)} is truncated ({N(length % recordSize)} of its {N(recordSize)} bytes){hint}");
            }

            total += length / recordSize;
        }

        var images = new byte[limits.Check(files[0].Field, total, Channels, Side, Side, bytesBefore)];
        var labels = new byte[total];
        int labelBytes = LabelBytes(variant);
        var buffer = new byte[RecordsPerRead * recordSize];
        long at = 0;
        foreach (CifarFile file in files)
        {
            using var stream = new FileStream(file.Path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
            long record = 0;
            int got;
            while ((got = stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false)) > 0)
            {
                if (got % recordSize != 0)
                {
                    // The length was checked above; a file that changes while read is not a CIFAR file either.
                    throw new DatasetFormatException(file.Field, $"{file.Name}: the file changed while it was read");
                }

                for (int offset = 0; offset < got; offset += recordSize)
                {
                    record++;
                    CheckLabel(file, record, "label", buffer[offset], 10, "CIFAR-10 has 10 classes", labelBytes == 1);
                    CheckLabel(file, record, "coarse label", buffer[offset], 20, "CIFAR-100 has 20 superclasses", labelBytes == 2);
                    CheckLabel(file, record, "fine label", buffer[offset + 1], 100, "CIFAR-100 has 100 classes", labelBytes == 2);
                    labels[at] = buffer[offset + (variant == CifarVariant.Cifar100 ? 1 : 0)];
                    buffer.AsSpan(offset + labelBytes, PixelBytes).CopyTo(images.AsSpan(checked((int)(at * PixelBytes))));
                    at++;
                }
            }
        }

        return new ImageSplit { Images = images, Labels = labels };
    }

    private static void CheckLabel(CifarFile file, long record, string what, byte label, int count, string why, bool applies)
    {
        if (applies && label >= count)
        {
            throw new DatasetFormatException(file.Field, $"{file.Name}: record {N(record)}: {what} {label} is outside 0..{count - 1} ({why})");
        }
    }

    private static string[] ReadNames(CifarFile file, CifarVariant variant, int classes)
    {
        long length = new FileInfo(file.Path).Length;
        if (length > MaxNamesBytes)
        {
            throw new DatasetFormatException(file.Field, $"{file.Name}: {N(length)} bytes is too large for a list of class names (at most {N(MaxNamesBytes)})");
        }

        string[] names;
        try
        {
            names = [.. File.ReadAllText(file.Path, new UTF8Encoding(false, throwOnInvalidBytes: true))
                .Split('\n')
                .Select(line => line.Trim())
                .Where(line => line.Length > 0)];
        }
        catch (DecoderFallbackException)
        {
            throw new DatasetFormatException(file.Field, $"{file.Name}: not UTF-8 text: expected one class name per line");
        }

        if (names.Length != classes)
        {
            throw new DatasetFormatException(file.Field, $"{file.Name}: {names.Length} class names, but {Describe(variant)} has {classes} classes (one name per line)");
        }

        return names;
    }

    private static string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);
}
