using System.Globalization;
using System.IO.Compression;
using SkiaSharp;
using TrainingService.Training.Data;

namespace TrainingService.Api.Datasets;

/// <summary>
/// Reads an image folder from a zip: one folder per class (its name is the class's; labels in ordinal order of the names),
/// PNG and JPEG files in it at any depth, each resized to one size. Optionally the top holds train/ and test/, each with
/// the class folders; test classes must be train classes. A single top folder holding only folders is stepped into
/// (a zipped folder). Dot files and folders and __MACOSX/ are skipped, and so are files that are not .png, .jpg or .jpeg.
/// Every error is a <see cref="DatasetFormatException"/> for the field archive, naming the entry.
/// </summary>
internal static class ImageFolderReader
{
    /// <summary>Labels are one byte.</summary>
    public const int MaxClasses = 256;


    /// <summary>Reads the zip at <paramref name="zipPath"/> into images of <paramref name="channels"/>×<paramref name="height"/>×<paramref name="width"/>.</summary>
    /// <param name="name">The dataset's name.</param>
    /// <param name="zipPath">The uploaded zip.</param>
    /// <param name="channels">1 (grey, by luminance) or 3 (RGB).</param>
    /// <param name="height">Height of every image made.</param>
    /// <param name="width">Width of every image made.</param>
    /// <param name="pad">Scale the long side to the size and pad with black (letterbox); otherwise scale the short side and cut the middle.</param>
    /// <param name="limits">The archive caps.</param>
    /// <exception cref="DatasetFormatException">The zip is unreadable, breaks a cap, or its folders or images are not a dataset.</exception>
    public static ImageDataset Read(string name, string zipPath, int channels, int height, int width, bool pad, UploadOptions limits)
    {
        if (channels is not (1 or 3))
        {
            throw new ArgumentOutOfRangeException(nameof(channels), channels, "1 or 3");
        }

        var budget = new ArchiveBudget(limits);
        using var file = new FileStream(zipPath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        if (ZipDirectory.CountEntries(file, limits.MaxArchiveEntries) > limits.MaxArchiveEntries)
        {
            budget.CountEntries(limits.MaxArchiveEntries + 1); // refused before ZipArchive holds every entry in memory
        }

        file.Seek(0, SeekOrigin.Begin);
        ZipArchive zip;
        try
        {
            zip = new ZipArchive(file, ZipArchiveMode.Read, leaveOpen: true);
        }
        catch (InvalidDataException ex)
        {
            throw ArchiveBudget.Refused($"not a zip file: {ex.Message}", ex);
        }

        using (zip)
        {
            System.Collections.ObjectModel.ReadOnlyCollection<ZipArchiveEntry> entries;
            try
            {
                entries = zip.Entries;
            }
            catch (InvalidDataException ex)
            {
                throw ArchiveBudget.Refused($"the zip's directory is damaged: {ex.Message}", ex);
            }

            budget.CountEntries(entries.Count);
            Layout layout = Lay(entries);

            // The stored size is known from the count and the target size: refused before a pixel is allocated.
            long trainBytes = limits.Check(DatasetUpload.Archive, layout.Train.Count, channels, height, width);
            limits.Check(DatasetUpload.Archive, layout.Test?.Count ?? 0, channels, height, width, trainBytes);
            var decoder = new Decoder(budget, limits, channels, height, width, pad);
            ImageSplit train = decoder.Split(layout.Train);
            ImageSplit? test = layout.Test is { } testImages ? decoder.Split(testImages) : null;
            (float[] mean, float[] std) = ImageStatistics.MeanStd(train.Images, channels, height, width);
            return new ImageDataset
            {
                Name = name,
                Channels = channels,
                Height = height,
                Width = width,
                Classes = layout.Classes.Count,
                Train = train,
                Test = test,
                Mean = mean,
                Std = std,
                ClassNames = layout.Classes,
            };
        }
    }

    private static bool IsImage(string fileName) =>
        Path.GetExtension(fileName).ToLowerInvariant() is ".png" or ".jpg" or ".jpeg";

    private static bool IsSkipped(string segment) =>
        segment.StartsWith('.') || segment.Equals("__MACOSX", StringComparison.OrdinalIgnoreCase);

    private static bool IsUnder(string[] path, string[] folder) =>
        path.Length > folder.Length && path.AsSpan(0, folder.Length).SequenceEqual(folder);

    private static string Join(string[] segments) => string.Join('/', segments);

    // Which images are which class of which split.
    private static Layout Lay(IEnumerable<ZipArchiveEntry> entries)
    {
        var folders = new HashSet<string>(StringComparer.Ordinal);
        var folderPaths = new List<string[]>();
        var images = new List<Image>();
        foreach (ZipArchiveEntry entry in entries)
        {
            string[] segments = ArchiveBudget.Segments(entry.FullName);
            if (segments.Length == 0 || segments.Any(IsSkipped))
            {
                continue;
            }

            bool isFolder = entry.FullName.EndsWith('/') || entry.FullName.EndsWith('\\');
            for (int depth = 1; depth <= (isFolder ? segments.Length : segments.Length - 1); depth++)
            {
                if (folders.Add(Join(segments[..depth])))
                {
                    folderPaths.Add(segments[..depth]);
                }
            }

            if (!isFolder && IsImage(segments[^1]))
            {
                images.Add(new Image(segments, entry));
            }
        }

        List<string> Children(string[] folder) =>
            [.. folderPaths.Where(f => f.Length == folder.Length + 1 && IsUnder(f, folder)).Select(f => f[^1]).Order(StringComparer.Ordinal)];
        Image? Direct(string[] folder) => images.Find(i => i.Segments.Length == folder.Length + 1 && IsUnder(i.Segments, folder));

        // A zipped folder: step into a lone top folder that holds folders and no images of its own.
        string[] root = [];
        while (Children(root) is [var only] && Direct(root) is null && Direct([.. root, only]) is null && Children([.. root, only]).Count > 0)
        {
            root = [.. root, only];
        }

        List<string> top = Children(root);
        string? trainFolder = top.Find(t => t.Equals("train", StringComparison.OrdinalIgnoreCase));
        string? testFolder = top.Find(t => t.Equals("test", StringComparison.OrdinalIgnoreCase));
        if ((trainFolder ?? testFolder) is not null)
        {
            if (top.Find(t => t != trainFolder && t != testFolder) is { } other)
            {
                throw ArchiveBudget.Refused(
                    $"the folder {ArchiveBudget.Quote(Join([.. root, other]))} is beside train/ and test/: put the class folders inside train/ (and test/), or use no train/ and test/ folders at all");
            }

            if (trainFolder is null)
            {
                throw ArchiveBudget.Refused($"{ArchiveBudget.Quote(Join([.. root, testFolder!]))} has no train/ beside it: the train images go in train/, one folder per class");
            }
        }

        string[] trainRoot = trainFolder is null ? root : [.. root, trainFolder];
        List<string> classes = Children(trainRoot);
        if (Direct(trainRoot) is { } loose)
        {
            throw ArchiveBudget.Refused($"{ArchiveBudget.Quote(loose.Entry.FullName)} is not in a class folder: put each image in a folder named after its class");
        }

        if (classes.Count == 0)
        {
            throw ArchiveBudget.Refused("no class folders: the archive holds no folder with PNG or JPEG images (one folder per class)");
        }

        if (classes.Count == 1)
        {
            throw ArchiveBudget.Refused($"one class folder ({ArchiveBudget.Quote(Join([.. trainRoot, classes[0]]))}): a classifier needs at least two, one folder per class");
        }

        if (classes.Count > MaxClasses)
        {
            throw ArchiveBudget.Refused($"{classes.Count.ToString(CultureInfo.InvariantCulture)} class folders, over the limit of {MaxClasses}");
        }

        List<Image> train = Members(trainRoot, classes, classes, images);
        List<Image>? test = null;
        if (testFolder is not null)
        {
            string[] testRoot = [.. root, testFolder];
            if (Direct(testRoot) is { } looseTest)
            {
                throw ArchiveBudget.Refused($"{ArchiveBudget.Quote(looseTest.Entry.FullName)} is not in a class folder: put each test image in the folder of its class");
            }

            List<string> testClasses = Children(testRoot);
            if (testClasses.Find(c => !classes.Contains(c)) is { } unknown)
            {
                throw ArchiveBudget.Refused(
                    $"the test class folder {ArchiveBudget.Quote(Join([.. testRoot, unknown]))} has no train folder of that name: the test classes must be train classes");
            }

            test = Members(testRoot, testClasses, classes, images);
            if (test.Count == 0)
            {
                throw ArchiveBudget.Refused($"{ArchiveBudget.Quote(Join(testRoot))} holds no PNG or JPEG images");
            }
        }

        return new Layout(classes, train, test);
    }

    // The images of each class folder, labelled by the class's place among all classes; an empty class folder is refused.
    private static List<Image> Members(string[] splitRoot, List<string> folderNames, List<string> classes, List<Image> images)
    {
        var members = new List<Image>();
        foreach (string folder in folderNames)
        {
            string[] path = [.. splitRoot, folder];
            byte label = (byte)classes.IndexOf(folder);
            List<Image> inFolder = [.. images.Where(i => IsUnder(i.Segments, path)).OrderBy(i => Join(i.Segments), StringComparer.Ordinal)];
            if (inFolder.Count == 0)
            {
                throw ArchiveBudget.Refused($"the class folder {ArchiveBudget.Quote(Join(path))} holds no PNG or JPEG images");
            }

            members.AddRange(inFolder.Select(i => i with { Label = label }));
        }

        return members;
    }

    private sealed record Image(string[] Segments, ZipArchiveEntry Entry)
    {
        public byte Label { get; init; }
    }

    private sealed record Layout(List<string> Classes, List<Image> Train, List<Image>? Test);

    // Reads, checks and resizes images one at a time into a split's arrays.
    private sealed class Decoder(ArchiveBudget budget, UploadOptions limits, int channels, int height, int width, bool pad)
    {
        private readonly int _sampleSize = channels * height * width;

        public ImageSplit Split(List<Image> images)
        {
            var pixels = new byte[(long)images.Count * _sampleSize];
            var labels = new byte[images.Count];
            for (int i = 0; i < images.Count; i++)
            {
                Decode(images[i].Entry, pixels.AsSpan(i * _sampleSize, _sampleSize));
                labels[i] = images[i].Label;
            }

            return new ImageSplit { Images = pixels, Labels = labels };
        }

        private static string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

        private byte[] ReadEntry(ZipArchiveEntry entry)
        {
            try
            {
                // The declared length is only a first guess at the buffer's size; the counting stream decides.
                using var buffer = new MemoryStream((int)Math.Clamp(entry.Length, 0, 1 << 20));
                // No PNG or JPEG within the pixel cap is larger than 8 bytes a pixel; reading stops there, not at 2 GB.
                long maxBytes = Math.Min(Array.MaxLength, (limits.MaxImagePixels * 8L) + (1 << 20));
                using (Stream counted = budget.Count(entry.Open(), () => entry.CompressedLength, ArchiveBudget.Quote(entry.FullName), maxBytes))
                {
                    counted.CopyTo(buffer);
                }

                return buffer.ToArray();
            }
            catch (Exception ex) when (ex is InvalidDataException or NotSupportedException)
            {
                throw ArchiveBudget.Refused($"{ArchiveBudget.Quote(entry.FullName)} cannot be read from the zip: {ex.Message}", ex);
            }
        }

        private void Decode(ZipArchiveEntry entry, Span<byte> sample)
        {
            byte[] bytes = ReadEntry(entry);
            string quoted = ArchiveBudget.Quote(entry.FullName);
            using SKData data = SKData.CreateCopy(bytes);
            using SKCodec? codec = SKCodec.Create(data);
            if (codec is null)
            {
                throw ArchiveBudget.Refused($"{quoted} is not an image that can be read: expected PNG or JPEG");
            }

            if (codec.EncodedFormat is not (SKEncodedImageFormat.Png or SKEncodedImageFormat.Jpeg))
            {
                throw ArchiveBudget.Refused($"{quoted} is a {codec.EncodedFormat.ToString().ToUpperInvariant()} image: only PNG and JPEG are read");
            }

            // The header's size, before a pixel is decoded.
            (int sourceWidth, int sourceHeight) = (codec.Info.Width, codec.Info.Height);
            long sourcePixels = (long)sourceWidth * sourceHeight;
            if (sourcePixels > limits.MaxImagePixels)
            {
                throw DatasetLimits.TooLarge(
                    DatasetUpload.Archive,
                    nameof(UploadOptions.MaxImagePixels),
                    $"{quoted} is {sourceWidth}×{sourceHeight} ({N(sourcePixels)} pixels), over the limit of {N(limits.MaxImagePixels)} pixels");
            }

            if (!ImageFit.TryDecode(codec, channels, height, width, pad ? Fit.Pad : Fit.Crop, sample, out SKCodecResult result))
            {
                throw ArchiveBudget.Refused($"{quoted} could not be decoded ({result}): a damaged or truncated image");
            }
        }
    }
}
