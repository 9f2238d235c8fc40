using System.Collections.Concurrent;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using SkiaSharp;
using TrainingService.Api.Infrastructure;
using TrainingService.Api.Persistence;
using TrainingService.Contracts.Training;
using TrainingService.Training.Monitoring;

namespace TrainingService.Api.Jobs;

/// <summary>What the network sees: a job's filters and feature maps as PNG, from its latest visual snapshot.</summary>
public static class VisualsApi
{
    /// <summary>A conv layer in the snapshot.</summary>
    public sealed record VisualLayer(string Name, int Filters, int Channels, int[] Kernel, int[] MapSize);

    /// <summary>GET /jobs/{id}/visuals: when the latest pictures were taken and of which layers.</summary>
    public sealed record VisualsView(long Step, int Epoch, int Probes, IReadOnlyList<VisualLayer> Layers);

    private static readonly ConcurrentDictionary<string, (DateTime Written, VisualSnapshot Snapshot)> s_cache = new();

    public static RouteGroupBuilder MapVisuals(this RouteGroupBuilder jobs)
    {
        jobs.MapGet("/{id:guid}/visuals", Describe).WithName("GetJobVisuals")
            .WithSummary("Which pictures of what the network sees are there: the step of the latest snapshot and its convolution layers");
        jobs.MapGet("/{id:guid}/filters/{layer}.png", Filters).WithName("GetJobFilters")
            .WithSummary("A convolution layer's filters as a PNG grid (RGB for 3 input channels, else one grey tile per input channel)")
            .Produces(StatusCodes.Status200OK, contentType: "image/png");
        jobs.MapGet("/{id:guid}/featuremaps/{layer}.png", FeatureMapsPng).WithName("GetJobFeatureMaps")
            .WithSummary("A convolution layer's feature maps for probe image ?sample= (0–15: the first training samples) as a PNG grid")
            .Produces(StatusCodes.Status200OK, contentType: "image/png");
        jobs.MapPost("/{id:guid}/snapshot", Request).WithName("RequestJobSnapshot")
            .WithSummary("Take new pictures (filters, feature maps) before the job's next step; a snapshot event announces them");
        return jobs;
    }

    public static async Task<Results<Ok<VisualsView>, ProblemHttpResult>> Describe(Guid id, TrainingDb db, IOptions<StorageOptions> storage, CancellationToken cancellationToken)
    {
        (VisualSnapshot? snapshot, ProblemHttpResult? problem) = await LoadAsync(id, db, storage, cancellationToken);
        return snapshot is null
            ? problem!
            : TypedResults.Ok(new VisualsView(snapshot.Step, snapshot.Epoch, snapshot.Probes.Count,
                [.. snapshot.Filters.Select(f => new VisualLayer(f.Layer, f.Filters, f.Channels, [f.Height, f.Width],
                    snapshot.Probes.Count > 0 ? MapSize(snapshot.Probes[0], f.Layer) : []))]));
    }

    public static async Task<Results<FileContentHttpResult, ProblemHttpResult>> Filters(
        Guid id, string layer, TrainingDb db, IOptions<StorageOptions> storage, CancellationToken cancellationToken)
    {
        (VisualSnapshot? snapshot, ProblemHttpResult? problem) = await LoadAsync(id, db, storage, cancellationToken);
        if (snapshot is null)
        {
            return problem!;
        }

        FilterBank? bank = snapshot.Filters.FirstOrDefault(f => f.Layer == layer);
        return bank is null
            ? Problems.NotFound("layer", $"Job {id} has no convolution layer {layer}; it has {string.Join(", ", snapshot.Filters.Select(f => f.Layer))}.")
            : TypedResults.File(RenderFilters(bank), "image/png");
    }

