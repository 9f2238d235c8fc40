using TrainingService.Contracts.Training;

namespace TrainingService.Training.Data;

/// <summary>
/// Augments images on their 0..255 pixels: random crop with zero padding, then horizontal flip, then translation, pixels
/// brought in from outside being 0. Each image's random draw is a pure function of (seed, epoch, image index): a run
/// resumed mid-epoch augments exactly as an uninterrupted one would, whatever the batch size, and a preview of
/// (seed, epoch, index) shows the very image the trainer uses.
/// </summary>
public static class Augmentation
{
    /// <summary>
    /// One image's draw. The crop takes source pixel (y + CropY, x + CropX), CropY and CropX in [−padding, padding]; the
    /// translation moves content by (ShiftY, ShiftX), in [−translate, translate]. Parts that are off draw 0 and false.
    /// </summary>
    public readonly record struct Draw(int CropY, int CropX, bool Flip, int ShiftY, int ShiftX);

    /// <summary>The draw of train image <paramref name="index"/> in <paramref name="epoch"/> of a run seeded <paramref name="seed"/>.</summary>
    public static Draw For(AugmentationOptions options, int seed, int epoch, int index)
    {
        ArgumentNullException.ThrowIfNull(options);
        int padding = options.RandomCrop?.Padding ?? 0;
        int translate = options.Translate ?? 0;
        var random = new Generator(seed, epoch, index);
        // Every value is drawn whether its part is on or not, so turning one part on leaves the others' draws as they were.
        int cropY = random.Between(-padding, padding);
        int cropX = random.Between(-padding, padding);
        bool flip = random.Between(0, 1) == 1 && options.HorizontalFlip;
        int shiftY = random.Between(-translate, translate);
        int shiftX = random.Between(-translate, translate);
        return new Draw(cropY, cropX, flip, shiftY, shiftX);
    }

    /// <summary>Writes <paramref name="image"/> (C×H×W) augmented by <paramref name="draw"/> to <paramref name="target"/>.</summary>
    public static void Apply(ReadOnlySpan<byte> image, Span<byte> target, int channels, int height, int width, Draw draw)
    {
        int plane = height * width;
        if (image.Length != channels * plane || target.Length != image.Length)
        {
            throw new ArgumentException($"expected {channels}×{height}×{width} = {channels * plane} bytes in and out, got {image.Length} and {target.Length}");
        }

        // Output (y, x) is source (y − ShiftY + CropY, column), the column being x − ShiftX mirrored if flipped, + CropX:
        // each output row takes one run of a source row (reversed when flipped) and is 0 elsewhere.
        (int t0, int t1) = draw.Flip
            ? (Math.Max(Math.Max(0, draw.CropX), -draw.ShiftX), Math.Min(Math.Min(width, width + draw.CropX), width - draw.ShiftX))
            : (Math.Max(Math.Max(0, -draw.CropX), -draw.ShiftX), Math.Min(Math.Min(width, width - draw.CropX), width - draw.ShiftX));
        int run = Math.Max(0, t1 - t0);
        int firstColumn = t0 + draw.ShiftX;
        int firstSource = draw.Flip ? width - t1 + draw.CropX : t0 + draw.CropX;
        for (int c = 0; c < channels; c++)
        {
            ReadOnlySpan<byte> from = image.Slice(c * plane, plane);
            Span<byte> to = target.Slice(c * plane, plane);
            for (int y = 0; y < height; y++)
            {
                Span<byte> row = to.Slice(y * width, width);
                int translated = y - draw.ShiftY;
                int source = translated + draw.CropY;
                if (run == 0 || translated < 0 || translated >= height || source < 0 || source >= height)
                {
                    row.Clear();
                    continue;
                }

                row[..firstColumn].Clear();
                row[(firstColumn + run)..].Clear();
                Span<byte> copied = row.Slice(firstColumn, run);
                from.Slice((source * width) + firstSource, run).CopyTo(copied);
                if (draw.Flip)
                {
                    copied.Reverse();
                }
            }
        }
    }

    /// <summary>Writes train images <paramref name="indices"/> of <paramref name="data"/>, each augmented by its draw in <paramref name="epoch"/>, one after another.</summary>
    public static void ApplyToBatch(ImageDataset data, ReadOnlySpan<int> indices, AugmentationOptions options, int seed, int epoch, Span<byte> target)
    {
        ArgumentNullException.ThrowIfNull(data);
        int size = data.SampleSize;
        for (int i = 0; i < indices.Length; i++)
        {
            int index = indices[i];
            Apply(data.Train.Images.AsSpan(index * size, size), target.Slice(i * size, size), data.Channels, data.Height, data.Width, For(options, seed, epoch, index));
        }
    }

    /// <summary>SplitMix64 keyed by (seed, epoch, index): stateless across images, so nothing needs to be checkpointed.</summary>
    private struct Generator(int seed, int epoch, int index)
    {
        private ulong _state = Mix(Mix(Mix((uint)seed) ^ (uint)epoch) ^ (uint)index);

        /// <summary>A whole number uniform in [low, high] (the bias of the multiply-shift is below 2⁻²¹ for the ranges allowed here).</summary>
        public int Between(int low, int high)
        {
            _state += 0x9E3779B97F4A7C15;
            ulong bits = Mix(_state) >> 32;
            return low + (int)((bits * (ulong)(high - low + 1)) >> 32);
        }

        private static ulong Mix(ulong z)
        {
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
            return z ^ (z >> 31);
        }
    }
}
