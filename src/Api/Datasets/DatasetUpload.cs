using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;
using TrainingService.Api.Infrastructure;
using TrainingService.Training.Data;

namespace TrainingService.Api.Datasets;

/// <summary>
/// Limits on dataset uploads (configuration section <c>Uploads</c>); the dataset limits it inherits are also the ones the
/// store loads with, so an accepted dataset always loads.
/// </summary>
public sealed class UploadOptions : DatasetLimits
{
    /// <summary>The largest upload request body, in bytes; 1 GiB by default.</summary>
    public long MaxRequestBytes { get; set; } = 1L << 30;

    /// <summary>Most entries (files and folders) in an uploaded archive (a zip or a tar); 100,000 by default.</summary>
    public int MaxArchiveEntries { get; set; } = 100_000;

    /// <summary>Most pixels (width × height) of one image in an image folder, read from its header before it is decoded; 50 million by default.</summary>
    public long MaxImagePixels { get; set; } = 50_000_000;

    /// <summary>Most pixels of a sample drawn as PNG (GET /datasets/{id}/samples), which caps its scale; 4 MP by default.</summary>
    public long MaxSamplePixels { get; set; } = 4L << 20;

    /// <summary>Most bytes of pixels of all one owner's datasets together (as MaxDatasetBytes counts them); 8 GiB by default.</summary>
    public long MaxStorageBytesPerOwner { get; set; } = 8L << 30;

    /// <summary>Dataset uploads and generations one owner may have in progress at once; 2 by default.</summary>
    public int MaxConcurrentPerOwner { get; set; } = 2;

    /// <summary>
    /// Bytes of pixels (as MaxDatasetBytes counts them) of the datasets kept loaded in memory, least recently used out;
    /// 1 GiB by default, and at least MaxDatasetBytes, so the largest dataset allowed is read once, not at every use.
    /// </summary>
    public long CacheBytes { get; set; } = 1L << 30;
}

/// <summary>A file part of an upload, on disk.</summary>
/// <param name="Field">The form field it came in ("images", "archive", …).</param>
/// <param name="FileName">The file name the client sent (without folders), or "{field} file {n}" when it sent none.</param>
/// <param name="Path">Where it is on disk.</param>
internal sealed record ReceivedFile(string Field, string FileName, string Path);

/// <summary>The fields of a dataset upload, its files already on disk.</summary>
/// <param name="Name">The dataset's name, trimmed.</param>
/// <param name="Format">idx, csv, cifar or imagefolder.</param>
/// <param name="Files">The file parts in the order sent; only images may come more than once (format cifar).</param>
internal sealed record ReceivedUpload(string Name, string Format, IReadOnlyList<ReceivedFile> Files)
{
    /// <summary>csv: channels, height, width as given; imagefolder: the size to make every image (channels 3 unless given).</summary>
    public int[]? Shape { get; init; }

    /// <summary>cifar: cifar10, cifar100 or cifar100-coarse as given; null to take it from the archive's files (cifar10 for separate files).</summary>
    public string? Variant { get; init; }

    /// <summary>imagefolder: crop or pad.</summary>
    public string Fit { get; init; } = DatasetUpload.CropFit;

    /// <summary>The path of the (first) file sent in <paramref name="field"/>, or null.</summary>
    public string? PathOf(string field) => Files.FirstOrDefault(f => f.Field == field)?.Path;

    /// <summary>Every file sent in <paramref name="field"/>, in order.</summary>
    public IReadOnlyList<ReceivedFile> All(string field) => [.. Files.Where(f => f.Field == field)];
}

/// <summary>Reads a multipart/form-data dataset upload section by section, streaming each file to disk.</summary>
internal static class DatasetUpload
{
    public const string Images = "images";
    public const string Labels = "labels";
    public const string TestImages = "testImages";
    public const string TestLabels = "testLabels";
    public const string Archive = "archive";
    public const string ClassNamesField = "classNames";
    public const string NameField = "name";
    public const string FormatField = "format";
    public const string IdxFormat = "idx";
    public const string CsvFormat = "csv";
    public const string CifarFormat = "cifar";
    public const string ImageFolderFormat = "imagefolder";

