using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;

namespace TrainingService.Api.Datasets;

/// <summary>Limits on dataset uploads (configuration section <c>Uploads</c>).</summary>
public sealed class UploadOptions
{
    /// <summary>The largest upload request body, in bytes; 1 GiB by default.</summary>
    public long MaxRequestBytes { get; set; } = 1L << 30;
}

/// <summary>The fields of a dataset upload, its files already on disk.</summary>
/// <param name="Name">The dataset's name, trimmed.</param>
/// <param name="Files">Form field name ("images", "labels", "testImages", "testLabels") → path of the file as received.</param>
/// <param name="Format">idx or csv.</param>
/// <param name="Shape">csv: channels, height, width as given.</param>
internal sealed record ReceivedUpload(string Name, IReadOnlyDictionary<string, string> Files, string Format = DatasetUpload.IdxFormat, int[]? Shape = null);

/// <summary>Reads a multipart/form-data dataset upload section by section, streaming each file to disk.</summary>
internal static class DatasetUpload
{
    public const string Images = "images";
    public const string Labels = "labels";
    public const string TestImages = "testImages";
    public const string TestLabels = "testLabels";
    public const string NameField = "name";
    public const string FormatField = "format";
    public const string IdxFormat = "idx";
    public const string CsvFormat = "csv";
    public const string ChannelsField = "channels";
    public const string HeightField = "height";
    public const string WidthField = "width";
    private const string Formats = "\"idx\" (MNIST's IDX files, raw or .gz) or \"csv\" (label, then pixels; with height, width, channels)";
    public const int MaxNameLength = 200;

    private const int MaxTextFieldBytes = 1024;
    private static readonly string[] s_fileFields = [Images, Labels, TestImages, TestLabels];
    private static readonly string[] s_shapeFields = [ChannelsField, HeightField, WidthField];
    private static readonly string[] s_fields = [NameField, FormatField, .. s_shapeFields, .. s_fileFields];

    /// <summary>Receives the upload into <paramref name="folder"/>, or says what is wrong with it.</summary>
    /// <exception cref="BadHttpRequestException">The body is larger than <paramref name="maxBytes"/> (status 413), or the client stopped sending.</exception>
    public static async Task<(ReceivedUpload? Upload, ProblemHttpResult? Problem)> ReceiveAsync(
        HttpRequest request, string folder, long maxBytes, CancellationToken cancellationToken)
    {
        if (!MediaTypeHeaderValue.TryParse(request.ContentType, out MediaTypeHeaderValue? mediaType)
            || !mediaType.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase)
            || HeaderUtilities.RemoveQuotes(mediaType.Boundary) is not { Length: > 0 and <= 70 } boundary)
        {
            return (null, TypedResults.Problem(
                statusCode: StatusCodes.Status415UnsupportedMediaType,
                title: "A dataset upload must be multipart/form-data",
                detail: $"Content-Type is \"{request.ContentType}\"; send multipart/form-data with the fields name, format, images and labels."));
        }

        string? name = null, format = null;
        var files = new Dictionary<string, string>(StringComparer.Ordinal);
        var shape = new Dictionary<string, int>(StringComparer.Ordinal);
        var reader = new MultipartReader(boundary.ToString(), new LimitedReadStream(request.Body, maxBytes))
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

                if ((field == NameField && name is not null) || (field == FormatField && format is not null) || files.ContainsKey(field) || shape.ContainsKey(field))
                {
                    return (null, Invalid(field, $"{field} is given twice."));
                }

                if (field is NameField or FormatField || s_shapeFields.Contains(field))
                {
                    (string? value, ProblemHttpResult? problem) = await ReadTextAsync(section, field, cancellationToken);
                    if (problem is not null)
                    {
                        return (null, problem);
                    }

                    if (field == NameField)
                    {
                        name = value;
                    }
                    else if (field == FormatField)
                    {
                        format = value!.Trim().ToLowerInvariant();
                        if (format is not (IdxFormat or CsvFormat))
                        {
                            // Refused at once rather than after the files have arrived.
                            return (null, Invalid(FormatField, $"Unknown format \"{value}\"; the formats are {Formats}."));
                        }
                    }
                    else
                    {
                        int max = field == ChannelsField ? 64 : 1024;
                        if (!int.TryParse(value!.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out int size) || size < 1 || size > max)
                        {
                            return (null, Invalid(field, $"{field} must be a whole number 1..{max}, got \"{value}\"."));
                        }

                        shape[field] = size;
                    }

                    continue;
                }

