using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TrainingService.Training.Native;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TrainingService.Training.Models;

/// <summary>
/// Max pooling of 2×2 windows with stride 2 (the common pool; no padding) on contiguous float32 CPU tensors, computed
/// on the host with AVX2: libtorch's CPU kernel (max_pool2d_with_indices) spent about 1 ms on LeNet-5's first pool at
/// batch 64, longer than the convolution before it (docs/benchmarks.md, issue 15's profile). Same results bit for bit: the same window scan, the same choice
/// among equal values (the first in row-major order; a NaN wins, the last NaN if several), the same gradient sums in
/// the same order. Anything else (other windows, padding, other types or layouts, no AVX2) goes to libtorch's.
/// </summary>
internal sealed class MaxPool2d(long kernelHeight, long kernelWidth, long strideHeight, long strideWidth, long paddingHeight, long paddingWidth)
    : nn.Module<Tensor, Tensor>(nameof(MaxPool2d))
{
    public override Tensor forward(Tensor input) => Apply(input, kernelHeight, kernelWidth, strideHeight, strideWidth, paddingHeight, paddingWidth);

    public static Tensor Apply(Tensor input, long kernelHeight, long kernelWidth, long strideHeight, long strideWidth, long paddingHeight, long paddingWidth)
    {
        if (!Avx2.IsSupported || kernelHeight != 2 || kernelWidth != 2 || strideHeight != 2 || strideWidth != 2
            || paddingHeight != 0 || paddingWidth != 0 || input.dim() != 4 || input.dtype != ScalarType.Float32
            || input.device_type != TorchSharp.DeviceType.CPU || !input.is_contiguous() || input.numel() > int.MaxValue
            || input.shape[2] < 2 || input.shape[3] < 2)
        {
            return F.max_pool2d(input, [kernelHeight, kernelWidth], [strideHeight, strideWidth], [paddingHeight, paddingWidth], [1, 1], false);
        }

        return input.requires_grad && is_grad_enabled() ? MaxPoolFunction.apply(input) : Forward(input, indices: null);
    }

    /// <summary>
    /// The pooled values, and each one's index in its input plane when <paramref name="indices"/> is given. Eight outputs
    /// at a time with AVX2 (four for rows of 4–7; a row's last block overlaps the one before): a window's four values are
    /// compared in libtorch's order (top left, top right, bottom left, bottom right), each taking over if greater or NaN,
    /// with selects instead of branches (random data would mispredict every other branch). Rows of 1–3 go one window
    /// at a time, the same rule.
    /// </summary>
    internal static unsafe Tensor Forward(Tensor input, Tensor? indices)
    {
        int n = (int)input.shape[0], c = (int)input.shape[1], h = (int)input.shape[2], wd = (int)input.shape[3];
        int oh = h / 2, ow = wd / 2;
        Tensor output = empty([n, c, oh, ow], ScalarType.Float32);
        ReadOnlySpan<float> x = TensorMemory.Floats(input);
        Span<float> y = TensorMemory.WritableFloats(output);
        Span<int> at = indices is null ? [] : TensorMemory.WritableInts(indices);
        bool keep = indices is not null;
        int planes = n * c, inPlane = h * wd, outPlane = oh * ow;
        fixed (float* xs = x, ys = y)
        fixed (int* ats = at)
        {
            Vector256<int> lane2 = Vector256.Create(0, 2, 4, 6, 8, 10, 12, 14);
            for (int p = 0; p < planes; p++)
            {
                float* plane = xs + ((long)p * inPlane);
                for (int i = 0; i < oh; i++)
                {
                    float* top = plane + (2 * i * wd), bottom = top + wd;
                    float* outRow = ys + ((long)p * outPlane) + (i * ow);
                    int* atRow = ats + ((long)p * outPlane) + (i * ow);
                    int j = 0;
                    for (; j < ow && ow >= 8; j += 8)
                    {
                        // The last block of a row overlaps the one before it rather than falling back to one at a time.
                        j = Math.Min(j, ow - 8);
                        (Vector256<float> topLeft, Vector256<float> topRight) = Deinterleave(top + (2 * j));
                        (Vector256<float> bottomLeft, Vector256<float> bottomRight) = Deinterleave(bottom + (2 * j));
                        Vector256<float> max = topLeft;
                        Vector256<int> which = Vector256<int>.Zero;
                        Take(ref max, ref which, topRight, 1);
                        Take(ref max, ref which, bottomLeft, 2);
                        Take(ref max, ref which, bottomRight, 3);
                        max.Store(outRow + j);
                        if (keep)
                        {
                            // which 0..3 → (2i + which / 2) · width + 2j + 2k + which % 2
                            Vector256<int> index = Vector256.Create((2 * i * wd) + (2 * j)) + lane2
                                + ((which >>> 1) * Vector256.Create(wd)) + (which & Vector256.Create(1));
                            index.Store(atRow + j);
                        }
                    }

                    for (; j < ow && ow is >= 4 and < 8; j += 4)
                    {
                        // Narrow rows (LeNet's second pool: 5 outputs), four at a time, the last block overlapping too.
                        j = Math.Min(j, ow - 4);
                        (Vector128<float> topLeft, Vector128<float> topRight) = Deinterleave128(top + (2 * j));
                        (Vector128<float> bottomLeft, Vector128<float> bottomRight) = Deinterleave128(bottom + (2 * j));
                        Vector128<float> max = topLeft;
                        Vector128<int> which = Vector128<int>.Zero;
                        Take128(ref max, ref which, topRight, 1);
                        Take128(ref max, ref which, bottomLeft, 2);
                        Take128(ref max, ref which, bottomRight, 3);
                        max.Store(outRow + j);
                        if (keep)
                        {
                            Vector128<int> index = Vector128.Create((2 * i * wd) + (2 * j)) + lane2.GetLower()
                                + ((which >>> 1) * Vector128.Create(wd)) + (which & Vector128.Create(1));
                            index.Store(atRow + j);
                        }
                    }

                    for (; j < ow; j++)
                    {
                        // The same rule one window at a time: offsets in scan order, from the top left.
                        int left = 2 * j, best = left;
                        float max = top[left];
                        Scalar(ref max, ref best, top[left + 1], left + 1);
                        Scalar(ref max, ref best, bottom[left], wd + left);
                        Scalar(ref max, ref best, bottom[left + 1], wd + left + 1);
                        outRow[j] = max;
                        if (keep)
                        {
                            atRow[j] = (2 * i * wd) + best;
                        }
                    }
                }
            }
        }

        return output;
    }

    private static void Scalar(ref float max, ref int best, float value, int offset)
    {
        if (value > max || float.IsNaN(value))
        {
            max = value;
            best = offset;
        }
    }

    /// <summary>Sixteen consecutive values split into the eight at even and the eight at odd offsets.</summary>
    private static unsafe (Vector256<float> Even, Vector256<float> Odd) Deinterleave(float* at)
    {
        Vector256<float> a = Avx.LoadVector256(at), b = Avx.LoadVector256(at + 8);
        // Within each 128-bit lane: a0 a2 b0 b2 | a4 a6 b4 b6; then the 64-bit pairs put in order.
        Vector256<float> even = Avx.Shuffle(a, b, 0b10_00_10_00), odd = Avx.Shuffle(a, b, 0b11_01_11_01);
        return (Avx2.Permute4x64(even.AsDouble(), 0b11_01_10_00).AsSingle(), Avx2.Permute4x64(odd.AsDouble(), 0b11_01_10_00).AsSingle());
    }

    private static unsafe (Vector128<float> Even, Vector128<float> Odd) Deinterleave128(float* at)
    {
        Vector128<float> a = Sse.LoadVector128(at), b = Sse.LoadVector128(at + 4);
        return (Sse.Shuffle(a, b, 0b10_00_10_00), Sse.Shuffle(a, b, 0b11_01_11_01));
    }

    private static void Take128(ref Vector128<float> max, ref Vector128<int> which, Vector128<float> value, int position)
    {
        Vector128<float> take = Sse.Or(Sse.CompareGreaterThan(value, max), Sse.CompareUnordered(value, value));
        max = Sse41.BlendVariable(max, value, take);
        which = Sse41.BlendVariable(which.AsSingle(), Vector128.Create(position).AsSingle(), take).AsInt32();
    }

    /// <summary>libtorch's rule, lane by lane: a value greater than the maximum so far, or NaN, takes over.</summary>
    private static void Take(ref Vector256<float> max, ref Vector256<int> which, Vector256<float> value, int position)
    {
        Vector256<float> take = Avx.Or(Avx.CompareGreaterThan(value, max), Avx.CompareUnordered(value, value));
        max = Avx.BlendVariable(max, value, take);
        which = Avx.BlendVariable(which.AsSingle(), Vector256.Create(position).AsSingle(), take).AsInt32();
    }

    /// <summary>
    /// The input's gradient, written densely: 2×2 windows with stride 2 do not overlap, so each input is in at most one
    /// window and gets that window's gradient (if it was the one chosen) or zero. libtorch's backward zeroes the gradient
    /// and adds each output's to its input's; 0 + g is g except for −0, which becomes +0: adding +0 here does the same.
    /// Eight windows at a time with AVX2 (four for rows of 4–7, the last block overlapping as in <see cref="Forward"/>),
    /// one at a time otherwise; inputs in no window (an odd last row or column) stay zero.
    /// </summary>
    internal static unsafe Tensor Backward(Tensor gradOutput, Tensor indices, long[] inputShape)
    {
        int h = (int)inputShape[2], wd = (int)inputShape[3], oh = h / 2, ow = wd / 2;
        bool covered = h % 2 == 0 && wd % 2 == 0;
        Tensor gradInput = covered ? empty(inputShape, ScalarType.Float32) : zeros(inputShape, ScalarType.Float32);
        using Tensor g = gradOutput.contiguous();
        ReadOnlySpan<float> dy = TensorMemory.Floats(g);
        ReadOnlySpan<int> at = TensorMemory.Ints(indices);
        Span<float> dx = TensorMemory.WritableFloats(gradInput);
        int planes = (int)(inputShape[0] * inputShape[1]), inPlane = h * wd, outPlane = oh * ow;
        if (at.Length != dy.Length || (long)planes * outPlane != dy.Length || (long)planes * inPlane != dx.Length)
        {
            throw new InvalidOperationException($"max pool backward: {dy.Length} gradients for {at.Length} indices and {dx.Length} inputs");
        }

        fixed (float* dys = dy, dxs = dx)
        fixed (int* ats = at)
        {
            Vector256<int> lane2 = Vector256.Create(0, 2, 4, 6, 8, 10, 12, 14);
            Vector256<int> right = Vector256.Create(1), below = Vector256.Create(wd), belowRight = Vector256.Create(wd + 1);
            for (int p = 0; p < planes; p++)
            {
                float* plane = dxs + ((long)p * inPlane);
                for (int i = 0; i < oh; i++)
                {
                    float* top = plane + (2 * i * wd), bottom = top + wd;
                    float* dyRow = dys + ((long)p * outPlane) + (i * ow);
                    int* atRow = ats + ((long)p * outPlane) + (i * ow);
                    int j = 0;
                    for (; j < ow && ow >= 8; j += 8)
                    {
                        j = Math.Min(j, ow - 8);
                        Vector256<float> gradient = Avx.LoadVector256(dyRow + j) + Vector256<float>.Zero;
                        // Where in its window each output's input was: 0, 1, width or width + 1 past the top left.
                        Vector256<int> offset = Avx.LoadVector256(atRow + j) - (Vector256.Create((2 * i * wd) + (2 * j)) + lane2);
                        Vector256<float> topLeft = gradient & Vector256.Equals(offset, Vector256<int>.Zero).AsSingle();
                        Vector256<float> topRight = gradient & Vector256.Equals(offset, right).AsSingle();
                        Vector256<float> bottomLeft = gradient & Vector256.Equals(offset, below).AsSingle();
                        Vector256<float> bottomRight = gradient & Vector256.Equals(offset, belowRight).AsSingle();
                        Interleave(top + (2 * j), topLeft, topRight);
                        Interleave(bottom + (2 * j), bottomLeft, bottomRight);
                    }

                    for (; j < ow && ow is >= 4 and < 8; j += 4)
                    {
                        j = Math.Min(j, ow - 4);
                        Vector128<float> gradient = Sse.LoadVector128(dyRow + j) + Vector128<float>.Zero;
                        Vector128<int> offset = Sse2.LoadVector128(atRow + j) - (Vector128.Create((2 * i * wd) + (2 * j)) + lane2.GetLower());
                        Vector128<float> topLeft = gradient & Vector128.Equals(offset, Vector128<int>.Zero).AsSingle();
                        Vector128<float> topRight = gradient & Vector128.Equals(offset, right.GetLower()).AsSingle();
                        Vector128<float> bottomLeft = gradient & Vector128.Equals(offset, below.GetLower()).AsSingle();
                        Vector128<float> bottomRight = gradient & Vector128.Equals(offset, belowRight.GetLower()).AsSingle();
                        Sse.Store(top + (2 * j), Sse.UnpackLow(topLeft, topRight));
                        Sse.Store(top + (2 * j) + 4, Sse.UnpackHigh(topLeft, topRight));
                        Sse.Store(bottom + (2 * j), Sse.UnpackLow(bottomLeft, bottomRight));
                        Sse.Store(bottom + (2 * j) + 4, Sse.UnpackHigh(bottomLeft, bottomRight));
                    }

                    for (; j < ow; j++)
                    {
                        int left = 2 * j, offset = atRow[j] - (2 * i * wd) - left;
                        float gradient = dyRow[j] + 0f;
                        top[left] = offset == 0 ? gradient : 0f;
                        top[left + 1] = offset == 1 ? gradient : 0f;
                        bottom[left] = offset == wd ? gradient : 0f;
                        bottom[left + 1] = offset == wd + 1 ? gradient : 0f;
                    }
                }
            }
        }

        return gradInput;
    }

    /// <summary>Writes a0 b0 a1 b1 … a7 b7: sixteen values, one window row's pair after another.</summary>
    private static unsafe void Interleave(float* at, Vector256<float> a, Vector256<float> b)
    {
        // Within each 128-bit lane: a0 b0 a1 b1 | a4 b4 a5 b5 and a2 b2 a3 b3 | a6 b6 a7 b7; then the lanes put in order.
        Vector256<float> low = Avx.UnpackLow(a, b), high = Avx.UnpackHigh(a, b);
        Avx.Store(at, Avx.Permute2x128(low, high, 0x20));
        Avx.Store(at + 8, Avx.Permute2x128(low, high, 0x31));
    }

    private sealed class MaxPoolFunction : autograd.SingleTensorFunction<MaxPoolFunction>
    {
        public override string Name => nameof(MaxPool2d);

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var input = (Tensor)vars[0];
            Tensor indices = empty([input.shape[0], input.shape[1], input.shape[2] / 2, input.shape[3] / 2], ScalarType.Int32);
            Tensor output = Forward(input, indices);
            ctx.save_for_backward([indices]);
            ctx.save_data("shape", input.shape);
            return output;
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
        {
            Tensor indices = ctx.get_saved_variables()[0];
            return [Backward(gradOutput, indices, (long[])ctx.get_data("shape"))];
        }
    }
}
