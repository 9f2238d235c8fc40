using System.Text.Json;
using System.Text.Json.Serialization;
using TrainingService.Contracts.Specs;
using Xunit;

namespace TrainingService.Training.Tests.Specs;

/// <summary>The contract's sizes as JSON: one integer when square, [height, width] otherwise, and "same".</summary>
public sealed class SpecJsonTests
{
    private static readonly JsonSerializerOptions s_webWithoutNulls = new(JsonSerializerOptions.Web) { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    [Theory]
    [InlineData(5, 5, "5")]
    [InlineData(3, 5, "[3,5]")]
    [InlineData(0, 0, "0")]
    [InlineData(-1, 2, "[-1,2]")]
    public void IntPairIsOneIntegerWhenSquareElseAPair(int height, int width, string json)
    {
        var pair = new IntPair(height, width);

        Assert.Equal(json, JsonSerializer.Serialize(pair, JsonSerializerOptions.Web));
        Assert.Equal(pair, JsonSerializer.Deserialize<IntPair>(json, JsonSerializerOptions.Web));
    }

    [Fact]
    public void SquareIntPairReadsFromATwoElementArrayToo() =>
        Assert.Equal(new IntPair(4, 4), JsonSerializer.Deserialize<IntPair>("[4, 4]", JsonSerializerOptions.Web));

    [Theory]
    [InlineData("[5]")]
    [InlineData("[]")]
    [InlineData("[1,2,3]")]
    [InlineData("[5,\"a\"]")]
    [InlineData("\"5\"")]
    [InlineData("true")]
    [InlineData("{}")]
    public void IntPairRejectsAnythingButAnIntegerOrAPair(string json)
    {
        JsonException error = Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<IntPair>(json, JsonSerializerOptions.Web));

        Assert.Contains("expected an integer or [height, width]", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PaddingWritesSameAsAStringAndSizesAsIntPairs()
    {
        Assert.Equal("\"same\"", JsonSerializer.Serialize(Padding.SameAsInput, JsonSerializerOptions.Web));
        Assert.Equal("2", JsonSerializer.Serialize((Padding)2, JsonSerializerOptions.Web));
        Assert.Equal("[1,2]", JsonSerializer.Serialize((Padding)new IntPair(1, 2), JsonSerializerOptions.Web));
    }

    [Theory]
    [InlineData("\"same\"")]
    [InlineData("2")]
    [InlineData("[1,2]")]
    public void PaddingRoundTrips(string json) =>
        Assert.Equal(json, JsonSerializer.Serialize(JsonSerializer.Deserialize<Padding>(json, JsonSerializerOptions.Web), JsonSerializerOptions.Web));

    [Theory]
    [InlineData("\"SAME\"")]
    [InlineData("\"valid\"")]
    [InlineData("[1]")]
    public void PaddingRejectsOtherStringsAndShortArrays(string json) =>
        Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<Padding>(json, JsonSerializerOptions.Web));

    [Fact]
    public void SizesPrintAsTheyAreWritten()
    {
        Assert.Equal(("5", "[3, 5]"), (((IntPair)5).ToString(), new IntPair(3, 5).ToString()));
        Assert.Equal(("\"same\"", "2", "[0, 1]"), (Padding.SameAsInput.ToString(), ((Padding)2).ToString(), ((Padding)new IntPair(0, 1)).ToString()));
    }

    [Fact]
    public void LayerSpecWritesCompactFieldsUnderWebNames()
    {
        var layer = new LayerSpec { Kind = "conv2d", Filters = 6, Kernel = new IntPair(3, 5), Stride = 1, Padding = Padding.SameAsInput, Bias = false };

        Assert.Equal(
            """{"kind":"conv2d","filters":6,"kernel":[3,5],"stride":1,"padding":"same","bias":false}""",
            JsonSerializer.Serialize(layer, s_webWithoutNulls));
    }

    [Fact]
    public void ModelSpecRoundTripsThroughTheWebDefaults()
    {
        ModelSpec spec = new()
        {
            Name = "small",
            Input = new InputSpec(3, 20, 30),
            Layers =
            [
                new LayerSpec { Kind = "conv2d", Filters = 4, Kernel = new IntPair(3, 5), Padding = new IntPair(1, 2), Dilation = 2 },
                new LayerSpec { Kind = "maxpool2d", Kernel = 2, Stride = new IntPair(2, 1) },
                new LayerSpec { Kind = "dropout", P = 0.25 },
                new LayerSpec { Kind = "flatten" },
                new LayerSpec { Kind = "linear", Units = 10, Bias = true },
            ],
        };

        ModelSpec back = JsonSerializer.Deserialize<ModelSpec>(JsonSerializer.Serialize(spec, JsonSerializerOptions.Web), JsonSerializerOptions.Web)!;

        Assert.Equal((spec.Name, spec.Input), (back.Name, back.Input));
        Assert.Equal(spec.Layers, back.Layers!);
    }
}