    public static async Task<Results<FileContentHttpResult, ProblemHttpResult>> FeatureMapsPng(
        Guid id, string layer, TrainingDb db, IOptions<StorageOptions> storage, int sample = 0, CancellationToken cancellationToken = default)
    {
        (VisualSnapshot? snapshot, ProblemHttpResult? problem) = await LoadAsync(id, db, storage, cancellationToken);
        if (snapshot is null)
        {
            return problem!;
        }

        if (sample < 0 || sample >= snapshot.Probes.Count)
        {
            return Problems.NotFound("sample", $"sample must be a probe image, 0..{snapshot.Probes.Count - 1} (the dataset's first training samples), got {sample}.");
        }

        FeatureMaps? maps = snapshot.Probes[sample].FirstOrDefault(m => m.Layer == layer);
        return maps is null
            ? Problems.NotFound("layer", $"Job {id} has no convolution layer {layer}; it has {string.Join(", ", snapshot.Filters.Select(f => f.Layer))}.")
            : TypedResults.File(RenderMaps(maps), "image/png");
    }

    public static async Task<Results<Accepted, ProblemHttpResult>> Request(Guid id, TrainingDb db, JobControls controls, CancellationToken cancellationToken)
    {
        JobRecord? job = await db.Jobs.AsNoTracking().FirstOrDefaultAsync(j => j.Id == id, cancellationToken);
        if (job is null)
        {
            return Problems.NotFound("id", $"There is no job {id}.");
        }

        if (job.State is not (RunState.Running or RunState.Paused))
        {
            return Problems.Conflict($"Job {id} is {job.State}; pictures are taken of a running or paused job (a finished one keeps its last).");
        }

        controls.For(id).RequestSnapshot();
        return TypedResults.Accepted($"/jobs/{id}/visuals");
    }

    private static async Task<(VisualSnapshot? Snapshot, ProblemHttpResult? Problem)> LoadAsync(
        Guid id, TrainingDb db, IOptions<StorageOptions> storage, CancellationToken cancellationToken)
    {
        JobRecord? job = await db.Jobs.AsNoTracking().FirstOrDefaultAsync(j => j.Id == id, cancellationToken);
        if (job is null)
        {
            return (null, Problems.NotFound("id", $"There is no job {id}."));
        }

        string path = storage.Value.VisualsFile(id);
        if (!File.Exists(path))
        {
            return (null, Problems.Conflict($"Job {id} ({job.State}) has no pictures yet: they are taken at every epoch's end and on POST /jobs/{id}/snapshot."));
        }

        DateTime written = File.GetLastWriteTimeUtc(path);
        if (s_cache.TryGetValue(path, out var cached) && cached.Written == written)
        {
            return (cached.Snapshot, null);
        }

        VisualSnapshot snapshot = VisualSnapshot.Load(path);
        if (s_cache.Count > 32)
        {
            s_cache.Clear(); // a handful of jobs are watched at a time; this keeps the cache from growing with old ones
        }

        s_cache[path] = (written, snapshot);
        return (snapshot, null);
    }

    private static int[] MapSize(IReadOnlyList<FeatureMaps> probe, string layer) =>
        probe.FirstOrDefault(m => m.Layer == layer) is { } m ? [m.Height, m.Width] : [];