                string path = Path.Combine(folder, field);
                await using (var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
                {
                    await section.Body.CopyToAsync(file, cancellationToken);
                }

                files.Add(field, path);
            }
        }
        catch (InvalidDataException ex)
        {
            return (null, Invalid("body", $"The body is not valid multipart/form-data: {ex.Message}"));
        }

        ProblemHttpResult? missing = (name, format) switch
        {
            (null, _) => Invalid(NameField, "name is required: a name for the dataset."),
            _ when string.IsNullOrWhiteSpace(name) || name.Trim().Length > MaxNameLength =>
                Invalid(NameField, $"name must have 1 to {MaxNameLength} characters."),
            (_, null) => Invalid(FormatField, $"format is required: {Formats}."),
            (_, CsvFormat) when s_shapeFields.FirstOrDefault(f => !shape.ContainsKey(f)) is { } absent =>
                Invalid(absent, $"{absent} is required with format csv: the images' size, channels × height × width."),
            (_, CsvFormat) when !files.ContainsKey(Images) => Invalid(Images, "The file images is required: the train CSV (label, then pixels, one image per line)."),
            (_, CsvFormat) when files.ContainsKey(Labels) || files.ContainsKey(TestLabels) =>
                Invalid(files.ContainsKey(Labels) ? Labels : TestLabels, "A CSV has its labels in its first column: send images (and testImages) only."),
            (_, IdxFormat) when shape.Count > 0 => Invalid(shape.Keys.First(), "IDX files carry their own size: give channels, height and width only with format csv."),
            _ when !files.ContainsKey(Images) => Invalid(Images, "The file images is required: the train images (IDX, raw or .gz)."),
            _ when format == IdxFormat && !files.ContainsKey(Labels) => Invalid(Labels, "The file labels is required: the train labels (IDX, raw or .gz)."),
            _ when format == IdxFormat && files.ContainsKey(TestImages) && !files.ContainsKey(TestLabels) =>
                Invalid(TestLabels, "testImages needs testLabels: send both test files or neither."),
            _ when files.ContainsKey(TestLabels) && !files.ContainsKey(TestImages) =>
                Invalid(TestImages, "testLabels needs testImages: send both test files or neither."),
            _ => null,
        };
        return missing is null
            ? (new ReceivedUpload(name!.Trim(), files, format!, format == CsvFormat ? [shape[ChannelsField], shape[HeightField], shape[WidthField]] : null), null)
            : (null, missing);
    }

    /// <summary>A 400 problem that names the form field at fault.</summary>
    public static ProblemHttpResult Invalid(string field, string detail, string title = "The upload is invalid") => TypedResults.Problem(
        statusCode: StatusCodes.Status400BadRequest,
        title: title,
        detail: detail,
        extensions: new Dictionary<string, object?> { ["field"] = field });

    /// <summary>A 413 problem for a body over the limit.</summary>
    public static ProblemHttpResult TooLarge(long maxBytes) => TypedResults.Problem(
        statusCode: StatusCodes.Status413PayloadTooLarge,
        title: "The upload is too large",
        detail: $"The request body is over the limit of {maxBytes.ToString("N0", CultureInfo.InvariantCulture)} bytes (configuration Uploads:MaxRequestBytes).");

    private static async Task<(string? Value, ProblemHttpResult? Problem)> ReadTextAsync(MultipartSection section, string field, CancellationToken cancellationToken)
    {
        var buffer = new byte[MaxTextFieldBytes + 1];
        int length = await section.Body.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken);
        return length > MaxTextFieldBytes
            ? (null, Invalid(field, $"{field} is longer than {MaxTextFieldBytes} bytes."))
            : (Encoding.UTF8.GetString(buffer, 0, length), null);
    }

    // Caps the whole body where the server cannot (the test server has no IHttpMaxRequestBodySizeFeature).
    private sealed class LimitedReadStream(Stream inner, long maxBytes) : Stream
    {
        private long _read;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Count(inner.Read(buffer, offset, count));

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            Count(await inner.ReadAsync(buffer, cancellationToken));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        private int Count(int read)
        {
            _read += read;
            if (_read > maxBytes)
            {
                throw new BadHttpRequestException($"The request body is over the limit of {maxBytes} bytes.", StatusCodes.Status413PayloadTooLarge);
            }

            return read;
        }
    }
}