    /// <summary>Cap on file parts in one form: each becomes a file on disk before anything is checked.</summary>
    public const int MaxFileParts = 32;
    public const string ChannelsField = "channels";
    public const string HeightField = "height";
    public const string WidthField = "width";
    public const string ImageSizeField = "imageSize";
    public const string FitField = "fit";
    public const string VariantField = "variant";
    public const string CropFit = "crop";
    public const string PadFit = "pad";
    public const string Cifar10 = "cifar10";
    public const string Cifar100 = "cifar100";
    public const string Cifar100Coarse = "cifar100-coarse";
    private const string Formats = "\"idx\" (MNIST's IDX files, raw or .gz), \"csv\" (label, then pixels; with height, width, channels), "
        + "\"cifar\" (CIFAR-10/100 binary batches, or their .tar.gz in archive) or \"imagefolder\" (a .zip in archive, one folder of PNG/JPEG images per class; with imageSize)";
    public const int MaxNameLength = 200;

    private const int MaxTextFieldBytes = 1024;
    private const int MaxFileNameLength = 100;
    private static readonly string[] s_fileFields = [Images, Labels, TestImages, TestLabels, Archive, ClassNamesField];
    private static readonly string[] s_sizeFields = [ChannelsField, HeightField, WidthField, ImageSizeField];
    private static readonly string[] s_fields = [NameField, FormatField, .. s_sizeFields, FitField, VariantField, .. s_fileFields];
    private static readonly string[] s_csvShape = [ChannelsField, HeightField, WidthField];

    // The fields each format takes besides name and format.
    private static readonly Dictionary<string, string[]> s_formatFields = new(StringComparer.Ordinal)
    {
        [IdxFormat] = [Images, Labels, TestImages, TestLabels],
        [CsvFormat] = [Images, TestImages, ChannelsField, HeightField, WidthField],
        [CifarFormat] = [Images, TestImages, ClassNamesField, Archive, VariantField],
        [ImageFolderFormat] = [Archive, ImageSizeField, HeightField, WidthField, ChannelsField, FitField],
    };

    /// <summary>Receives the upload into <paramref name="folder"/>, or says what is wrong with it.</summary>
    /// <exception cref="BadHttpRequestException">The body is larger than Uploads:MaxRequestBytes (status 413), or the client stopped sending.</exception>
    public static async Task<(ReceivedUpload? Upload, ProblemHttpResult? Problem)> ReceiveAsync(
        HttpRequest request, string folder, UploadOptions limits, CancellationToken cancellationToken)
    {
        long maxBytes = limits.MaxRequestBytes;
        if (!MediaTypeHeaderValue.TryParse(request.ContentType, out MediaTypeHeaderValue? mediaType)
            || !mediaType.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase)
            || HeaderUtilities.RemoveQuotes(mediaType.Boundary) is not { Length: > 0 and <= 70 } boundary)
        {
            return (null, Problems.Request(
                StatusCodes.Status415UnsupportedMediaType,
                $"Content-Type is \"{request.ContentType}\"; send multipart/form-data with the fields name, format, images and labels.",
                "A dataset upload must be multipart/form-data"));
        }