    /// <summary>
    /// One tile per filter in a square-ish grid: RGB when the filter has 3 input channels, else one grey tile per input
    /// channel (up to 16) in the filter's row. Each filter is scaled by its own largest magnitude, mid-grey = 0.
    /// </summary>
    internal static byte[] RenderFilters(FilterBank bank)
    {
        int filters = Math.Min(bank.Filters, 256);
        bool rgb = bank.Channels == 3;
        int channels = rgb ? 1 : Math.Min(bank.Channels, 16);
        int scale = Math.Clamp(40 / Math.Max(bank.Height, bank.Width), 1, 16);
        int tileH = bank.Height * scale, tileW = bank.Width * scale;
        int columns = rgb || channels == 1 ? (int)Math.Ceiling(Math.Sqrt(filters)) : channels;
        int rows = rgb || channels == 1 ? (int)Math.Ceiling(filters / (double)columns) : filters;
        var canvas = new Canvas((columns * (tileW + 1)) + 1, (rows * (tileH + 1)) + 1);
        int plane = bank.Height * bank.Width, per = bank.Channels * plane;
        for (int f = 0; f < filters; f++)
        {
            ReadOnlySpan<float> w = bank.Weights.AsSpan(f * per, per);
            float max = 0;
            foreach (float v in w)
            {
                max = Math.Max(max, Math.Abs(v));
            }

            byte Level(float v) => (byte)Math.Clamp(127.5f + (127.5f * (max > 0 ? v / max : 0)), 0, 255);
            for (int c = 0; c < channels; c++)
            {
                int tile = rgb || channels == 1 ? f : (f * columns) + c;
                int x0 = 1 + ((tile % columns) * (tileW + 1)), y0 = 1 + ((tile / columns) * (tileH + 1));
                for (int y = 0; y < tileH; y++)
                {
                    for (int x = 0; x < tileW; x++)
                    {
                        int k = ((y / scale) * bank.Width) + (x / scale);
                        canvas.Set(x0 + x, y0 + y, rgb
                            ? (Level(w[k]), Level(w[plane + k]), Level(w[(2 * plane) + k]))
                            : Grey(Level(w[(c * plane) + k])));
                    }
                }
            }
        }

        return canvas.Png();
    }

    /// <summary>Every map of the layer in a square-ish grid, each scaled from its own minimum (black) to maximum (white).</summary>
    internal static byte[] RenderMaps(FeatureMaps maps)
    {
        int count = Math.Min(maps.Maps, 256);
        int scale = Math.Clamp(64 / Math.Max(maps.Height, maps.Width), 1, 8);
        int tileH = maps.Height * scale, tileW = maps.Width * scale;
        int columns = (int)Math.Ceiling(Math.Sqrt(count));
        int rows = (int)Math.Ceiling(count / (double)columns);
        var canvas = new Canvas((columns * (tileW + 1)) + 1, (rows * (tileH + 1)) + 1);
        int plane = maps.Height * maps.Width;
        for (int m = 0; m < count; m++)
        {
            ReadOnlySpan<float> v = maps.Values.AsSpan(m * plane, plane);
            float min = System.Numerics.Tensors.TensorPrimitives.Min(v), max = System.Numerics.Tensors.TensorPrimitives.Max(v);
            float range = max > min ? max - min : 1;
            int x0 = 1 + ((m % columns) * (tileW + 1)), y0 = 1 + ((m / columns) * (tileH + 1));
            for (int y = 0; y < tileH; y++)
            {
                for (int x = 0; x < tileW; x++)
                {
                    canvas.Set(x0 + x, y0 + y, Grey((byte)(255 * (v[((y / scale) * maps.Width) + (x / scale)] - min) / range)));
                }
            }
        }

        return canvas.Png();
    }

    private static (byte, byte, byte) Grey(byte level) => (level, level, level);

    /// <summary>An RGBA picture on a dark background (the grid lines), encoded as PNG by SkiaSharp.</summary>
    private sealed class Canvas
    {
        private readonly int _width;
        private readonly int _height;
        private readonly byte[] _pixels;

        public Canvas(int width, int height)
        {
            _width = width;
            _height = height;
            _pixels = new byte[width * height * 4];
            for (int i = 0; i < _pixels.Length; i += 4)
            {
                (_pixels[i], _pixels[i + 1], _pixels[i + 2], _pixels[i + 3]) = ((byte)40, (byte)44, (byte)52, (byte)255);
            }
        }

        public void Set(int x, int y, (byte R, byte G, byte B) colour)
        {
            int i = ((y * _width) + x) * 4;
            (_pixels[i], _pixels[i + 1], _pixels[i + 2]) = colour;
        }

        public byte[] Png()
        {
            var info = new SKImageInfo(_width, _height, SKColorType.Rgba8888, SKAlphaType.Opaque);
            using SKImage image = SKImage.FromPixelCopy(info, _pixels, info.RowBytes);
            using SKData png = image.Encode(SKEncodedImageFormat.Png, 100);
            return png.ToArray();
        }
    }
}
