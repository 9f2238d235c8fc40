using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using TrainingService.Api.Tests.Jobs;
using TrainingService.Contracts.Access;

namespace TrainingService.Api.Tests.Access;

/// <summary>Who calls, in the isolation matrix.</summary>
public enum Identity
{
    /// <summary>User A, whose records every row names.</summary>
    Owner,

    /// <summary>User B.</summary>
    Other,

    Admin,

    /// <summary>No Authorization header.</summary>
    Anonymous,

    /// <summary>A key of A's, revoked.</summary>
    Revoked,

    /// <summary>A share link of A's first job.</summary>
    Viewer,
}

/// <summary>
/// One service and A's records in it, shared by the matrix's cases: users A and B, a revoked key of A's, A's dataset
/// and saved model, two jobs of A's trained to Succeeded (with a conv2d layer, so they have pictures) and a share link
/// of the first. Rows that destroy something make their own (<see cref="NewDatasetAsync"/> and the like).
/// </summary>
public sealed class IsolationWorld : IAsyncLifetime
{
    public static readonly Identity[] Identities = Enum.GetValues<Identity>();

    private readonly Dictionary<Identity, HttpClient> _clients = [];
    private readonly Dictionary<Identity, string?> _tokens = [];

    public TrainingServiceFactory Factory { get; } = new();

    public string OwnerId { get; private set; } = "";

    public Guid OwnerKeyId { get; private set; }

    public Guid RevokedKeyId { get; private set; }

    public Guid Dataset { get; private set; }

    public Guid Model { get; private set; }

    /// <summary>A's job that the viewer's share link watches.</summary>
    public Guid Job { get; private set; }

    /// <summary>The last seq of <see cref="Job"/>'s history.</summary>
    public long JobLastSeq { get; private set; }

    /// <summary>Another job of A's, not shared.</summary>
    public Guid UnsharedJob { get; private set; }

    public HttpClient Client(Identity identity) => _clients[identity];

    /// <summary>The token the identity signs in with; null for anonymous.</summary>
    public string? Token(Identity identity) => _tokens[identity];

    public async Task InitializeAsync()
    {
        _tokens[Identity.Admin] = TrainingServiceFactory.AdminKey;
        _tokens[Identity.Anonymous] = null;
        AddClient(Identity.Admin);
        AddClient(Identity.Anonymous);
        HttpClient admin = Client(Identity.Admin);

        CreatedUser owner = await CreateAsync<CreatedUser>(admin, "/users", new CreateUserRequest("owner", "user"));
        CreatedUser other = await CreateAsync<CreatedUser>(admin, "/users", new CreateUserRequest("other", "user"));
        (OwnerId, OwnerKeyId) = (owner.User.Id, owner.Key.Id);
        _tokens[Identity.Owner] = owner.Key.Secret;
        _tokens[Identity.Other] = other.Key.Secret;
        AddClient(Identity.Owner);
        AddClient(Identity.Other);
        HttpClient a = Client(Identity.Owner);

        CreatedKey revoked = await CreateAsync<CreatedKey>(a, "/keys", new CreateKeyRequest("revoked", null));
        Assert.Equal(HttpStatusCode.NoContent, (await a.DeleteAsync(new Uri($"/keys/{revoked.Id}", UriKind.Relative))).StatusCode);
        RevokedKeyId = revoked.Id;
        _tokens[Identity.Revoked] = revoked.Secret;
        AddClient(Identity.Revoked);

        Dataset = await JobHarness.CreateShapesAsync(a);
        await JobHarness.CreateShapesAsync(Client(Identity.Other), samples: 64); // every account has a newest dataset of its own
        await JobHarness.CreateShapesAsync(admin, samples: 64);
        Model = (await CreateAsync<JsonElement>(a, "/models", new { name = "tiny", spec = JsonDocument.Parse(JobHarness.TinySpec).RootElement }))
            .GetProperty("id").GetGuid();
        Job = await StartJobAsync();
        UnsharedJob = await StartJobAsync();
        JobLastSeq = (await JobHarness.WaitForStateAsync(a, Job, "Succeeded")).GetProperty("lastSeq").GetInt64();
        await JobHarness.WaitForStateAsync(a, UnsharedJob, "Succeeded");

        CreatedShare share = await CreateAsync<CreatedShare>(a, $"/jobs/{Job}/shares", new CreateShareRequest(null));
        _tokens[Identity.Viewer] = share.Token;
        AddClient(Identity.Viewer);
    }

