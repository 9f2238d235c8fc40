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

    /// <summary>A's records, as the rows name them.</summary>
    public Records A { get; private set; } = Records.Phantom();

    /// <summary>The last seq of A's shared job's history.</summary>
    public long JobLastSeq { get; private set; }

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
        _tokens[Identity.Owner] = owner.Key.Secret;
        _tokens[Identity.Other] = other.Key.Secret;
        AddClient(Identity.Owner);
        AddClient(Identity.Other);
        HttpClient a = Client(Identity.Owner);

        CreatedKey revoked = await CreateAsync<CreatedKey>(a, "/keys", new CreateKeyRequest("revoked", null));
        Assert.Equal(HttpStatusCode.NoContent, (await a.DeleteAsync(new Uri($"/keys/{revoked.Id}", UriKind.Relative))).StatusCode);
        _tokens[Identity.Revoked] = revoked.Secret;
        AddClient(Identity.Revoked);

        Guid dataset = await JobHarness.CreateShapesAsync(a);
        await JobHarness.CreateShapesAsync(Client(Identity.Other), samples: 64); // every account has a newest dataset of its own
        await JobHarness.CreateShapesAsync(admin, samples: 64);
        Guid model = (await CreateAsync<JsonElement>(a, "/models", new { name = "tiny", spec = JsonDocument.Parse(JobHarness.TinySpec).RootElement }))
            .GetProperty("id").GetGuid();
        Guid job = await StartJobAsync(dataset);
        Guid unsharedJob = await StartJobAsync(dataset);
        JobLastSeq = (await JobHarness.WaitForStateAsync(a, job, "Succeeded")).GetProperty("lastSeq").GetInt64();
        await JobHarness.WaitForStateAsync(a, unsharedJob, "Succeeded");
        (HttpResponseMessage created, JsonElement sweep) = await Sweeps.SweepTests.PostAsync(a, SweepBody(dataset));
        Assert.Equal(HttpStatusCode.Accepted, created.StatusCode);
        JsonElement ended = await Sweeps.SweepTests.WaitForSweepAsync(a, sweep.GetProperty("id").GetGuid(), "Succeeded");
        A = new Records(owner.User.Id, owner.Key.Id, revoked.Id, dataset, model, job, unsharedJob,
            ended.GetProperty("id").GetGuid(), ended.GetProperty("trialList")[0].GetProperty("jobId").GetGuid());

        CreatedShare share = await CreateAsync<CreatedShare>(a, $"/jobs/{job}/shares", new CreateShareRequest(null));
        _tokens[Identity.Viewer] = share.Token;
        AddClient(Identity.Viewer);
    }

    private async Task<Guid> StartJobAsync(Guid dataset)
    {
        (HttpResponseMessage response, JsonElement job) = await JobHarness.PostJobAsync(Client(Identity.Owner), JobBody(dataset));
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        return job.GetProperty("id").GetGuid();
    }

    /// <summary>A tiny job's body, on the dataset given.</summary>
    public static string JobBody(Guid dataset) =>
        $$"""{ "datasetId": "{{dataset}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 1 } }""";

    /// <summary>A one-trial sweep's body, on the dataset given.</summary>
    public static string SweepBody(Guid dataset) =>
        $$"""{ "base": {{JobBody(dataset)}}, "searchSpace": [ { "path": "hyperparameters.learningRate", "choice": [0.01] } ], "parallelism": 1 }""";

    public Task<Guid> NewDatasetAsync() => JobHarness.CreateShapesAsync(Client(Identity.Owner), samples: 64);

    /// <summary>A job of A's trained to Succeeded, to be deleted.</summary>
    public async Task<Guid> NewJobAsync()
    {
        Guid job = await StartJobAsync(A.Dataset);
        await JobHarness.WaitForStateAsync(Client(Identity.Owner), job, "Succeeded");
        return job;
    }

    public async Task<Guid> NewKeyAsync() =>
        (await CreateAsync<CreatedKey>(Client(Identity.Owner), "/keys", new CreateKeyRequest("spare", null))).Id;

    public async Task<Guid> NewShareAsync() =>
        (await CreateAsync<CreatedShare>(Client(Identity.Owner), $"/jobs/{A.Job}/shares", new CreateShareRequest(1))).Id;

    public async Task<string> NewUserAsync() =>
        (await CreateAsync<CreatedUser>(Client(Identity.Admin), "/users", new CreateUserRequest(UniqueName("spare"), "user"))).User.Id;

    /// <summary>
    /// The path with its placeholders filled in from the records given: {job} and the like, or a fresh record of A's
    /// made for this request ({newKey} and the like; for phantom records, an id that names nothing).
    /// </summary>
    public async Task<string> ResolveAsync(string path, Records records)
    {
        var text = new StringBuilder(path);
        (string Name, Func<Task<string>> Value)[] placeholders =
        [
            ("{ownerId}", () => Task.FromResult(records.OwnerId)),
            ("{dataset}", () => Task.FromResult(records.Dataset.ToString())),
            ("{model}", () => Task.FromResult(records.Model.ToString())),
            ("{job}", () => Task.FromResult(records.Job.ToString())),
            ("{unsharedJob}", () => Task.FromResult(records.UnsharedJob.ToString())),
            ("{sweep}", () => Task.FromResult(records.Sweep.ToString())),
            ("{newDataset}", async () => (records.IsPhantom ? Guid.NewGuid() : await NewDatasetAsync()).ToString()),
            ("{newJob}", async () => (records.IsPhantom ? Guid.NewGuid() : await NewJobAsync()).ToString()),
            ("{newKey}", async () => (records.IsPhantom ? Guid.NewGuid() : await NewKeyAsync()).ToString()),
            ("{newShare}", async () => (records.IsPhantom ? Guid.NewGuid() : await NewShareAsync()).ToString()),
            ("{newUser}", () => records.IsPhantom ? Task.FromResult(Records.Phantom().OwnerId) : NewUserAsync()),
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

/// <summary>
/// The ids a row's request names: A's records, or <see cref="Phantom"/> ones that name nothing — what another user
/// gets for A's must not differ from what anyone gets for those.
/// </summary>
public sealed record Records(string OwnerId, Guid OwnerKeyId, Guid RevokedKeyId, Guid Dataset, Guid Model, Guid Job, Guid UnsharedJob, Guid Sweep, Guid SweepJob)
{
    public bool IsPhantom { get; private init; }

    public static Records Phantom() =>
        new("u" + Guid.CreateVersion7().ToString("N"), Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid())
        {
            IsPhantom = true,
        };
}
