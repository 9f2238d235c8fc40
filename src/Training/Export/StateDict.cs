using System.Text;

namespace TrainingService.Training.Export;

/// <summary>One named tensor of a model's state: parameters and buffers (batch norm's running statistics).</summary>
/// <param name="ElementType">TorchSharp's ScalarType code (6 = float32).</param>
/// <param name="Data">The raw little-endian elements, row-major.</param>
public sealed record StateTensor(string Name, int ElementType, long[] Shape, byte[] Data);

/// <summary>
/// Reads and writes TorchSharp's own model format (Module.save / Module.load) without torch: an unsigned LEB128 count,
/// then per entry a LEB128-length UTF-8 name, the element type, the rank, each dimension (all LEB128) and the raw
/// bytes (the format of TorchSharp's src/Python/exportsd.py). Used to export weights from a saved model or from a
/// checkpoint while its job trains, without building a model (which would draw from torch's global generator).
/// </summary>
public static class StateDict
{
    private const string CheckpointMagic = "TrainingService.Checkpoint/1";

    public static List<StateTensor> Read(BinaryReader reader)
    {
        long count = reader.Read7BitEncodedInt64();
        var tensors = new List<StateTensor>((int)Math.Min(count, 10_000));
        for (long i = 0; i < count; i++)
        {
            string name = reader.ReadString();
            int type = (int)reader.Read7BitEncodedInt64();
            var shape = new long[reader.Read7BitEncodedInt64()];
            long elements = 1;
            for (int d = 0; d < shape.Length; d++)
            {
                shape[d] = reader.Read7BitEncodedInt64();
                elements *= shape[d];
            }

            tensors.Add(new StateTensor(name, type, shape, reader.ReadBytes(checked((int)(elements * ElementSize(type))))));
        }

        return tensors;
    }

    public static void Write(BinaryWriter writer, IReadOnlyList<StateTensor> tensors)
    {
        writer.Write7BitEncodedInt64(tensors.Count);
        foreach (StateTensor t in tensors)
        {
            writer.Write(t.Name);
            writer.Write7BitEncodedInt64(t.ElementType);
            writer.Write7BitEncodedInt64(t.Shape.Length);
            foreach (long d in t.Shape)
            {
                writer.Write7BitEncodedInt64(d);
            }

            writer.Write(t.Data);
        }
    }

    /// <summary>A model file written by Module.save (a job's model.dat).</summary>
    public static List<StateTensor> ReadModel(string path)
    {
        using var reader = new BinaryReader(File.OpenRead(path), Encoding.UTF8);
        return Read(reader);
    }

    /// <summary>The model in a checkpoint and the step it was taken at (the optimiser state that follows is not read).</summary>
    public static (List<StateTensor> Tensors, long Step) ReadCheckpoint(string path)
    {
        using var reader = new BinaryReader(File.OpenRead(path), Encoding.UTF8);
        if (reader.ReadString() != CheckpointMagic)
        {
            throw new InvalidDataException($"{path} is not a TrainingService checkpoint");
        }

        using var position = System.Text.Json.JsonDocument.Parse(reader.ReadString());
        long step = position.RootElement.GetProperty(nameof(Loop.TrainingPosition.Step)).GetInt64();
        return (Read(reader), step);
    }

    public static int ElementSize(int type) => type switch
    {
        0 or 1 or 11 => 1, // uint8, int8, bool
        2 or 5 or 15 => 2, // int16, float16, bfloat16
        3 or 6 => 4,       // int32, float32
        4 or 7 => 8,       // int64, float64
        _ => throw new InvalidDataException($"unsupported element type {type}"),
    };
}
