using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace TrainingService.Training.Native;

/// <summary>
/// Reads a CPU tensor's float32 storage in place, and fills a uint8 one (augmented batches). Statistics read this way cost
/// no torch ops, which (at ~5 µs of dispatch each) would otherwise dominate a small network's step.
/// </summary>
internal static partial class TensorMemory
{
    public static ReadOnlySpan<float> Floats(Tensor tensor) => WritableFloats(tensor);

    /// <summary>A contiguous float32 CPU tensor's storage, to fill in place.</summary>
    public static unsafe Span<float> WritableFloats(Tensor tensor)
    {
        long count = Check(tensor, ScalarType.Float32);
        return count == 0 ? [] : new Span<float>((void*)THSTensor_data(tensor.Handle), checked((int)count));
    }

    public static ReadOnlySpan<int> Ints(Tensor tensor) => WritableInts(tensor);

    /// <summary>A contiguous int32 CPU tensor's storage, to fill in place.</summary>
    public static unsafe Span<int> WritableInts(Tensor tensor)
    {
        long count = Check(tensor, ScalarType.Int32);
        return count == 0 ? [] : new Span<int>((void*)THSTensor_data(tensor.Handle), checked((int)count));
    }

    private static long Check(Tensor tensor, ScalarType type)
    {
        if (tensor.dtype != type || tensor.device_type != TorchSharp.DeviceType.CPU || !tensor.is_contiguous())
        {
            throw new ArgumentException($"expected a contiguous {type} CPU tensor, got {tensor.dtype} on {tensor.device_type}", nameof(tensor));
        }

        return tensor.numel();
    }

    /// <summary>A contiguous uint8 CPU tensor's storage, to fill in place.</summary>
    public static unsafe Span<byte> Bytes(Tensor tensor)
    {
        long count = Check(tensor, ScalarType.Byte);
        return count == 0 ? [] : new Span<byte>((void*)THSTensor_data(tensor.Handle), checked((int)count));
    }

    [LibraryImport("LibTorchSharp")]
    private static partial IntPtr THSTensor_data(IntPtr handle);
}
