using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using SkiaSharp;
using TrainingService.Api.Access;
using TrainingService.Api.Datasets;
using TrainingService.Api.Infrastructure;
using TrainingService.Api.Persistence;
using TrainingService.Contracts.Specs;
using TrainingService.Contracts.Training;
using TrainingService.Training.Data;
using TrainingService.Training.Export;
using TrainingService.Training.Models;
using TrainingService.Training.Monitoring;
using TrainingService.Training.Specs;
using TrainingService.Training.Specs.Kinds;
using static TorchSharp.torch;

namespace TrainingService.Api.Outputs;

/// <summary>Caps on one prediction request (configuration section Predict).</summary>
public sealed class PredictOptions
{
    public int MaxImages { get; set; } = 256;

    /// <summary>Pixels the files of one request declare in their headers, summed: decoding takes 4 bytes a pixel or more.</summary>
    public long MaxPixelsPerRequest { get; set; } = 16_000_000;

    public long MaxRequestBytes { get; set; } = 32L << 20;
}

/// <summary>POST /jobs/{id}/predict: class probabilities for images, preprocessed exactly as in training.</summary>
public static class PredictApi
{

    /// <summary>Pixel values 0–255 per image, channel by channel, row by row (C × H × W), as the datasets store them.</summary>
    /// <param name="Images">The images, each C × H × W values 0–255.</param>
    /// <param name="Top">How many classes per image, most probable first: 3 (or every class, when fewer) unless given.</param>
    /// <param name="FeatureMaps">Also return the first image's feature maps.</param>
    public sealed record PredictRequest(IReadOnlyList<float[]>? Images, int? Top = null, bool FeatureMaps = false);

    public sealed record ClassProbability(int Class, string? Name, double Probability);

    public sealed record Prediction(IReadOnlyList<ClassProbability> Top);

    /// <param name="Predictions">One per image, in order.</param>
    /// <param name="Source">final (the succeeded job's model) or checkpoint (the last one of a job still training).</param>
    /// <param name="Step">The step the weights are from.</param>
    /// <param name="FeatureMaps">The first image's feature maps per convolution layer, as PNG data URLs, when asked for.</param>
    public sealed record PredictResponse(IReadOnlyList<Prediction> Predictions, string Source, long Step, IReadOnlyDictionary<string, string>? FeatureMaps);

    // A misspelt field (topK) is an error, as in every other request body.
    private static readonly JsonSerializerOptions s_strictJson = new(JsonSerializerOptions.Web) { UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow };

    public static RouteGroupBuilder MapPredict(this RouteGroupBuilder jobs)
    {
        jobs.MapPost("/{id:guid}/predict", Predict).WithName("PredictWithJob")
            .WithSummary("Top classes with probabilities for images: a JSON body { images: [[C×H×W values 0–255]], top }, or PNG/JPEG files (multipart field images, resized to the model's input)")
            .WithDescription("Uses the final model of a succeeded job, else its last checkpoint. Pixels are scaled and normalised with the dataset's mean and std, as in training. "
                + "featureMaps=true (JSON) or ?featureMaps=true adds the first image's feature maps per convolution layer as PNG data URLs.")
            .Accepts<PredictRequest>("application/json", "multipart/form-data")
            .DisableAntiforgery()
            .WithBodyLimit("Predict:MaxRequestBytes", s => s.GetRequiredService<IOptions<PredictOptions>>().Value.MaxRequestBytes);
        return jobs;
    }

