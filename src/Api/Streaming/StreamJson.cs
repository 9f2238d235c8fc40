using System.Text.Json;
using System.Text.Json.Serialization;

namespace TrainingService.Api.Streaming;

/// <summary>The JSON of the stream and the history: camelCase, enums as strings, unset fields left out, NaN allowed.</summary>
public static class StreamJson
{
    public static JsonSerializerOptions Options { get; } = Configure(new JsonSerializerOptions());

    public static JsonSerializerOptions Configure(JsonSerializerOptions options)
    {
        options.PropertyNamingPolicy = JsonNamingPolicy.CamelCase;
        options.DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull;
        options.NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals;
        options.Converters.Add(new JsonStringEnumConverter());
        return options;
    }
}
