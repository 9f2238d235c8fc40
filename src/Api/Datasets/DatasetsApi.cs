using System.Globalization;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using TrainingService.Api.Access;
using TrainingService.Api.Infrastructure;
using TrainingService.Api.Outputs;
using TrainingService.Api.Persistence;
using TrainingService.Api.Quotas;
using TrainingService.Contracts.Datasets;
using TrainingService.Contracts.Training;
using TrainingService.Training.Data;
using TrainingService.Training.Loop;

namespace TrainingService.Api.Datasets;

public static class DatasetsApi
{
    /// <summary>The sample endpoint's query parameters for the augmentation options.</summary>
    private static readonly AugmentationFields s_augmentationQuery = new(RandomCropPadding: "randomCrop", Translate: "translate");

    /// <summary>The largest sample variant: an epoch, as many as a job may have.</summary>
    internal const int MaxVariant = 10_000;

    public static IServiceCollection AddDatasets(this IServiceCollection services)
    {
        services.AddOptions<UploadOptions>().BindConfiguration(DatasetLimits.Section)
            .Validate(o => o.MaxRequestBytes > 0, "Uploads:MaxRequestBytes must be positive")
            .Validate(o => o.MaxArchiveEntries > 0, "Uploads:MaxArchiveEntries must be positive")
            .Validate(o => o.MaxUncompressedBytes > 0, "Uploads:MaxUncompressedBytes must be positive")
            .Validate(o => o.MaxCompressionRatio > 0, "Uploads:MaxCompressionRatio must be positive")
            .Validate(o => o.MaxImagePixels > 0, "Uploads:MaxImagePixels must be positive")
            .Validate(o => o.MaxImages > 0, "Uploads:MaxImages must be positive")
            .Validate(o => o.MaxChannels > 0, "Uploads:MaxChannels must be positive")
            .Validate(o => o.MaxSide > 0, "Uploads:MaxSide must be positive")
            .Validate(o => o.MaxDatasetBytes > 0, "Uploads:MaxDatasetBytes must be positive")
            .Validate(o => o.MaxSamplePixels > 0, "Uploads:MaxSamplePixels must be positive")
            .Validate(o => o.MaxStorageBytesPerOwner > 0, "Uploads:MaxStorageBytesPerOwner must be positive")
            .Validate(o => o.MaxConcurrentPerOwner > 0, "Uploads:MaxConcurrentPerOwner must be positive")
            .Validate(o => o.CacheBytes >= o.MaxDatasetBytes, "Uploads:CacheBytes must be at least Uploads:MaxDatasetBytes")
            .ValidateOnStart();
        services.AddSingleton<LocalDatasetCache>();
        services.AddSingleton<DatasetStore>();
        services.ConfigureSwaggerGen(o => o.OperationFilter<DatasetsOperationFilter>());
        return services;
    }

