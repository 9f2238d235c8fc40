using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using TrainingService.Api.Infrastructure;

namespace TrainingService.Api.Tests.Service;

/// <summary>A page on another origin must not drive the service: no upload, no job, no hub connection unless listed.</summary>
public sealed class CrossOriginTests
{
    private const string Evil = "http://evil.example";
    private const string Listed = "http://dash.example";
    private const string Builtin = """{"kind":"shapes","classes":2,"samples":20,"testSamples":10,"imageSize":16,"channels":1,"seed":1}""";

    private static MultipartFormDataContent CsvForm()
    {
        string csv = string.Concat(Enumerable.Range(0, 6).Select(n => $"{n % 2},{string.Join(',', Enumerable.Repeat(n, 4))}\n"));
        return new MultipartFormDataContent
        {
            { new StringContent("digits"), "name" }, { new StringContent("csv"), "format" },
            { new StringContent("1"), "channels" }, { new StringContent("2"), "height" }, { new StringContent("2"), "width" },
            { new ByteArrayContent(Encoding.UTF8.GetBytes(csv)), "images", "train.csv" },
        };
    }

    private static HttpRequestMessage Request(HttpMethod method, string path, string? origin, HttpContent? content = null)
    {
        var request = new HttpRequestMessage(method, path) { Content = content };
        if (origin is not null)
        {
            request.Headers.Add("Origin", origin);
        }

        return request;
    }

    private static async Task AssertRefusedAsync(HttpResponseMessage response)
    {
        JsonElement problem = await ServiceHarness.AssertProblemAsync(response, HttpStatusCode.Forbidden);
        Assert.Contains("Origin", ServiceHarness.FieldsOf(problem));
        Assert.Contains("Cors:AllowedOrigins", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.False(response.Headers.Contains("Access-Control-Allow-Origin"));
    }

    [Fact]
    public async Task AMultipartUploadFromAnotherOriginIsRefusedAndStoresNothing()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory(new() { ["Cors:AllowedOrigins:0"] = Listed });
        using HttpClient client = factory.CreateClient();

        using HttpRequestMessage request = Request(HttpMethod.Post, "/datasets", Evil, CsvForm());
        await AssertRefusedAsync(await client.SendAsync(request));

        Assert.Equal(0, (await client.GetFromJsonAsync<JsonElement>("/datasets")).GetArrayLength());
        string datasets = Path.Combine(factory.DataFolder, "datasets");
        Assert.True(!Directory.Exists(datasets) || !Directory.EnumerateFileSystemEntries(datasets).Any(), "a refused upload left files");
        using HttpResponseMessage same = await client.PostAsync(new Uri("/datasets", UriKind.Relative), CsvForm());
        Assert.Equal(HttpStatusCode.Created, same.StatusCode); // the form itself is fine: only its origin was refused
    }

    [Fact]
    public async Task AJobFromAnotherOriginIsRefused()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();

        using HttpRequestMessage request = Request(HttpMethod.Post, "/jobs", Evil,
            new StringContent("""{"hyperparameters":{"epochs":1}}""", Encoding.UTF8, "text/plain"));
        await AssertRefusedAsync(await client.SendAsync(request));

        Assert.Empty(await ServiceHarness.ListIdsAsync(client, ""));
    }

    [Theory]
    [InlineData(Evil)]
    [InlineData("null")]
    public async Task TheHubsNegotiateFromAnotherOriginIsRefused(string origin)
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory(new() { ["Cors:AllowedOrigins:0"] = Listed });
        using HttpClient client = factory.CreateClient();

        using HttpRequestMessage request = Request(HttpMethod.Post, "/hubs/training/negotiate?negotiateVersion=1", origin);
        await AssertRefusedAsync(await client.SendAsync(request));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("http://localhost")]
    [InlineData(Listed)]
    public async Task WithoutOriginOrFromTheOwnOrAListedOriginStateChangesAreAccepted(string? origin)
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory(new() { ["Cors:AllowedOrigins:0"] = Listed });
        using HttpClient client = factory.CreateClient();

        using HttpRequestMessage builtin = Request(HttpMethod.Post, "/datasets/builtin", origin, new StringContent(Builtin, Encoding.UTF8, "application/json"));
        using HttpResponseMessage created = await client.SendAsync(builtin);
        using HttpRequestMessage negotiate = Request(HttpMethod.Post, "/hubs/training/negotiate?negotiateVersion=1", origin);
        using HttpResponseMessage negotiated = await client.SendAsync(negotiate);

        Assert.True(created.IsSuccessStatusCode, $"POST /datasets/builtin got {(int)created.StatusCode}: {await created.Content.ReadAsStringAsync()}");
        Assert.Equal(HttpStatusCode.OK, negotiated.StatusCode);
    }

    [Fact]
    public async Task AGetFromAnotherOriginIsAnsweredWithoutCorsHeaders()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory(new() { ["Cors:AllowedOrigins:0"] = Listed });
        using HttpClient client = factory.CreateClient();

        using HttpRequestMessage request = Request(HttpMethod.Get, "/jobs", Evil);
        using HttpResponseMessage response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode); // the browser keeps it from the page: no Access-Control-Allow-Origin
        Assert.False(response.Headers.Contains("Access-Control-Allow-Origin"));
    }

    [Theory]
    [InlineData(Evil, HttpStatusCode.Forbidden)]
    [InlineData(null, HttpStatusCode.SwitchingProtocols)]
    [InlineData("own", HttpStatusCode.SwitchingProtocols)]
    public async Task AHubWebSocketFromAnotherOriginIsRefused(string? origin, HttpStatusCode expected)
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        int port = ServiceHarness.FreePort();
        factory.UseKestrel(port);
        factory.StartServer();
        using var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        socket.Options.SetRequestHeader("Authorization", "Bearer " + TrainingServiceFactory.AdminKey);
        if (origin is not null)
        {
            socket.Options.SetRequestHeader("Origin", origin == "own" ? $"http://127.0.0.1:{port}" : origin);
        }

        try
        {
            await socket.ConnectAsync(new Uri($"ws://127.0.0.1:{port}/hubs/training"), CancellationToken.None);
        }
        catch (WebSocketException)
        {
            // refused: the status is in HttpStatusCode
        }

        Assert.Equal(expected, socket.HttpStatusCode);
        if (expected == HttpStatusCode.SwitchingProtocols)
        {
            await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
        }
    }

    [Theory]
    [InlineData("*", false)]
    [InlineData("http://dash.example/app", false)]
    [InlineData("http://user@dash.example", false)]
    [InlineData("dash.example", false)]
    [InlineData("http://dash.example", true)]
    [InlineData("https://dash.example:8443/", true)]
    public void OnlyOriginsMayBeListed(string entry, bool valid) => Assert.Equal(valid, CrossOriginOptions.IsOrigin(entry));
}