    public static async Task<Results<Ok<PredictResponse>, ValidationProblem, ProblemHttpResult>> Predict(
        Guid id, HttpRequest request, TrainingDb db, Caller caller, LoadedModels models, IOptions<UploadOptions> uploads, IOptions<PredictOptions> options,
        CancellationToken cancellationToken)
    {
        JobRecord? job = await db.Jobs.AsNoTracking().VisibleTo(caller).FirstOrDefaultAsync(j => j.Id == id, cancellationToken);
        if (job is null)
        {
            return Problems.NoSuchJob(id);
        }

        DatasetRecord? dataset = await db.Datasets.AsNoTracking().FirstOrDefaultAsync(d => d.Id == job.DatasetId, cancellationToken);
        if (dataset is null)
        {
            // Its mean, std and fit went with it: a prediction would not see images as training did.
            return Problems.Conflict($"Job {id}'s dataset {job.DatasetId} is deleted, and with it the input mean and std (and image fitting) that training used; predictions would not be preprocessed as in training. Export the weights instead.");
        }

        ModelSpec spec = job.Spec;
        InputSpec input = spec.Input!;
        int size = input.Channels * input.Height * input.Width;
        var errors = new Dictionary<string, string[]>();
        List<float[]> images;
        int? asked = null;
        bool featureMaps = string.Equals(request.Query["featureMaps"], "true", StringComparison.OrdinalIgnoreCase);
        if (request.HasFormContentType)
        {
            IFormCollection form = await request.ReadFormAsync(cancellationToken);
            if ((TooMany(form.Files.Count, options.Value) ?? TooManyPixels(form.Files, options.Value)) is { } refused)
            {
                return refused;
            }

            images = [];
            int index = 0;
            foreach (IFormFile file in form.Files)
            {
                await using Stream stream = file.OpenReadStream();
                (float[]? pixels, string? error) = Decode(stream, input, dataset.Fit, uploads.Value.MaxImagePixels);
                if (pixels is null)
                {
                    errors[$"images[{index}]"] = [$"{file.FileName} {error}"];
                }
                else
                {
                    images.Add(pixels);
                }

                index++;
            }

            if (form.TryGetValue("top", out var t))
            {
                if (int.TryParse(t, CultureInfo.InvariantCulture, out int given))
                {
                    asked = given;
                }
                else
                {
                    errors["top"] = [$"top must be a whole number, got \"{t}\""];
                }
            }
        }
        else
        {
            PredictRequest? body;
            try
            {
                body = await request.ReadFromJsonAsync<PredictRequest>(s_strictJson, cancellationToken);
            }
            catch (JsonException ex)
            {
                return Problems.Invalid(Problems.PathOf(ex), $"not a prediction request: {ex.Message}", "No prediction");
            }

            images = [.. body?.Images ?? []];
            if (TooMany(images.Count, options.Value) is { } refused)
            {
                return refused;
            }

            asked = body?.Top;
            featureMaps |= body?.FeatureMaps ?? false;
            for (int i = 0; i < images.Count; i++)
            {
                if (images[i] is null || images[i].Length != size)
                {
                    errors[$"images[{i}]"] = [$"expected {size} values ({input.Channels}×{input.Height}×{input.Width}, channel by channel), got {images[i]?.Length ?? 0}"];
                }
                else if (images[i].Any(v => !(v is >= 0 and <= 255)))
                {
                    errors[$"images[{i}]"] = ["pixel values must be in 0..255"];
                }
            }
        }

        if (images.Count == 0 && errors.Count == 0)
        {
            errors["images"] = ["give at least one image: a JSON array of pixel arrays, or PNG/JPEG files in the multipart field images"];
        }

        int classes = dataset.Classes;
        int top = asked ?? Math.Min(3, classes);
        if (top < 1 || top > classes)
        {
            errors["top"] = [$"top must be 1..{classes}, got {top}"];
        }

        if (errors.Count > 0)
        {
            return Problems.Invalid(errors, "No prediction");
        }

        using LeasedCache<Guid, LoadedModel>.Lease? lease = models.Rent(job, spec);
        if (lease is null)
        {
            return Problems.Conflict(JobWeights.Missing(job));
        }

        (Inference model, string source, long step) = lease.Value;
        float[] mean = dataset.Mean, std = dataset.Std;
        IReadOnlyList<string>? names = DatasetStore.ClassNames(dataset);
        var maps = featureMaps ? new Dictionary<string, string>() : null;
        var predictions = new List<Prediction>(images.Count);
        using (NewDisposeScope())
        {
            Tensor x = tensor(images.SelectMany(i => i).ToArray(), [images.Count, input.Channels, input.Height, input.Width]);
            using Tensor scale = tensor(std.Select(s => 1f / (255f * s)).ToArray()).reshape(1, input.Channels, 1, 1);
            using Tensor shift = tensor(mean.Zip(std, (m, s) => -m / s).ToArray()).reshape(1, input.Channels, 1, 1);
            x = x.mul(scale).add(shift);
            Tensor probabilities = nn.functional.softmax(model.Forward(x, maps is null ? null : (layer, output) =>
            {
                if (layer.Kind is Conv2dKind)
                {
                    long[] s = output.shape;
                    float[] first = output[0].contiguous().data<float>().ToArray();
                    maps[layer.Name] = "data:image/png;base64," + Convert.ToBase64String(
                        Pictures.FeatureMaps(new FeatureMaps(layer.Name, (int)s[1], (int)s[2], (int)s[3], first)));
                }
            }), 1);
            (Tensor values, Tensor indices) = probabilities.topk(top, 1);
            float[] p = values.data<float>().ToArray();
            long[] c = indices.data<long>().ToArray();
            for (int i = 0; i < images.Count; i++)
            {
                predictions.Add(new Prediction([.. Enumerable.Range(0, top).Select(k =>
                {
                    int cls = (int)c[(i * top) + k];
                    return new ClassProbability(cls, names is not null && cls < names.Count ? names[cls] : null, p[(i * top) + k]);
                })]));
            }
        }

        return TypedResults.Ok(new PredictResponse(predictions, source, step, maps));
    }

