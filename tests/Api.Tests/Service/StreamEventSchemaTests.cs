using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace TrainingService.Api.Tests.Service;

/// <summary>The dashboard's wire types (ClientApp/src/types.ts) against the C# ones, as the OpenAPI document describes them.</summary>
public sealed partial class StreamEventSchemaTests
{
    [Theory]
    [InlineData("StreamEvent")]
    [InlineData("JobSummary")]
    [InlineData("ModelSummary")]
    public async Task TheDashboardsTypeHasTheSameFieldsAndTypesAsTheServers(string type)
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        JsonElement document = await client.GetFromJsonAsync<JsonElement>("/swagger/v1/swagger.json");
        JsonElement schemas = document.GetProperty("components").GetProperty("schemas");
        Dictionary<string, string> server = schemas.GetProperty(type).GetProperty("properties").EnumerateObject()
            .ToDictionary(p => p.Name, p => OpenApiType(p.Value, schemas));

        string typesTs = File.ReadAllText(Path.Combine(RepositoryRoot(), "src", "Api", "ClientApp", "src", "types.ts"));
        Dictionary<string, string> aliases = TypeAlias().Matches(typesTs).ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value);
        string body = Regex.Match(typesTs, $@"export interface {type}(?:<\w+>)? \{{([^}}]*)\}}").Groups[1].Value;
        Dictionary<string, string> dashboard = TsField().Matches(body)
            .ToDictionary(m => m.Groups[1].Value, m => TsType(m.Groups[2].Value, aliases));

        Assert.Equal(server.OrderBy(p => p.Key, StringComparer.Ordinal), dashboard.OrderBy(p => p.Key, StringComparer.Ordinal));
    }

    /// <summary>number, string, boolean or T[] — the distinctions a TypeScript reader relies on.</summary>
    private static string OpenApiType(JsonElement schema, JsonElement schemas)
    {
        if (schema.TryGetProperty("$ref", out JsonElement reference))
        {
            JsonElement target = schemas.GetProperty(reference.GetString()!.Split('/')[^1]);
            return target.TryGetProperty("enum", out _) ? "string" : reference.GetString()!.Split('/')[^1];
        }

        if (schema.TryGetProperty("allOf", out JsonElement allOf))
        {
            return OpenApiType(allOf[0], schemas);
        }

        string type = schema.GetProperty("type").ValueKind == JsonValueKind.Array
            ? schema.GetProperty("type").EnumerateArray().Select(t => t.GetString()!).First(t => t != "null")
            : schema.GetProperty("type").GetString()!;
        return type switch
        {
            "integer" or "number" => "number",
            "array" => OpenApiType(schema.GetProperty("items"), schemas) + "[]",
            _ => type,
        };
    }

    private static string TsType(string declared, Dictionary<string, string> aliases)
    {
        string type = string.Join('|', declared.Split('|').Select(t => t.Trim()).Where(t => t != "null"));
        if (aliases.TryGetValue(type, out string? alias))
        {
            return TsType(alias, aliases);
        }

        if (type.Split('|').All(t => t.StartsWith('\'')))
        {
            return "string";
        }

        return type.Split('|').Contains("number") ? "number" : type;
    }

    private static string RepositoryRoot()
    {
        var folder = new DirectoryInfo(AppContext.BaseDirectory);
        while (!File.Exists(Path.Combine(folder.FullName, "TrainingService.sln")))
        {
            folder = folder.Parent ?? throw new DirectoryNotFoundException("TrainingService.sln not found above " + AppContext.BaseDirectory);
        }

        return folder.FullName;
    }

    [GeneratedRegex(@"export type (\w+) = ([^;]+);")]
    private static partial Regex TypeAlias();

    [GeneratedRegex(@"^\s*(\w+)\??:\s*([^;]+);", RegexOptions.Multiline)]
    private static partial Regex TsField();
}