        var text = new Dictionary<string, string>(StringComparer.Ordinal);
        var files = new List<ReceivedFile>();
        var sizes = new Dictionary<string, int>(StringComparer.Ordinal);
        var reader = new MultipartReader(boundary.ToString(), new BodyLimits.LimitedBody(request.Body, maxBytes, "Uploads:MaxRequestBytes"))
        {
            // The default (128 MB per part) would cap one file below the request limit.
            BodyLengthLimit = maxBytes,
        };
        try
        {
            while (await reader.ReadNextSectionAsync(cancellationToken) is { } section)
            {
                if (!ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out ContentDispositionHeaderValue? disposition)
                    || !disposition.DispositionType.Equals("form-data", StringComparison.OrdinalIgnoreCase)
                    || HeaderUtilities.RemoveQuotes(disposition.Name) is not { Length: > 0 } sentName)
                {
                    return (null, Invalid("body", "A part of the body has no Content-Disposition: form-data header with a field name."));
                }

                string? field = Array.Find(s_fields, f => sentName.Equals(f, StringComparison.OrdinalIgnoreCase));
                if (field is null)
                {
                    return (null, Invalid(sentName.ToString(), $"Unknown field \"{sentName}\"; the fields are {string.Join(", ", s_fields)}."));
                }

                // images may come more than once (CIFAR's train batches); whether the format allows it is checked at the end.
                if (text.ContainsKey(field) || sizes.ContainsKey(field) || (field != Images && files.Exists(f => f.Field == field)))
                {
                    return (null, Invalid(field, $"{field} is given twice."));
                }

                if (!s_fileFields.Contains(field))
                {
                    (string? value, ProblemHttpResult? problem) = await ReadTextAsync(section, field, cancellationToken);
                    if (problem is not null)
                    {
                        return (null, problem);
                    }

                    if (s_sizeFields.Contains(field))
                    {
                        (int max, string limit) = field == ChannelsField
                            ? (limits.MaxChannels, nameof(DatasetLimits.MaxChannels))
                            : (limits.MaxSide, nameof(DatasetLimits.MaxSide));
                        if (!int.TryParse(value!.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out int size) || size < 1)
                        {
                            return (null, Invalid(field, $"{field} must be a whole number 1..{max}, got \"{value}\"."));
                        }

                        if (size > max)
                        {
                            return (null, Problems.About(
                                StatusCodes.Status413PayloadTooLarge,
                                field,
                                $"{field} is {size}, over the limit of {max} (configuration {DatasetLimits.Key(limit)}).",
                                TooLargeTitle));
                        }

                        sizes[field] = size;
                        continue;
                    }

                    // Refused at once rather than after the files have arrived.
                    string normalised = field == NameField ? value! : value!.Trim().ToLowerInvariant();
                    ProblemHttpResult? unknown = field switch
                    {
                        FormatField when !s_formatFields.ContainsKey(normalised) =>
                            Invalid(FormatField, $"Unknown format \"{value}\"; the formats are {Formats}."),
                        FitField when normalised is not (CropFit or PadFit) =>
                            Invalid(FitField, $"Unknown fit \"{value}\"; fit is \"crop\" (scale the short side to the size, cut the middle) or \"pad\" (scale the long side to the size, black borders)."),
                        VariantField when normalised is not (Cifar10 or Cifar100 or Cifar100Coarse) =>
                            Invalid(VariantField, $"Unknown variant \"{value}\"; the variants are \"cifar10\" (1 label byte), \"cifar100\" (2 label bytes, the fine label) and \"cifar100-coarse\" (2 label bytes, the coarse label)."),
                        _ => null,
                    };
                    if (unknown is not null)
                    {
                        return (null, unknown);
                    }

                    text[field] = normalised;
                    continue;
                }

                if (files.Count >= MaxFileParts)
                {
                    return (null, Invalid(field, $"The form holds more than {MaxFileParts} files; CIFAR's six batches, a test batch and a names file are the most any format takes."));
                }

                int number = files.Count(f => f.Field == field) + 1;
                string path = Path.Combine(folder, number == 1 ? field : $"{field}-{number}");
                await using (var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
                {
                    await section.Body.CopyToAsync(file, cancellationToken);
                }

                files.Add(new ReceivedFile(field, FileNameOf(disposition, field, number), path));
            }
        }
        catch (InvalidDataException ex)
        {
            return (null, Invalid("body", $"The body is not valid multipart/form-data: {ex.Message}"));
        }

