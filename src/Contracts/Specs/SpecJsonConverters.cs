using System.Text.Json;
using System.Text.Json.Serialization;

namespace TrainingService.Contracts.Specs;

internal sealed class IntPairJsonConverter : JsonConverter<IntPair>
{
    public override IntPair Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.Number)
        {
            return reader.GetInt32();
        }

        if (reader.TokenType == JsonTokenType.StartArray)
        {
            reader.Read();
            int height = reader.TokenType == JsonTokenType.Number ? reader.GetInt32() : throw NotAPair();
            reader.Read();
            int width = reader.TokenType == JsonTokenType.Number ? reader.GetInt32() : throw NotAPair();
            reader.Read();
            return reader.TokenType == JsonTokenType.EndArray ? new IntPair(height, width) : throw NotAPair();
        }

        throw NotAPair();
    }

    public override void Write(Utf8JsonWriter writer, IntPair value, JsonSerializerOptions options)
    {
        if (value.IsSquare)
        {
            writer.WriteNumberValue(value.Height);
            return;
        }

        writer.WriteStartArray();
        writer.WriteNumberValue(value.Height);
        writer.WriteNumberValue(value.Width);
        writer.WriteEndArray();
    }

    private static JsonException NotAPair() => new("expected an integer or [height, width]");
}

internal sealed class PaddingJsonConverter : JsonConverter<Padding>
{
    private static readonly IntPairJsonConverter s_pair = new();

    public override Padding Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.TokenType == JsonTokenType.String && reader.ValueTextEquals("same")
            ? Padding.SameAsInput
            : s_pair.Read(ref reader, typeof(IntPair), options);

    public override void Write(Utf8JsonWriter writer, Padding value, JsonSerializerOptions options)
    {
        if (value.Same)
        {
            writer.WriteStringValue("same");
            return;
        }

        s_pair.Write(writer, value.Size, options);
    }
}