    public static RouteGroupBuilder MapDatasets(this IEndpointRouteBuilder app)
    {
        RouteGroupBuilder group = app.MapGroup("/datasets").WithTags("Datasets");
        group.MapPost("/", Upload)
            .WithName(DatasetsOperationFilter.UploadOperation)
            .WithSummary("Upload a dataset: IDX files, CSV, CIFAR batches or a zip of image folders")
            .WithDescription("multipart/form-data with name and format (idx, csv, cifar or imagefolder) and the format's files and fields. "
                + "The files are checked before they are kept, and nothing is kept of a refused upload; a file that is not valid for its format, "
                + "or test images of another size than the train images get 400 with field = the form field at fault. "
                + "Bodies over Uploads:MaxRequestBytes, and files over another Uploads limit (named in detail), get 413.")
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType);
        group.MapPost("/builtin", CreateBuiltin)
            .WithJsonBodyLimit()
            .WithName(DatasetsOperationFilter.BuiltinOperation)
            .WithSummary("Generate a built-in dataset (shapes)")
            .WithDescription("Generates the synthetic shapes dataset: one filled or outlined shape per image, at a random position, size and brightness, "
                + "on a noisy background. Every field has a default; an option out of range gets 400 keyed by the option.");
        group.MapGet("/", List)
            .WithName("ListDatasets")
            .WithSummary("List the datasets, newest first");
        group.MapGet("/{id:guid}", Get)
            .WithName("GetDataset")
            .WithSummary("Get a dataset")
            .ProducesProblem(StatusCodes.Status404NotFound);
        group.MapGet("/{id:guid}/samples/{index:int}.png", GetSample)
            .WithName("GetDatasetSample")
            .WithSummary("Get a train image as PNG, optionally augmented as a job would train on it")
            .WithDescription("Grey for one channel, RGB for three. scale (1..16, default 1) enlarges it by repeating pixels, "
                + "up to Uploads:MaxSamplePixels pixels in the PNG (a larger scale for the dataset's size gets 400 naming the largest). "
                + "An index outside the train split gets 404. With randomCrop, horizontalFlip or translate (a job's hyperparameters.augmentation), "
                + "the image is augmented exactly as a job with that seed augments it in epoch variant: "
                + "?randomCrop=4&horizontalFlip=true&translate=2&seed=7&variant=3. A value out of range gets 400 keyed by its parameter.")
            .Produces(StatusCodes.Status200OK, contentType: "image/png")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict);
        group.MapDelete("/{id:guid}", Delete)
            .WithName("DeleteDataset")
            .WithSummary("Delete a dataset and its files")
            .WithDescription("A dataset that a queued, running or paused job uses gets 409.")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict);
        return group;
    }

    /// <summary>Receives a dataset's files (IDX, CSV, CIFAR or an image folder), checks them and keeps them as a dataset.</summary>
    public static async Task<Results<Created<DatasetView>, ProblemHttpResult>> Upload(
        HttpContext context, [AsParameters] DatasetServices services, CancellationToken cancellationToken)
    {
        long maxBytes = services.Uploads.Value.MaxRequestBytes;
        if (context.Request.ContentLength > maxBytes)
        {
            return DatasetUpload.TooLarge(maxBytes);
        }

        string owner = services.Caller.Owner;
        using IDisposable? slot = services.Slots.TryTake(owner, services.Uploads.Value.MaxConcurrentPerOwner);
        if (slot is null)
        {
            return OwnerQuotas.RefuseConcurrentUpload(services.Uploads.Value.MaxConcurrentPerOwner);
        }

        // An owner with no room left is told before the body arrives.
        if (await OwnerQuotas.RefuseStorageAsync(services.Db, owner, null, services.Uploads.Value.MaxStorageBytesPerOwner, cancellationToken) is { } full)
        {
            return full;
        }

        // Kestrel's default (30 MB) applies unless raised before the body is read.
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } sizeLimit)
        {
            sizeLimit.MaxRequestBodySize = maxBytes;
        }

        string incoming = services.Store.CreateIncomingFolder();
        try
        {
            // What arrives (and what an archive holds) stays apart from the files the store keeps.
            string received = Directory.CreateDirectory(Path.Combine(incoming, "received")).FullName;
            (ReceivedUpload? upload, ProblemHttpResult? problem) = await DatasetUpload.ReceiveAsync(context.Request, received, services.Uploads.Value, cancellationToken);
            if (problem is not null)
            {
                return problem;
            }

            ImageDataset dataset;
            try
            {
                dataset = Read(upload!, received, services.Uploads.Value);
            }
            catch (DatasetFormatException ex) when (ex.Limit is not null)
            {
                return Problems.About(StatusCodes.Status413PayloadTooLarge, ex.File, ex.Message, DatasetUpload.TooLargeTitle);
            }
            catch (DatasetFormatException ex)
            {
                return Problems.Invalid(ex.File, ex.Message, title: $"A dataset file is not valid {DatasetUpload.Describe(upload!.Format)}");
            }

            // Kept as raw IDX whatever came in (gzip, 4-D grey, CIFAR records, images), so loading never decompresses.
            Directory.Delete(received, recursive: true);
            string? fit = upload!.Format == DatasetUpload.ImageFolderFormat ? upload.Fit : null;
            // Checked before the files are written, and again (atomically) as the record is saved.
            if (await OwnerQuotas.RefuseStorageAsync(services.Db, owner, BytesOf(dataset), services.Uploads.Value.MaxStorageBytesPerOwner, cancellationToken) is { } over)
            {
                return over;
            }

            (DatasetRecord? record, ProblemHttpResult? refused) = await KeepAsync(services, incoming, dataset, upload.Format, cancellationToken, fit);
            if (record is null)
            {
                return refused!;
            }

            services.Logger.LogInformation(
                "Dataset {DatasetId} {DatasetName} uploaded: {TrainCount} train and {TestCount} test images of {Channels}x{Height}x{Width}, {Classes} classes",
                record.Id, record.Name, record.TrainCount, record.TestCount, record.Channels, record.Height, record.Width, record.Classes);
            return TypedResults.Created($"/datasets/{record.Id}", ToView(record, services.Store));
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return DatasetUpload.TooLarge(maxBytes);
        }
        finally
        {
            if (Directory.Exists(incoming))
            {
                Directory.Delete(incoming, recursive: true);
            }
        }
    }

    private static ImageDataset Read(ReceivedUpload upload, string received, UploadOptions limits) => upload.Format switch
    {
        DatasetUpload.CsvFormat => CsvDatasetReader.Read(
            upload.Name, upload.PathOf(DatasetUpload.Images)!, upload.PathOf(DatasetUpload.TestImages), upload.Shape![0], upload.Shape[1], upload.Shape[2], limits),
        DatasetUpload.CifarFormat => CifarUpload.Read(upload, received, limits),
        DatasetUpload.ImageFolderFormat => ImageFolderReader.Read(
            upload.Name, upload.PathOf(DatasetUpload.Archive)!, upload.Shape![0], upload.Shape[1], upload.Shape[2], upload.Fit == DatasetUpload.PadFit, limits),
        _ => IdxReader.Read(
            upload.Name,
            upload.PathOf(DatasetUpload.Images)!,
            upload.PathOf(DatasetUpload.Labels)!,
            upload.PathOf(DatasetUpload.TestImages),
            upload.PathOf(DatasetUpload.TestLabels),
            limits),
    };

    /// <summary>Generates a built-in dataset and keeps it.</summary>
    public static async Task<Results<Created<DatasetView>, ProblemHttpResult>> CreateBuiltin(
        BuiltinDatasetRequest request, [AsParameters] DatasetServices services, CancellationToken cancellationToken)
    {
        if (!string.Equals(request.Kind, ShapesDataset.Name, StringComparison.OrdinalIgnoreCase))
        {
            return Problems.Invalid("kind", $"Unknown kind \"{request.Kind}\"; the only kind is \"{ShapesDataset.Name}\".");
        }

        string name = request.Name?.Trim() ?? ShapesDataset.Name;
        if (name.Length is 0 or > DatasetUpload.MaxNameLength)
        {
            return Problems.Invalid("name", $"name must have 1 to {DatasetUpload.MaxNameLength} characters.");
        }

        var defaults = new ShapesOptions();
        var options = new ShapesOptions
        {
            Classes = request.Classes ?? defaults.Classes,
            Samples = request.Samples ?? defaults.Samples,
            TestSamples = request.TestSamples ?? defaults.TestSamples,
            ImageSize = request.ImageSize ?? defaults.ImageSize,
            Channels = request.Channels ?? defaults.Channels,
            Seed = request.Seed ?? defaults.Seed,
        };
        try
        {
            options.Validate();
        }
        catch (ArgumentOutOfRangeException ex) when (ex.ParamName is not null)
        {
            // Message appends " (Parameter 'x')"; the field key already says which.
            return Problems.Invalid(ex.ParamName, ex.Message.Replace($" (Parameter '{ex.ParamName}')", "", StringComparison.Ordinal));
        }

        long bytes;
        try
        {
            // The store loads it with these limits.
            long trainBytes = services.Uploads.Value.Check("samples", options.Samples, options.Channels, options.ImageSize, options.ImageSize);
            bytes = trainBytes + services.Uploads.Value.Check("testSamples", options.TestSamples, options.Channels, options.ImageSize, options.ImageSize, trainBytes);
        }
        catch (DatasetFormatException ex)
        {
            return Problems.About(StatusCodes.Status413PayloadTooLarge, ex.File, ex.Message, "The dataset would be too large");
        }

        string owner = services.Caller.Owner;
        using IDisposable? slot = services.Slots.TryTake(owner, services.Uploads.Value.MaxConcurrentPerOwner);
        if (slot is null)
        {
            return OwnerQuotas.RefuseConcurrentUpload(services.Uploads.Value.MaxConcurrentPerOwner);
        }

        if (await OwnerQuotas.RefuseStorageAsync(services.Db, owner, bytes, services.Uploads.Value.MaxStorageBytesPerOwner, cancellationToken) is { } full)
        {
            return full;
        }

        ImageDataset generated = ShapesDataset.Generate(options);

        string incoming = services.Store.CreateIncomingFolder();
        try
        {
            (DatasetRecord? record, ProblemHttpResult? refused) = await KeepAsync(
                services, incoming, generated with { Name = name }, DatasetStore.ShapesSource, cancellationToken);
            if (record is null)
            {
                return refused!;
            }

            services.Logger.LogInformation(
                "Dataset {DatasetId} {DatasetName} generated: {Kind}, {TrainCount} train and {TestCount} test images",
                record.Id, record.Name, ShapesDataset.Name, record.TrainCount, record.TestCount);
            return TypedResults.Created($"/datasets/{record.Id}", ToView(record, services.Store));
        }
        finally
        {
            if (Directory.Exists(incoming))
            {
                Directory.Delete(incoming, recursive: true);
            }
        }
    }

    /// <summary>Lists the datasets, newest first.</summary>
    public static async Task<Ok<List<DatasetView>>> List([AsParameters] DatasetServices services, CancellationToken cancellationToken)
    {
        List<DatasetRecord> records = await services.Db.Datasets.AsNoTracking()
            .VisibleTo(services.Caller)
            .OrderByDescending(d => d.CreatedAt)
            .ToListAsync(cancellationToken);
        return TypedResults.Ok(records.ConvertAll(r => ToView(r, services.Store)));
    }

    /// <summary>Gets one dataset.</summary>
    public static async Task<Results<Ok<DatasetView>, ProblemHttpResult>> Get(
        Guid id, [AsParameters] DatasetServices services, CancellationToken cancellationToken)
    {
        DatasetRecord? record = await FindAsync(services, id, cancellationToken);
        return record is null ? NoSuchDataset(id) : TypedResults.Ok(ToView(record, services.Store));
    }

    /// <summary>Renders train image <paramref name="index"/> as PNG, augmented if any augmentation is asked for.</summary>
    /// <param name="id">The dataset.</param>
    /// <param name="index">The train image, from 0.</param>
    /// <param name="scale">Each pixel becomes scale × scale pixels, 1..16; 1 when left out.</param>
    /// <param name="randomCrop">Random crop: zero padding on each side, 1 to half the image's shorter side; left out: no crop.</param>
    /// <param name="horizontalFlip">true: mirror left to right with probability 0.5.</param>
    /// <param name="translate">Shift by up to this many pixels on each axis, 1 to a quarter of the image's shorter side; left out: no shift.</param>
    /// <param name="seed">The job's seed; 1 when left out.</param>
    /// <param name="variant">The epoch, 1..10000 (1 when left out): each gives the image's draw in that epoch.</param>
    /// <param name="services">The handlers' dependencies.</param>
    /// <param name="cancellationToken">The request's.</param>
    public static async Task<Results<FileContentHttpResult, ProblemHttpResult, ValidationProblem>> GetSample(
        Guid id, int index, int? scale, int? randomCrop, bool? horizontalFlip, int? translate, int? seed, int? variant,
        [AsParameters] DatasetServices services, CancellationToken cancellationToken)
    {
        if (scale is < 1 or > Pictures.MaxSampleScale)
        {
            return Problems.Invalid("scale", $"scale must be between 1 and {Pictures.MaxSampleScale}, but was {scale}.");
        }

        if (variant is < 1 or > MaxVariant)
        {
            return Problems.Invalid("variant", $"variant must be an epoch, from 1 to {MaxVariant}, but was {variant}.");
        }

        DatasetRecord? record = await FindAsync(services, id, cancellationToken);
        if (record is null)
        {
            return NoSuchDataset(id);
        }

        var augmentation = new AugmentationOptions
        {
            RandomCrop = randomCrop is int padding ? new RandomCropOptions { Padding = padding } : null,
            HorizontalFlip = horizontalFlip ?? false,
            Translate = translate,
        };
        var errors = TrainingPlan.ValidateAugmentation(augmentation, record.Height, record.Width, s_augmentationQuery)
            .ToDictionary(e => e.Field, e => new[] { e.Message });
        if (errors.Count > 0)
        {
            return Problems.Invalid(errors);
        }

        if (index < 0 || index >= record.TrainCount)
        {
            return Problems.NotFound("index", $"Dataset {id} has train images 0 to {record.TrainCount - 1}; there is no image {index}.", "No such sample");
        }

        long maxPixels = services.Uploads.Value.MaxSamplePixels;
        int maxScale = (int)Math.Clamp(Math.Sqrt(maxPixels / ((double)record.Height * record.Width)), 1, Pictures.MaxSampleScale);
        if (scale > maxScale)
        {
            return Problems.Invalid(
                "scale",
                $"scale must be between 1 and {maxScale} for this dataset's {record.Height}×{record.Width} images, but was {scale}: "
                + $"a sample's PNG has at most {maxPixels.ToString("N0", CultureInfo.InvariantCulture)} pixels (configuration {DatasetLimits.Key(nameof(UploadOptions.MaxSamplePixels))}).");
        }

        ImageDataset dataset;
        try
        {
            dataset = services.Store.Load(record);
        }
        catch (DatasetFormatException)
        {
            return Problems.Conflict($"Dataset {id}: {DatasetStore.Unreadable}.", "The dataset cannot be read");
        }

        Augmentation.Draw? draw = augmentation.IsOn ? Augmentation.For(augmentation, seed ?? 1, variant ?? 1, index) : null;
        byte[] png = Pictures.Sample(dataset, index, scale ?? 1, draw);
        return TypedResults.File(png, "image/png");
    }

    /// <summary>Deletes a dataset that no unfinished job or running sweep uses.</summary>
    public static async Task<Results<NoContent, ProblemHttpResult>> Delete(
        Guid id, [AsParameters] DatasetServices services, CancellationToken cancellationToken)
    {
        DatasetRecord? record = await FindAsync(services, id, cancellationToken);
        if (record is null)
        {
            return NoSuchDataset(id);
        }

        // Under the lock job creation takes: a job created for the dataset meanwhile is either counted here or refused.
        await using (var write = await OwnerQuotas.BeginWriteAsync(services.Db, cancellationToken))
        {
            List<Guid> jobs = await services.Db.Jobs
                .Where(j => j.DatasetId == id && (j.State == RunState.Queued || j.State == RunState.Running || j.State == RunState.Paused))
                .Select(j => j.Id)
                .Take(10)
                .ToListAsync(cancellationToken);
            if (jobs.Count > 0)
            {
                return Problems.Conflict(
                    $"Dataset {id} is used by {(jobs.Count == 1 ? "a job" : "jobs")} that have not finished ({string.Join(", ", jobs)}); cancel them or wait for them to end.",
                    "The dataset is in use", new Dictionary<string, object?> { ["jobIds"] = jobs });
            }

            List<Guid> sweeps = await services.Db.Sweeps.Where(s => s.DatasetId == id && s.State == RunState.Running).Select(s => s.Id).Take(10).ToListAsync(cancellationToken);
            if (sweeps.Count > 0)
            {
                return Problems.Conflict(
                    $"Dataset {id} is used by {(sweeps.Count == 1 ? "a sweep" : "sweeps")} still running ({string.Join(", ", sweeps)}); cancel them (POST /sweeps/{{id}}/cancel) or wait for them to end.",
                    "The dataset is in use", new Dictionary<string, object?> { ["sweepIds"] = sweeps });
            }

            services.Db.Datasets.Remove(record);
            await services.Db.SaveChangesAsync(cancellationToken);
            await write.CommitAsync(cancellationToken);
        }

        services.Store.Delete(id);
        services.Logger.LogInformation("Dataset {DatasetId} {DatasetName} deleted", id, record.Name);
        return TypedResults.NoContent();
    }

    /// <summary>Writes the dataset and saves its record, unless the owner's storage is full by then: null and a 413.</summary>
    private static async Task<(DatasetRecord? Record, ProblemHttpResult? Refused)> KeepAsync(
        DatasetServices services, string incoming, ImageDataset dataset, string source, CancellationToken cancellationToken, string? fit = null)
    {
        DatasetStore.Write(dataset, incoming);
        var record = new DatasetRecord
        {
            Id = Guid.NewGuid(),
            Owner = services.Caller.Owner,
            Name = dataset.Name,
            Source = source,
            Classes = dataset.Classes,
            ClassNames = dataset.ClassNames is { } names ? [.. names] : null,
            Fit = fit,
            Channels = dataset.Channels,
            Height = dataset.Height,
            Width = dataset.Width,
            TrainCount = dataset.Train.Count,
            TestCount = dataset.Test?.Count ?? 0,
            Mean = dataset.Mean,
            Std = dataset.Std,
            CreatedAt = DateTime.UtcNow,
        };
        // Uploads that passed the early check side by side are counted here one at a time, under SQLite's write lock.
        await using var write = await OwnerQuotas.BeginWriteAsync(services.Db, cancellationToken);
        if (await OwnerQuotas.RefuseStorageAsync(
            services.Db, record.Owner, BytesOf(dataset), services.Uploads.Value.MaxStorageBytesPerOwner, cancellationToken) is { } refused)
        {
            return (null, refused);
        }

        services.Store.Commit(incoming, record.Id, dataset);
        try
        {
            services.Db.Datasets.Add(record);
            await services.Db.SaveChangesAsync(cancellationToken);
            await write.CommitAsync(cancellationToken);
        }
        catch
        {
            services.Store.Delete(record.Id);
            throw;
        }

        return (record, null);
    }

    /// <summary>The dataset's pixels as the owner's storage counts them (OwnerQuotas.StoredBytesAsync).</summary>
    private static long BytesOf(ImageDataset dataset) =>
        (long)(dataset.Train.Count + (dataset.Test?.Count ?? 0)) * dataset.Channels * dataset.Height * dataset.Width;

    private static Task<DatasetRecord?> FindAsync(DatasetServices services, Guid id, CancellationToken cancellationToken) =>
        services.Db.Datasets.AsNoTracking().VisibleTo(services.Caller).FirstOrDefaultAsync(d => d.Id == id, cancellationToken);

    private static DatasetView ToView(DatasetRecord record, DatasetStore store) => new()
    {
        Id = record.Id,
        Name = record.Name,
        Source = record.Source,
        Classes = record.Classes,
        TrainCount = record.TrainCount,
        TestCount = record.TestCount,
        Shape = [record.Channels, record.Height, record.Width],
        Mean = record.Mean,
        Std = record.Std,
        ClassCounts = store.ClassCounts(record),
        ClassNames = DatasetStore.ClassNames(record),
        Fit = record.Fit,
        CreatedAt = new DateTimeOffset(record.CreatedAt), // stored times read back as UTC (TrainingDb)
    };

    private static ProblemHttpResult NoSuchDataset(Guid id) => Problems.NotFound("id", $"There is no dataset {id}.", "No such dataset");
}

/// <summary>What the dataset handlers need, bound with [AsParameters].</summary>
public sealed record DatasetServices(
    TrainingDb Db, DatasetStore Store, IOptions<UploadOptions> Uploads, Caller Caller, UploadSlots Slots, ILogger<DatasetServices> Logger);