    /// <summary>A new job of A's on A's dataset; it trains for a moment.</summary>
    public async Task<Guid> StartJobAsync()
    {
        (HttpResponseMessage response, JsonElement job) = await JobHarness.PostJobAsync(Client(Identity.Owner), JobBody(Dataset));
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        return job.GetProperty("id").GetGuid();
    }

    public static string JobBody(Guid dataset) =>
        $$"""{ "datasetId": "{{dataset}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 1 } }""";

    public Task<Guid> NewDatasetAsync() => JobHarness.CreateShapesAsync(Client(Identity.Owner), samples: 64);

    public async Task<Guid> NewKeyAsync() =>
        (await CreateAsync<CreatedKey>(Client(Identity.Owner), "/keys", new CreateKeyRequest("spare", null))).Id;

    public async Task<Guid> NewShareAsync() =>
        (await CreateAsync<CreatedShare>(Client(Identity.Owner), $"/jobs/{Job}/shares", new CreateShareRequest(1))).Id;

    public async Task<string> NewUserAsync() =>
        (await CreateAsync<CreatedUser>(Client(Identity.Admin), "/users", new CreateUserRequest(UniqueName("spare"), "user"))).User.Id;

    /// <summary>The path with its placeholders filled in: A's records ({job}), or a fresh one for this request ({newKey}).</summary>
    public async Task<string> ResolveAsync(string path)
    {
        var text = new StringBuilder(path);
        (string Name, Func<Task<string>> Value)[] placeholders =
        [
            ("{ownerId}", () => Task.FromResult(OwnerId)),
            ("{dataset}", () => Task.FromResult(Dataset.ToString())),
            ("{model}", () => Task.FromResult(Model.ToString())),
            ("{job}", () => Task.FromResult(Job.ToString())),
            ("{unsharedJob}", () => Task.FromResult(UnsharedJob.ToString())),
            ("{newDataset}", async () => (await NewDatasetAsync()).ToString()),
            ("{newKey}", async () => (await NewKeyAsync()).ToString()),
            ("{newShare}", async () => (await NewShareAsync()).ToString()),
            ("{newUser}", NewUserAsync),
        ];
        foreach ((string name, Func<Task<string>> value) in placeholders)
        {
            if (path.Contains(name, StringComparison.Ordinal))
            {
                text.Replace(name, await value());
            }
        }

        string resolved = text.ToString();
        Assert.False(resolved.Contains('{', StringComparison.Ordinal), $"{path} has a placeholder the world does not know");
        return resolved;
    }

    public static string UniqueName(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..20];

    public async Task DisposeAsync()
    {
        foreach (HttpClient client in _clients.Values)
        {
            client.Dispose();
        }

        await Factory.DisposeAsync();
    }

    private void AddClient(Identity identity)
    {
        HttpClient client = Factory.CreateClient();
        client.DefaultRequestHeaders.Authorization = _tokens[identity] is { } token ? new AuthenticationHeaderValue("Bearer", token) : null;
        _clients[identity] = client;
    }

    private static async Task<T> CreateAsync<T>(HttpClient client, string path, object body)
    {
        using HttpResponseMessage response = await client.PostAsJsonAsync(path, body);
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"POST {path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        return (await response.Content.ReadFromJsonAsync<T>(JobHarness.Json))!;
    }
}