        string? name = text.GetValueOrDefault(NameField), format = text.GetValueOrDefault(FormatField);
        ProblemHttpResult? missing = Check(name, format, text, sizes, files);
        if (missing is not null)
        {
            return (null, missing);
        }

        int[]? shape = format switch
        {
            CsvFormat => [sizes[ChannelsField], sizes[HeightField], sizes[WidthField]],
            ImageFolderFormat => [
                sizes.GetValueOrDefault(ChannelsField, 3),
                sizes.GetValueOrDefault(ImageSizeField, sizes.GetValueOrDefault(HeightField)),
                sizes.GetValueOrDefault(ImageSizeField, sizes.GetValueOrDefault(WidthField))],
            _ => null,
        };
        return (new ReceivedUpload(name!.Trim(), format!, files)
        {
            Shape = shape,
            Variant = text.GetValueOrDefault(VariantField),
            Fit = text.GetValueOrDefault(FitField, CropFit),
        }, null);
    }

    // What is missing, given twice or not for the format; null when the upload is complete.
    private static ProblemHttpResult? Check(
        string? name, string? format, Dictionary<string, string> text, Dictionary<string, int> sizes, List<ReceivedFile> files)
    {
        if (name is null)
        {
            return Invalid(NameField, "name is required: a name for the dataset.");
        }

        if (string.IsNullOrWhiteSpace(name) || name.Trim().Length > MaxNameLength)
        {
            return Invalid(NameField, $"name must have 1 to {MaxNameLength} characters.");
        }

        if (format is null)
        {
            return Invalid(FormatField, $"format is required: {Formats}.");
        }

        bool Has(string field) => files.Exists(f => f.Field == field) || sizes.ContainsKey(field) || text.ContainsKey(field);
        string[] taken = s_formatFields[format];
        if (s_fields.FirstOrDefault(f => f is not (NameField or FormatField) && Has(f) && !taken.Contains(f)) is { } extra)
        {
            return Invalid(extra, (format, extra) switch
            {
                (IdxFormat, _) when s_sizeFields.Contains(extra) || extra == FitField =>
                    "IDX files carry their own size: give channels, height and width only with format csv or imagefolder.",
                (CsvFormat, Labels or TestLabels) => "A CSV has its labels in its first column: send images (and testImages) only.",
                (CifarFormat, _) when s_sizeFields.Contains(extra) || extra == FitField =>
                    $"CIFAR images are 3×32×32: {extra} is not for format cifar.",
                (ImageFolderFormat, Images or Labels or TestImages or TestLabels or ClassNamesField) =>
                    "An image folder comes as one .zip in the field archive, one folder per class inside (optionally under train/ and test/).",
                _ => $"{extra} is not a field of format {format}; format {format} takes {string.Join(", ", taken)}.",
            });
        }

        if (format != CifarFormat && files.Count(f => f.Field == Images) > 1)
        {
            return Invalid(Images, $"{Images} is given twice.");
        }

        switch (format)
        {
            case CsvFormat:
                if (s_csvShape.FirstOrDefault(f => !sizes.ContainsKey(f)) is { } absent)
                {
                    return Invalid(absent, $"{absent} is required with format csv: the images' size, channels × height × width.");
                }

                return Has(Images) ? null : Invalid(Images, "The file images is required: the train CSV (label, then pixels, one image per line).");
            case IdxFormat:
                return (Has(Images), Has(Labels), Has(TestImages), Has(TestLabels)) switch
                {
                    (false, _, _, _) => Invalid(Images, "The file images is required: the train images (IDX, raw or .gz)."),
                    (_, false, _, _) => Invalid(Labels, "The file labels is required: the train labels (IDX, raw or .gz)."),
                    (_, _, true, false) => Invalid(TestLabels, "testImages needs testLabels: send both test files or neither."),
                    (_, _, false, true) => Invalid(TestImages, "testLabels needs testImages: send both test files or neither."),
                    _ => null,
                };
            case CifarFormat:
                if (Has(Archive) && new[] { Images, TestImages, ClassNamesField }.FirstOrDefault(Has) is { } beside)
                {
                    return Invalid(beside, $"The CIFAR files come either in archive (a .tar.gz) or as images, testImages and classNames, not both: {beside} was sent with archive.");
                }

                return Has(Archive) || Has(Images) ? null : Invalid(
                    Images,
                    "The file images is required with format cifar: the train batches (data_batch_1.bin … data_batch_5.bin, or CIFAR-100's train.bin), one file part each; or send the whole .tar.gz as archive.");
            default:
                if (!Has(Archive))
                {
                    return Invalid(Archive, "The file archive is required with format imagefolder: a .zip with one folder of PNG/JPEG images per class.");
                }

                if (Has(ImageSizeField) && (Has(HeightField) || Has(WidthField)))
                {
                    return Invalid(ImageSizeField, "Give imageSize (square images) or height and width, not both.");
                }

                if (!Has(ImageSizeField) && !Has(HeightField) && !Has(WidthField))
                {
                    return Invalid(ImageSizeField, "imageSize is required with format imagefolder: the side of the square images to make (or give height and width).");
                }

                if (Has(HeightField) != Has(WidthField))
                {
                    string absentSide = Has(HeightField) ? WidthField : HeightField;
                    return Invalid(absentSide, $"{absentSide} is required with {(absentSide == WidthField ? HeightField : WidthField)}: the size to make every image.");
                }

                return sizes.TryGetValue(ChannelsField, out int channels) && channels is not (1 or 3)
                    ? Invalid(ChannelsField, $"channels must be 1 (grey, by luminance) or 3 (RGB) with format imagefolder, got {channels}.")
                    : null;
        }
    }

    // The client's file name without folders, for messages; short, and never empty.
    private static string FileNameOf(ContentDispositionHeaderValue disposition, string field, int number)
    {
        string sent = HeaderUtilities.RemoveQuotes(disposition.FileNameStar.HasValue ? disposition.FileNameStar : disposition.FileName).ToString().Replace('\\', '/');
        string bare = sent[(sent.LastIndexOf('/') + 1)..].Trim();
        return bare.Length == 0 ? $"{field} file {number}" : bare.Length > MaxFileNameLength ? bare[..MaxFileNameLength] + "…" : bare;
    }

    /// <summary>The format's name in titles: "IDX", "CSV", "CIFAR", "image folder".</summary>
    public static string Describe(string format) => format == ImageFolderFormat ? "image folder" : format.ToUpperInvariant();

    /// <summary>A 400 problem that names the form field at fault.</summary>
    private static ProblemHttpResult Invalid(string field, string detail) => Problems.Invalid(field, detail, "The upload is invalid");

    public const string TooLargeTitle = "The upload is too large";

    /// <summary>A 413 problem for a body over the limit.</summary>
    public static ProblemHttpResult TooLarge(long maxBytes) => Problems.Request(
        StatusCodes.Status413PayloadTooLarge,
        $"The request body is over the limit of {maxBytes.ToString("N0", CultureInfo.InvariantCulture)} bytes (configuration Uploads:MaxRequestBytes).",
        TooLargeTitle);

    private static async Task<(string? Value, ProblemHttpResult? Problem)> ReadTextAsync(MultipartSection section, string field, CancellationToken cancellationToken)
    {
        var buffer = new byte[MaxTextFieldBytes + 1];
        int length = await section.Body.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken);
        return length > MaxTextFieldBytes
            ? (null, Invalid(field, $"{field} is longer than {MaxTextFieldBytes} bytes."))
            : (Encoding.UTF8.GetString(buffer, 0, length), null);
    }
}
