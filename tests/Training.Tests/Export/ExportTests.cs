using System.Text.Json.Nodes;
using TorchSharp;
using TrainingService.Training.Export;
using TrainingService.Training.Models;
using TrainingService.Training.Native;
using TrainingService.Training.Specs;
using Xunit;
using static TorchSharp.torch;

namespace TrainingService.Training.Tests.Export;

/// <summary>TorchSharp's model format read and written without torch, and the safetensors layout.</summary>
public sealed class ExportTests
{
    [Fact]
    public void TheStateDictOfASavedModelIsReadExactlyAndWrittenBackLoadable()
    {
        using var model = new SpecModel(SpecAnalyzer.Analyze(ModelPresets.SmallVgg(classes: 4)), seed: 1); // batch norm: float and int64 buffers
        using var saved = new MemoryStream();
        model.save(new BinaryWriter(saved));
        saved.Position = 0;

        List<StateTensor> tensors = StateDict.Read(new BinaryReader(saved));
        var expected = model.state_dict();
        Assert.Equal(expected.Keys, tensors.Select(t => t.Name));
        foreach (StateTensor t in tensors)
        {
            Tensor reference = expected[t.Name];
            Assert.Equal(reference.shape, t.Shape);
            Assert.Equal((int)reference.dtype, t.ElementType);
            Assert.Equal(reference.bytes.ToArray(), t.Data);
        }

        Assert.Contains(tensors, t => t.Name == "batchnorm1.num_batches_tracked" && t.ElementType == (int)ScalarType.Int64);

        using var written = new MemoryStream();
        StateDict.Write(new BinaryWriter(written), tensors);
        written.Position = 0;
        using var copy = new SpecModel(SpecAnalyzer.Analyze(ModelPresets.SmallVgg(classes: 4)), seed: 2);
        copy.load(new BinaryReader(written));
        foreach ((string name, Tensor value) in copy.state_dict())
        {
            Assert.Equal(expected[name].bytes.ToArray(), value.bytes.ToArray());
        }
    }

    [Fact]
    public void SafeTensorsHasTheStandardLayout()
    {
        var tensors = new List<StateTensor>
        {
            new("conv1.weight", 6, [2, 1, 1, 2], [.. BitConverter.GetBytes(1f), .. BitConverter.GetBytes(-2f), .. BitConverter.GetBytes(3.5f), .. BitConverter.GetBytes(0f)]),
            new("bn1.num_batches_tracked", 4, [], BitConverter.GetBytes(7L)),
        };
        using var file = new MemoryStream();
        SafeTensors.Write(file, tensors, new Dictionary<string, string> { ["format"] = "pt" });
        byte[] bytes = file.ToArray();

        ulong headerLength = BitConverter.ToUInt64(bytes, 0);
        Assert.Equal(0UL, headerLength % 8);
        Assert.Equal(8 + (long)headerLength + 16 + 8, bytes.Length);
        JsonObject header = JsonNode.Parse(bytes.AsSpan(8, (int)headerLength).ToArray())!.AsObject();
        Assert.Equal("pt", header["__metadata__"]!["format"]!.GetValue<string>());
        Assert.Equal("F32", header["conv1.weight"]!["dtype"]!.GetValue<string>());
        Assert.Equal("[2,1,1,2]", header["conv1.weight"]!["shape"]!.ToJsonString());
        Assert.Equal("[0,16]", header["conv1.weight"]!["data_offsets"]!.ToJsonString());
        Assert.Equal("I64", header["bn1.num_batches_tracked"]!["dtype"]!.GetValue<string>());
        Assert.Equal("[16,24]", header["bn1.num_batches_tracked"]!["data_offsets"]!.ToJsonString());
        Assert.Equal(-2f, BitConverter.ToSingle(bytes, 8 + (int)headerLength + 4));

        file.Position = 0;
        (_, Dictionary<string, byte[]> data) = SafeTensors.Read(file);
        Assert.Equal(tensors[0].Data, data["conv1.weight"]);
        Assert.Equal(7L, BitConverter.ToInt64(data["bn1.num_batches_tracked"]));
    }
}
