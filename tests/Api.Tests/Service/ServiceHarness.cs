using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace TrainingService.Api.Tests.Service;

/// <summary>Hosts and assertions shared by the service-level tests.</summary>
internal static class ServiceHarness
{
    /// <summary>
    /// A host whose jobs train on one intra-op thread: on a small shared machine two spinning native threads make a
    /// tiny step take ~100 ms instead of ~1 ms, and these tests are about the service, not libtorch's thread pool.
    /// </summary>
    public static TrainingServiceFactory Factory(Dictionary<string, string?>? settings = null)
    {
        var all = new Dictionary<string, string?> { ["Jobs:ThreadsPerJob"] = "1" };
        foreach ((string key, string? value) in settings ?? [])
        {
            all[key] = value;
        }

        return new TrainingServiceFactory(all);
    }

    /// <summary>A loopback port free now, for a host on Kestrel (a browser's or a raw socket's tests).</summary>
    public static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public static Task<HttpResponseMessage> PostAsync(HttpClient client, string path) =>
        client.PostAsync(new Uri(path, UriKind.Relative), null);

    /// <summary>The fields a problem names: the keys of a validation problem's errors and its field extension.</summary>
    public static HashSet<string> FieldsOf(JsonElement problem)
    {
        var fields = new HashSet<string>(StringComparer.Ordinal);
        if (problem.TryGetProperty("errors", out JsonElement errors) && errors.ValueKind == JsonValueKind.Object)
        {
            fields.UnionWith(errors.EnumerateObject().Select(e => e.Name));
        }

        if (problem.TryGetProperty("field", out JsonElement field) && field.ValueKind == JsonValueKind.String)
        {
            fields.Add(field.GetString()!);
        }

        return fields;
    }

    /// <summary>Asserts the response is problem details with the status and returns its body.</summary>
    public static async Task<JsonElement> AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status)
    {
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"expected {(int)status}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        JsonElement problem = JsonSerializer.Deserialize<JsonElement>(body);
        Assert.Equal((int)status, problem.GetProperty("status").GetInt32());
        return problem;
    }

    public static async Task<Guid[]> ListIdsAsync(HttpClient client, string query) =>
        [.. (await client.GetFromJsonAsync<JsonElement>($"/jobs{query}")).GetProperty("items").EnumerateArray().Select(j => j.GetProperty("id").GetGuid())];
}
