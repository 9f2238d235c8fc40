using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace TrainingService.Training.Export;

/// <summary>
/// The safetensors layout (huggingface/safetensors): an 8-byte little-endian header length, a JSON header naming each
/// tensor's dtype, shape and byte range, padded with spaces to 8 bytes, then the raw little-endian data. Names are the
/// model's own, which are PyTorch's (conv1.weight, batchnorm1.running_mean, …), so a PyTorch model with the same layer
/// names loads them with load_state_dict.
/// </summary>
public static class SafeTensors
{
    public static void Write(Stream output, IReadOnlyList<StateTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var header = new JsonObject();
        if (metadata is { Count: > 0 })
        {
            var meta = new JsonObject();
            foreach ((string key, string value) in metadata)
            {
                meta[key] = value;
            }

            header["__metadata__"] = meta;
        }

        long offset = 0;
        foreach (StateTensor t in tensors)
        {
            header[t.Name] = new JsonObject
            {
                ["dtype"] = DType(t.ElementType),
                ["shape"] = new JsonArray([.. t.Shape.Select(d => (JsonNode)d)]),
                ["data_offsets"] = new JsonArray(offset, offset + t.Data.Length),
            };
            offset += t.Data.Length;
        }

        byte[] json = Encoding.UTF8.GetBytes(header.ToJsonString());
        int padded = (json.Length + 7) / 8 * 8;
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)padded);
        output.Write(length);
        output.Write(json);
        for (int i = json.Length; i < padded; i++)
        {
            output.WriteByte((byte)' ');
        }

        foreach (StateTensor t in tensors)
        {
            output.Write(t.Data);
        }
    }

    /// <summary>Reads a file this class (or any safetensors writer) made: the header and each tensor's bytes.</summary>
    public static (JsonObject Header, Dictionary<string, byte[]> Data) Read(Stream input)
    {
        Span<byte> length = stackalloc byte[8];
        input.ReadExactly(length);
        var json = new byte[checked((int)BinaryPrimitives.ReadUInt64LittleEndian(length))];
        input.ReadExactly(json);
        JsonObject header = JsonNode.Parse(json)!.AsObject();
        using var rest = new MemoryStream();
        input.CopyTo(rest);
        byte[] all = rest.ToArray();
        var data = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach ((string name, JsonNode? entry) in header)
        {
            if (name == "__metadata__")
            {
                continue;
            }

            JsonArray offsets = entry!["data_offsets"]!.AsArray();
            int begin = offsets[0]!.GetValue<int>(), end = offsets[1]!.GetValue<int>();
            data[name] = all[begin..end];
        }

        return (header, data);
    }

    private static string DType(int type) => type switch
    {
        0 => "U8",
        1 => "I8",
        2 => "I16",
        3 => "I32",
        4 => "I64",
        5 => "F16",
        6 => "F32",
        7 => "F64",
        11 => "BOOL",
        15 => "BF16",
        _ => throw new InvalidDataException($"element type {type} has no safetensors dtype"),
    };
}