    private static ProblemHttpResult? TooMany(int count, PredictOptions options) => count <= options.MaxImages
        ? null
        : Problems.About(StatusCodes.Status413PayloadTooLarge, "images", string.Create(CultureInfo.InvariantCulture,
            $"at most {options.MaxImages} images per request (configuration Predict:MaxImages), got {count}"), "Too many images");

    /// <summary>The pixels the files declare, from their headers, summed before any is decoded; a 413 when over the cap.</summary>
    private static ProblemHttpResult? TooManyPixels(IFormFileCollection files, PredictOptions options)
    {
        long total = 0;
        foreach (IFormFile file in files)
        {
            using Stream stream = file.OpenReadStream();
            using SKCodec? codec = SKCodec.Create(stream);
            total += codec is null ? 0 : (long)codec.Info.Width * codec.Info.Height; // not an image: Decode names it
        }

        return total <= options.MaxPixelsPerRequest
            ? null
            : Problems.About(StatusCodes.Status413PayloadTooLarge, "images",
                $"the {files.Count} images declare {total:N0} pixels in all, over the limit of {options.MaxPixelsPerRequest:N0} per request "
                + "(configuration Predict:MaxPixelsPerRequest)", "Too many pixels");
    }

    /// <summary>
    /// A PNG or JPEG made the model's input, as 0–255 values channel by channel (<see cref="ImageFit"/>): fitted as the
    /// image-folder dataset's images were (<paramref name="fit"/> crop or pad), else stretched to the size.
    /// </summary>
    private static (float[]? Pixels, string? Error) Decode(Stream stream, InputSpec input, string? fit, long maxPixels)
    {
        using SKData data = SKData.Create(stream);
        using SKCodec? codec = data is null ? null : SKCodec.Create(data);
        if (codec is null || codec.EncodedFormat is not (SKEncodedImageFormat.Png or SKEncodedImageFormat.Jpeg))
        {
            return (null, "is not a PNG or JPEG image");
        }

        // The header's size, before a pixel is decoded: a small file may declare a huge image.
        long declared = (long)codec.Info.Width * codec.Info.Height;
        if (declared > maxPixels)
        {
            return (null, $"is {codec.Info.Width}×{codec.Info.Height} ({declared:N0} pixels), over the limit of {maxPixels:N0} pixels (configuration Uploads:MaxImagePixels)");
        }

        var sample = new byte[input.Channels * input.Height * input.Width];
        return ImageFit.TryDecode(codec, input.Channels, input.Height, input.Width, ImageFit.Of(fit), sample, out SKCodecResult result)
            ? ([.. sample.Select(b => (float)b)], null)
            : (null, $"could not be decoded ({result}): a damaged or truncated image");
    }
}
