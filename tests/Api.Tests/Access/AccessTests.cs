using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.AspNetCore.TestHost;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using TrainingService.Api.Access;
using TrainingService.Api.Persistence;
using TrainingService.Api.Tests.Jobs;
using TrainingService.Api.Tests.Service;

namespace TrainingService.Api.Tests.Access;

/// <summary>Keys, users, share links and the admin's first key, as a user meets them. Who may reach what: IsolationMatrixTests.</summary>
public sealed class AccessTests
{
    [Fact]
    public async Task TheFirstStartWritesAnAdminKeyOnlyItsUserCanReadAndALaterStartKeepsIt()
    {
        string folder = Directory.CreateTempSubdirectory("trainingservice-tests-").FullName;
        try
        {
            string key;
            await using (var first = new TrainingServiceFactory(new() { ["Auth:AdminKey"] = null }, folder))
            {
                using HttpClient anonymous = first.Server.CreateClient(); // sends no key
                string file = Path.Combine(folder, AdminBootstrap.KeyFileName);
                Assert.True(File.Exists(file));
                if (!OperatingSystem.IsWindows())
                {
                    Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
                }

                key = (await File.ReadAllTextAsync(file)).Trim();
                Assert.StartsWith(ApiKeys.Prefix, key, StringComparison.Ordinal);

                JsonElement me = await GetAsync(anonymous, "/me", key);
                Assert.Equal(("local", "admin", "admin"), (me.GetProperty("id").GetString(), me.GetProperty("name").GetString(), me.GetProperty("role").GetString()));

                // Only the key's SHA-256 is stored.
                TrainingDb db = first.Services.CreateScope().ServiceProvider.GetRequiredService<TrainingDb>();
                ApiKeyRecord stored = await db.ApiKeys.SingleAsync();
                Assert.Equal(ApiKeys.Hash(key), stored.Hash);
                Assert.DoesNotContain(key, JsonSerializer.Serialize(stored), StringComparison.Ordinal);
            }

            await using (var second = new TrainingServiceFactory(new() { ["Auth:AdminKey"] = null }, folder))
            {
                using HttpClient anonymous = second.Server.CreateClient(); // sends no key
                Assert.Equal(key, (await File.ReadAllTextAsync(Path.Combine(folder, AdminBootstrap.KeyFileName))).Trim());
                Assert.Equal("admin", (await GetAsync(anonymous, "/me", key)).GetProperty("role").GetString());
                TrainingDb db = second.Services.CreateScope().ServiceProvider.GetRequiredService<TrainingDb>();
                Assert.Equal(1, await db.ApiKeys.CountAsync());
            }
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task RequestsWithoutAKeyOrWithAWrongOneAre401WithTheReasonAndTheDashboardAndHealthStayOpen()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient anonymous = factory.Server.CreateClient(); // sends no key

        using HttpResponseMessage none = await anonymous.GetAsync(new Uri("/jobs", UriKind.Relative));
        JsonElement problem = await ServiceHarness.AssertProblemAsync(none, HttpStatusCode.Unauthorized);
        Assert.Equal("Authorization", problem.GetProperty("field").GetString());
        Assert.Contains("admin-key", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal("Bearer", none.Headers.WwwAuthenticate.Single().Scheme);

        using var wrong = new HttpRequestMessage(HttpMethod.Get, "/jobs") { Headers = { { "X-Api-Key", "tsk_not-a-key" } } };
        JsonElement refused = await ServiceHarness.AssertProblemAsync(await anonymous.SendAsync(wrong), HttpStatusCode.Unauthorized);
        Assert.Contains("not one this service issued", refused.GetProperty("detail").GetString(), StringComparison.Ordinal);

        using var viaHeader = new HttpRequestMessage(HttpMethod.Get, "/me") { Headers = { { "X-Api-Key", TrainingServiceFactory.AdminKey } } };
        Assert.Equal(HttpStatusCode.OK, (await anonymous.SendAsync(viaHeader)).StatusCode);

        // A key in the query string counts on the hub's paths only (where browsers cannot send headers).
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync(new Uri($"/jobs?access_token={TrainingServiceFactory.AdminKey}", UriKind.Relative))).StatusCode);

        foreach (string open in new[] { "/", "/health/live", "/health/ready", "/favicon.svg", "/swagger/v1/swagger.json" })
        {
            Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync(new Uri(open, UriKind.Relative))).StatusCode);
        }
    }

    [Fact]
    public async Task AKeyIsShownOnceListedByItsPrefixRecordsItsUseAndStopsWorkingWhenRevoked()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient admin = factory.CreateClient();
        using HttpClient anonymous = factory.Server.CreateClient(); // sends no key

        using HttpResponseMessage created = await admin.PostAsJsonAsync("/keys", new { name = "laptop" });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        JsonElement key = await created.Content.ReadFromJsonAsync<JsonElement>();
        string secret = key.GetProperty("secret").GetString()!;
        Assert.Equal(secret[..8], key.GetProperty("prefix").GetString());
        Assert.Equal("laptop", (await GetAsync(anonymous, "/me", secret)).GetProperty("key").GetProperty("name").GetString());

        JsonElement listed = (await admin.GetFromJsonAsync<JsonElement>("/keys")).EnumerateArray().Single(k => k.GetProperty("name").GetString() == "laptop");
        Assert.False(listed.TryGetProperty("secret", out _));
        Assert.DoesNotContain(secret, listed.GetRawText(), StringComparison.Ordinal);
        Assert.NotEqual(JsonValueKind.Null, listed.GetProperty("lastUsedAt").ValueKind);

        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync(new Uri($"/keys/{key.GetProperty("id").GetGuid()}", UriKind.Relative))).StatusCode);
        using var after = new HttpRequestMessage(HttpMethod.Get, "/me") { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", secret) } };
        JsonElement problem = await ServiceHarness.AssertProblemAsync(await anonymous.SendAsync(after), HttpStatusCode.Unauthorized);
        Assert.Contains("(laptop) was revoked at", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AUserSeesOnlyTheirOwnAndANewJobWithoutADatasetIdUsesTheirNewestDatasetNotAnyoneElses()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient admin = factory.CreateClient();
        Guid adminDataset = await JobHarness.CreateShapesAsync(admin, samples: 32);
        (string bobId, string bob) = await CreateUserAsync(admin, "bob");
        using HttpClient asBob = factory.Server.CreateClient(); // sends no key
        asBob.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", bob);

        JsonElement noDataset = await ServiceHarness.AssertProblemAsync(
            await asBob.PostAsJsonAsync("/jobs", new { hyperparameters = new { epochs = 1 } }), HttpStatusCode.NotFound);
        Assert.Contains("There is no dataset yet", noDataset.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, (await asBob.GetAsync(new Uri($"/datasets/{adminDataset}", UriKind.Relative))).StatusCode);
        Assert.Empty(await asBob.GetFromJsonAsync<JsonElement[]>("/datasets") ?? []);

        Guid bobDataset = await JobHarness.CreateShapesAsync(asBob, samples: 32);
        (HttpResponseMessage response, JsonElement job) = await JobHarness.PostJobAsync(asBob, """{ "hyperparameters": { "epochs": 1 } }""");
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Equal(bobDataset, job.GetProperty("datasetId").GetGuid());

        // The admin sees bob's job and dataset; bob's records carry his id.
        Assert.Contains(job.GetProperty("id").GetGuid(), await ServiceHarness.ListIdsAsync(admin, ""));
        TrainingDb db = factory.Services.CreateScope().ServiceProvider.GetRequiredService<TrainingDb>();
        Assert.Equal(bobId, (await db.Jobs.SingleAsync(j => j.Id == job.GetProperty("id").GetGuid())).Owner);
    }

    [Fact]
    public async Task RemovingAUserStopsTheirKeysAndOnlyAnAdminManagesUsers()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient admin = factory.CreateClient();
        (string id, string key) = await CreateUserAsync(admin, "carol");
        using HttpClient asCarol = factory.Server.CreateClient(); // sends no key
        asCarol.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);

        JsonElement forbidden = await ServiceHarness.AssertProblemAsync(await asCarol.PostAsJsonAsync("/users", new { name = "mallory", role = "admin" }), HttpStatusCode.Forbidden);
        Assert.Contains("admin role", forbidden.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Conflict, (await admin.PostAsJsonAsync("/users", new { name = "carol" })).StatusCode);
        JsonElement badRole = await ServiceHarness.AssertProblemAsync(await admin.PostAsJsonAsync("/users", new { name = "dave", role = "root" }), HttpStatusCode.BadRequest);
        Assert.Contains("role", ServiceHarness.FieldsOf(badRole));
        JsonElement self = await ServiceHarness.AssertProblemAsync(await admin.DeleteAsync(new Uri("/users/local", UriKind.Relative)), HttpStatusCode.Conflict);
        Assert.Contains("cannot remove yourself", self.GetProperty("detail").GetString(), StringComparison.Ordinal);

        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync(new Uri($"/users/{id}", UriKind.Relative))).StatusCode);
        JsonElement removed = await ServiceHarness.AssertProblemAsync(await asCarol.GetAsync(new Uri("/me", UriKind.Relative)), HttpStatusCode.Unauthorized);
        Assert.Contains("carol was removed", removed.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AShareLinkWatchesItsJobUntilItExpiresOrIsRevokedAndNothingElse()
    {
        var clock = new ShiftedClock();
        await using TrainingServiceFactory baseFactory = ServiceHarness.Factory(new() { ["Auth:MaxSharesPerJob"] = "2" });
        await using var factory = baseFactory.WithWebHostBuilder(b => b.ConfigureTestServices(s => s.AddSingleton<TimeProvider>(clock)));
        using HttpClient admin = factory.CreateClient();
        admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", TrainingServiceFactory.AdminKey);
        await JobHarness.CreateShapesAsync(admin, samples: 32);
        (_, JsonElement job) = await JobHarness.PostJobAsync(admin, """{ "hyperparameters": { "epochs": 1, "batchSize": 16 } }""");
        Guid jobId = job.GetProperty("id").GetGuid();

        JsonElement tooLong = await ServiceHarness.AssertProblemAsync(
            await admin.PostAsJsonAsync($"/jobs/{jobId}/shares", new { expiresInHours = 721 }), HttpStatusCode.BadRequest);
        Assert.Contains("expiresInHours", ServiceHarness.FieldsOf(tooLong));

        JsonElement share = await (await admin.PostAsJsonAsync($"/jobs/{jobId}/shares", new { expiresInHours = 2 })).Content.ReadFromJsonAsync<JsonElement>();
        string token = share.GetProperty("token").GetString()!;
        Assert.StartsWith(ApiKeys.SharePrefix, token, StringComparison.Ordinal);
        Assert.EndsWith($"/#/jobs/{jobId}?share={token}", share.GetProperty("url").GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain(token, (await admin.GetStringAsync(new Uri($"/jobs/{jobId}/shares", UriKind.Relative))), StringComparison.Ordinal);

        using HttpClient viewer = factory.Server.CreateClient(); // sends no key
        viewer.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        Assert.Equal(HttpStatusCode.OK, (await viewer.GetAsync(new Uri($"/jobs/{jobId}", UriKind.Relative))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await viewer.GetAsync(new Uri($"/jobs/{jobId}/events", UriKind.Relative))).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await viewer.GetAsync(new Uri($"/jobs/{jobId}/export", UriKind.Relative))).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await viewer.PostAsync(new Uri($"/jobs/{jobId}/cancel", UriKind.Relative), null)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await viewer.PostAsJsonAsync($"/jobs/{jobId}/shares", new { })).StatusCode);

        // A signed token cannot be altered into another, not even in the spare bits of its last character. (The endings
        // skip the token's own: one token in 4,096 ends in "AA", and "altering" it so was once a flaky pass in CI.)
        string[] endings = ["AA", "AB", "BA"];
        foreach (string ending in endings.Where(e => !token.EndsWith(e, StringComparison.Ordinal)).Take(2))
        {
            using var altered = new HttpRequestMessage(HttpMethod.Get, $"/jobs/{jobId}") { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", token[..^2] + ending) } };
            Assert.Equal(HttpStatusCode.Unauthorized, (await viewer.SendAsync(altered)).StatusCode);
        }

        // The same bytes spelt differently: the lowest bit of the last character is spare when the payload's length is
        // not a multiple of four (base64url without padding); a lenient decoder would read the same bytes.
        const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        char spare = Alphabet[Alphabet.IndexOf(token[^1], StringComparison.Ordinal) ^ 1];
        Assert.NotEqual(0, (token.Length - ApiKeys.SharePrefix.Length) % 4); // so the line below tests something
        using var respelled = new HttpRequestMessage(HttpMethod.Get, $"/jobs/{jobId}") { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", token[..^1] + spare) } };
        Assert.Equal(HttpStatusCode.Unauthorized, (await viewer.SendAsync(respelled)).StatusCode);

        // At most MaxSharesPerJob at once.
        JsonElement second = await (await admin.PostAsJsonAsync($"/jobs/{jobId}/shares", new { expiresInHours = 1 })).Content.ReadFromJsonAsync<JsonElement>();
        JsonElement third = await ServiceHarness.AssertProblemAsync(await admin.PostAsJsonAsync($"/jobs/{jobId}/shares", new { }), HttpStatusCode.UnprocessableEntity);
        Assert.Equal("Auth:MaxSharesPerJob", third.GetProperty("limit").GetString());

        // Revoked: refused at once.
        using var revokedViewer = new HttpRequestMessage(HttpMethod.Get, $"/jobs/{jobId}")
        {
            Headers = { Authorization = new AuthenticationHeaderValue("Bearer", second.GetProperty("token").GetString()) },
        };
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync(new Uri($"/jobs/{jobId}/shares/{second.GetProperty("id").GetGuid()}", UriKind.Relative))).StatusCode);
        JsonElement revoked = await ServiceHarness.AssertProblemAsync(await viewer.SendAsync(revokedViewer), HttpStatusCode.Unauthorized);
        Assert.Contains("revoked", revoked.GetProperty("detail").GetString(), StringComparison.Ordinal);

        // Expired: refused, saying when.
        clock.Shift = TimeSpan.FromHours(2) + TimeSpan.FromSeconds(1);
        JsonElement expired = await ServiceHarness.AssertProblemAsync(await viewer.GetAsync(new Uri($"/jobs/{jobId}", UriKind.Relative)), HttpStatusCode.Unauthorized);
        Assert.Contains("expired at", expired.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task RevokingAShareLinkOrAKeyClosesTheHubConnectionsOpenWithIt()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient admin = factory.CreateClient();
        await JobHarness.CreateShapesAsync(admin, samples: 32);
        (_, JsonElement job) = await JobHarness.PostJobAsync(admin, """{ "hyperparameters": { "epochs": 1, "batchSize": 16 } }""");
        Guid jobId = job.GetProperty("id").GetGuid();
        JsonElement share = await (await admin.PostAsJsonAsync($"/jobs/{jobId}/shares", new { })).Content.ReadFromJsonAsync<JsonElement>();
        JsonElement key = await (await admin.PostAsJsonAsync("/keys", new { name = "phone" })).Content.ReadFromJsonAsync<JsonElement>();

        await using HubConnection viewer = Hub(factory, share.GetProperty("token").GetString()!);
        await using HubConnection phone = Hub(factory, key.GetProperty("secret").GetString()!);
        await using HubConnection other = Hub(factory, TrainingServiceFactory.AdminKey);
        var viewerClosed = new TaskCompletionSource();
        var phoneClosed = new TaskCompletionSource();
        viewer.Closed += _ => { viewerClosed.TrySetResult(); return Task.CompletedTask; };
        phone.Closed += _ => { phoneClosed.TrySetResult(); return Task.CompletedTask; };
        foreach (HubConnection connection in new[] { viewer, phone, other })
        {
            await connection.StartAsync();
            await connection.InvokeAsync("Subscribe", jobId, 0L);
        }

        await admin.DeleteAsync(new Uri($"/jobs/{jobId}/shares/{share.GetProperty("id").GetGuid()}", UriKind.Relative));
        await viewerClosed.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(HubConnectionState.Connected, phone.State);

        await admin.DeleteAsync(new Uri($"/keys/{key.GetProperty("id").GetGuid()}", UriKind.Relative));
        await phoneClosed.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(HubConnectionState.Connected, other.State);
    }

    private static HubConnection Hub(TrainingServiceFactory factory, string token) => new HubConnectionBuilder()
        .WithUrl(new Uri(factory.Server.BaseAddress, "/hubs/training"), o =>
        {
            o.Transports = Microsoft.AspNetCore.Http.Connections.HttpTransportType.LongPolling;
            o.HttpMessageHandlerFactory = _ => factory.Server.CreateHandler();
            o.AccessTokenProvider = () => Task.FromResult<string?>(token);
        })
        .Build();

    [Theory]
    [InlineData("/keys", """{ "name": 5 }""", "name", "name must be a string")]
    [InlineData("/users", """{ "name": "x", "role": [] }""", "role", "role must be a string")]
    [InlineData("/jobs/00000000-0000-0000-0000-000000000001/shares", """{ "expiresInHours": "x" }""", "expiresInHours", "expiresInHours must be an integer")]
    public async Task AWrongTypeInAnAccessRequestNamesTheFieldAndTheTypeItNeeds(string path, string json, string field, string detail)
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient admin = factory.CreateClient();

        using HttpResponseMessage response = await admin.PostAsync(new Uri(path, UriKind.Relative), new StringContent(json, System.Text.Encoding.UTF8, "application/json"));

        JsonElement problem = await ServiceHarness.AssertProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Equal(field, problem.GetProperty("field").GetString());
        Assert.Equal(detail, problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task OpenModeNeedsNoKeyOnLoopbackButKeepsTheOriginCheck()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory(new() { ["Auth:Mode"] = "Open", ["Auth:AdminKey"] = null });
        int port = ServiceHarness.FreePort();
        factory.UseKestrel(port);
        factory.StartServer();
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };

        JsonElement me = await client.GetFromJsonAsync<JsonElement>("/me");
        Assert.Equal(("admin", "open"), (me.GetProperty("role").GetString(), me.GetProperty("authMode").GetString()));
        Assert.False(File.Exists(Path.Combine(factory.DataFolder, AdminBootstrap.KeyFileName)));

        using var evil = new HttpRequestMessage(HttpMethod.Post, "/datasets/builtin") { Headers = { { "Origin", "http://evil.example" } }, Content = JsonContent.Create(new { }) };
        Assert.Equal(HttpStatusCode.Forbidden, (await client.SendAsync(evil)).StatusCode);
    }

    [Fact]
    public async Task OpenModeListeningBeyondLoopbackStopsTheService()
    {
        int port = ServiceHarness.FreePort();
        var start = new System.Diagnostics.ProcessStartInfo("dotnet",
        [
            Path.Combine(AppContext.BaseDirectory, "TrainingService.Api.dll"), "--urls", $"http://0.0.0.0:{port}", "--Auth:Mode", "Open",
            "--Storage:DataFolder", Directory.CreateTempSubdirectory("trainingservice-tests-").FullName,
        ])
        {
            WorkingDirectory = AppContext.BaseDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = System.Diagnostics.Process.Start(start)!;
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);

        Assert.Equal(2, process.ExitCode);
        Assert.Contains("Auth:Mode=Open is allowed only while the service listens on loopback alone", await output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SwaggerDescribesBothWaysToSendAKeyAndWhichOperationsNeedOne()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient anonymous = factory.Server.CreateClient(); // sends no key
        JsonElement document = await anonymous.GetFromJsonAsync<JsonElement>("/swagger/v1/swagger.json");

        JsonElement schemes = document.GetProperty("components").GetProperty("securitySchemes");
        Assert.Equal("bearer", schemes.GetProperty("Bearer").GetProperty("scheme").GetString());
        Assert.Equal("X-Api-Key", schemes.GetProperty("ApiKeyHeader").GetProperty("name").GetString());
        JsonElement paths = document.GetProperty("paths");
        Assert.Equal(2, paths.GetProperty("/jobs").GetProperty("post").GetProperty("security").GetArrayLength());
        Assert.Equal(2, paths.GetProperty("/jobs/{id}/events").GetProperty("get").GetProperty("security").GetArrayLength());
    }

    private static async Task<JsonElement> GetAsync(HttpClient client, string path, string key)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path) { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", key) } };
        using HttpResponseMessage response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    private static async Task<(string Id, string Key)> CreateUserAsync(HttpClient admin, string name)
    {
        using HttpResponseMessage response = await admin.PostAsJsonAsync("/users", new { name });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        JsonElement created = await response.Content.ReadFromJsonAsync<JsonElement>();
        return (created.GetProperty("user").GetProperty("id").GetString()!, created.GetProperty("key").GetProperty("secret").GetString()!);
    }

    private sealed class ShiftedClock : TimeProvider
    {
        public TimeSpan Shift { get; set; }

        public override DateTimeOffset GetUtcNow() => base.GetUtcNow() + Shift;
    }
}
