using System.Globalization;
using System.Net;
using System.Reflection;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using TrainingService.Api.Streaming;
using TrainingService.Api.Tests.Jobs;
using TrainingService.Contracts.Training;
using static TrainingService.Api.Tests.Access.Expect;

namespace TrainingService.Api.Tests.Access;

/// <summary>
/// The isolation matrix: every route and every hub method, each called on user A's records by six identities — A
/// (owner), user B (other), the admin, anonymous, A's revoked key, and a share link's viewer of A's job. Another user
/// gets 404, never 403, so nothing says a record exists; the admin reaches everything; a viewer reaches its job's page
/// and nothing else; what another user (or a viewer) gets for A's record is what anyone gets for an id that names
/// nothing. 61 route rows × 6 + 10 hub rows × 6 = 426 cases (plus 4 public endpoints for anonymous).
/// <see cref="EveryEndpointHasARow"/> and <see cref="EveryHubMethodHasARow"/> fail on a route or hub method that the
/// table lacks, so a new one cannot slip in unchecked.
/// </summary>
public sealed class IsolationMatrixTests(IsolationWorld world) : IClassFixture<IsolationWorld>
{
    /// <summary>Endpoints anyone may call: they hold no data.</summary>
    private static readonly string[] s_public = ["/health/live", "/health/ready", "/favicon.svg", "/favicon.ico"];

    /// <summary>The hub's own endpoints (negotiate and the connection), covered by <see cref="s_hub"/>.</summary>
    private static readonly string[] s_hubEndpoints = ["/hubs/training", "/hubs/training/negotiate"];

    // Owner, other, admin, viewer; anonymous and revoked always get 401. {job} and the like are A's records; {new…}
    // a fresh one of A's per request, for rows that destroy what they name.
    private static readonly Row[] s_rows =
    [
        new("GET", "/me", "/me", Ok, Ok, Ok, Ok),
        new("GET", "/metrics", "/metrics", Forbidden, Forbidden, Ok, Forbidden), // every job's figures: an admin's
        new("GET", "/users/", "/users", Forbidden, Forbidden, Ok, Forbidden),
        new("POST", "/users/", "/users", Forbidden, Forbidden, Created, Forbidden)
            { Body = _ => Json(new { name = IsolationWorld.UniqueName("user"), role = "user" }) },
        new("DELETE", "/users/{id}", "/users/{newUser}", Forbidden, Forbidden, NoContent, Forbidden),
        new("GET", "/keys/", "/keys", Listing(Keys), NotListing(Keys), Ok, Forbidden), // an admin's own keys
        new("GET", "/keys/", "/keys?userId={ownerId}", Listing(Keys), Missing("userId"), Listing(Keys), Forbidden) { Case = "A's, by userId" },
        new("POST", "/keys/", "/keys", Created, Created, Created, Forbidden) { Body = _ => Json(new { name = "mine" }) },
        new("POST", "/keys/", "/keys", Created, Missing("userId"), Created, Forbidden)
            { Case = "for A, by userId", Body = r => Json(new { name = "for A", userId = r.OwnerId }) },
        new("DELETE", "/keys/{id:guid}", "/keys/{newKey}", NoContent, NotFound, NoContent, Forbidden),

        new("POST", "/models/validate", "/models/validate", Ok, Ok, Ok, Forbidden) { Body = _ => Text(JobHarness.TinySpec) },
        new("POST", "/models/", "/models", Created, Created, Created, Forbidden)
            { Body = _ => Json(new { name = "tiny", spec = JsonDocument.Parse(JobHarness.TinySpec).RootElement }) },
        new("GET", "/models/", "/models?after={model}", Ok, Invalid("after"), Ok, Forbidden) { Case = "after A's model" },
        new("GET", "/models/", "/models", Listing(r => [r.Model]), NotListing(r => [r.Model]), Listing(r => [r.Model]), Forbidden),
        new("GET", "/models/{id:guid}", "/models/{model}", Ok, NotFound, Ok, Forbidden),
        new("GET", "/models/presets", "/models/presets", Ok, Ok, Ok, Forbidden),

        new("POST", "/datasets/", "/datasets", Created, Created, Created, Forbidden) { Body = _ => CsvUpload() },
        new("POST", "/datasets/builtin", "/datasets/builtin", Created, Created, Created, Forbidden)
            { Body = _ => Json(new { kind = "shapes", classes = 2, samples = 32, testSamples = 8, imageSize = 16, channels = 1 }) },
        new("GET", "/datasets/", "/datasets", Listing(r => [r.Dataset]), NotListing(r => [r.Dataset]), Listing(r => [r.Dataset]), Forbidden),
        new("GET", "/datasets/{id:guid}", "/datasets/{dataset}", Ok, NotFound, Ok, Forbidden),
        new("GET", "/datasets/{id:guid}/samples/{index:int}.png", "/datasets/{dataset}/samples/0.png", Ok, NotFound, Ok, Forbidden),
        new("DELETE", "/datasets/{id:guid}", "/datasets/{newDataset}", NoContent, NotFound, NoContent, Forbidden),

        // Without datasetId a job trains on the caller's own newest dataset (each has one): B's 404 is the model's.
        new("POST", "/jobs/", "/jobs", Accepted, Missing("datasetId"), Accepted, Forbidden)
            { Case = "A's dataset", Body = r => Text(IsolationWorld.JobBody(r.Dataset)) },
        new("POST", "/jobs/", "/jobs", Accepted, Missing("modelId"), Accepted, Forbidden)
            { Case = "A's model", Body = r => Json(new { modelId = r.Model, hyperparameters = new { epochs = 1 } }) },
        new("GET", "/jobs/", "/jobs?after={job}", Ok, Invalid("after"), Ok, Forbidden) { Case = "after A's job" },
        new("GET", "/jobs/", "/jobs", Listing(Jobs), NotListing(Jobs), Listing(Jobs), Forbidden),
        new("GET", "/jobs/{id:guid}", "/jobs/{job}", Ok, NotFound, Ok, Ok),
        new("GET", "/jobs/{id:guid}", "/jobs/{unsharedJob}", Ok, NotFound, Ok, NotFound) { Case = "another job" },
        // A finished job refuses every command with 409: the command reached it.
        new("DELETE", "/jobs/{id:guid}", "/jobs/{newJob}", NoContent, NotFound, NoContent, Forbidden),
        new("POST", "/jobs/{id:guid}/cancel", "/jobs/{job}/cancel", Conflict, NotFound, Conflict, Forbidden),
        new("POST", "/jobs/{id:guid}/pause", "/jobs/{job}/pause", Conflict, NotFound, Conflict, Forbidden),
        new("POST", "/jobs/{id:guid}/resume", "/jobs/{job}/resume", Conflict, NotFound, Conflict, Forbidden),
        new("PATCH", "/jobs/{id:guid}/hyperparameters", "/jobs/{job}/hyperparameters", Conflict, NotFound, Conflict, Forbidden)
            { Body = _ => Json(new { learningRate = 0.01 }) },
        new("POST", "/jobs/{id:guid}/finish", "/jobs/{job}/finish", Conflict, NotFound, Conflict, Forbidden),
        new("GET", "/jobs/{id:guid}/events", "/jobs/{job}/events", Ok, NotFound, Ok, Ok),
        new("GET", "/jobs/{id:guid}/events", "/jobs/{unsharedJob}/events", Ok, NotFound, Ok, NotFound) { Case = "another job" },
        new("GET", "/jobs/compare", "/jobs/compare?ids={job},{unsharedJob}", Ok, NotFound, Ok, Forbidden),
        new("GET", "/jobs/{id:guid}/history", "/jobs/{job}/history?format=tensorboard", Ok, NotFound, Ok, Ok),
        new("GET", "/jobs/{id:guid}/history", "/jobs/{unsharedJob}/history", Ok, NotFound, Ok, NotFound) { Case = "another job" },
        new("GET", "/jobs/{id:guid}/weights", "/jobs/{job}/weights", Ok, NotFound, Ok, Forbidden),
        new("GET", "/jobs/{id:guid}/visuals", "/jobs/{job}/visuals", Ok, NotFound, Ok, Ok),
        new("GET", "/jobs/{id:guid}/visuals", "/jobs/{unsharedJob}/visuals", Ok, NotFound, Ok, NotFound) { Case = "another job" },
        new("GET", "/jobs/{id:guid}/filters/{layer}.png", "/jobs/{job}/filters/conv1.png", Ok, NotFound, Ok, Ok),
        new("GET", "/jobs/{id:guid}/filters/{layer}.png", "/jobs/{unsharedJob}/filters/conv1.png", Ok, NotFound, Ok, NotFound)
            { Case = "another job" },
        new("GET", "/jobs/{id:guid}/featuremaps/{layer}.png", "/jobs/{job}/featuremaps/conv1.png", Ok, NotFound, Ok, Ok),
        new("GET", "/jobs/{id:guid}/featuremaps/{layer}.png", "/jobs/{unsharedJob}/featuremaps/conv1.png", Ok, NotFound, Ok, NotFound)
            { Case = "another job" },
        new("POST", "/jobs/{id:guid}/snapshot", "/jobs/{job}/snapshot", Conflict, NotFound, Conflict, Forbidden),
        new("GET", "/jobs/{id:guid}/export", "/jobs/{job}/export", Ok, NotFound, Ok, Forbidden),
        new("POST", "/jobs/{id:guid}/predict", "/jobs/{job}/predict", Ok, NotFound, Ok, Forbidden)
            { Body = _ => Json(new { images = new[] { new float[16 * 16] } }) },
        new("POST", "/jobs/{id:guid}/shares", "/jobs/{job}/shares", Created, NotFound, Created, Forbidden)
            { Body = _ => Json(new { expiresInHours = 1 }) },
        new("GET", "/jobs/{id:guid}/shares", "/jobs/{job}/shares", Ok, NotFound, Ok, Forbidden),
        new("DELETE", "/jobs/{id:guid}/shares/{shareId:guid}", "/jobs/{job}/shares/{newShare}",
            NoContent, NotFound, NoContent, Forbidden),

        // Sweeps are the account's, like datasets: a share link's viewer sees none.
        new("POST", "/sweeps/", "/sweeps", Accepted, Missing("base.datasetId"), Accepted, Forbidden)
            { Case = "A's dataset", Body = r => Text(IsolationWorld.SweepBody(r.Dataset)) },
        new("POST", "/sweeps/", "/sweeps", Accepted, Missing("base.modelId"), Accepted, Forbidden)
        {
            Case = "A's model",
            Body = r => Json(new { @base = new { modelId = r.Model, hyperparameters = new { epochs = 1 } }, searchSpace = new[] { new { path = "hyperparameters.learningRate", choice = new[] { 0.01 } } }, parallelism = 1 }),
        },
        new("GET", "/sweeps/", "/sweeps", Listing(r => [r.Sweep]), NotListing(r => [r.Sweep]), Listing(r => [r.Sweep]), Forbidden),
        new("GET", "/sweeps/", "/sweeps?after={sweep}", Ok, Invalid("after"), Ok, Forbidden) { Case = "after A's sweep" },
        new("GET", "/sweeps/{id:guid}", "/sweeps/{sweep}", Ok, NotFound, Ok, Forbidden),
        new("GET", "/sweeps/{id:guid}/leaderboard", "/sweeps/{sweep}/leaderboard", Ok, NotFound, Ok, Forbidden),
        new("POST", "/sweeps/{id:guid}/cancel", "/sweeps/{sweep}/cancel", Conflict, NotFound, Conflict, Forbidden),
        new("POST", "/sweeps/{id:guid}/best/model", "/sweeps/{sweep}/best/model", Created, NotFound, Created, Forbidden) { Body = _ => Json(new { name = "best" }) },
        new("GET", "/jobs/", "/jobs?sweepId={sweep}", Listing(r => [r.SweepJob]), Missing("sweepId"), Listing(r => [r.SweepJob]), Forbidden) { Case = "A's sweep's trials" },
    ];

    // Owner, other, admin, viewer, on A's shared job unless said; anonymous and revoked cannot connect.
    // Unsubscribe only ever removes the caller's own subscription, so it completes for any job id, existing, visible
    // or not: its answer cannot tell whether a job exists, and it cannot touch anyone else's stream.
    private static readonly HubRow[] s_hub =
    [
        new(nameof(TrainingHub.Subscribe), r => [r.Job, 0L], HubExpect.Streams, HubExpect.NoJob, HubExpect.Streams, HubExpect.Streams),
        new(nameof(TrainingHub.Subscribe), r => [r.UnsharedJob, 0L], HubExpect.Completes, HubExpect.NoJob, HubExpect.Completes, HubExpect.NoJob)
            { Case = "another job" },
        new(nameof(TrainingHub.SubscribeAfter), r => [r.Job, 0L, 0], HubExpect.Streams, HubExpect.NoJob, HubExpect.Streams, HubExpect.Streams),
        new(nameof(TrainingHub.SubscribeAfter), r => [r.UnsharedJob, 0L, 0], HubExpect.Completes, HubExpect.NoJob, HubExpect.Completes, HubExpect.NoJob)
            { Case = "another job" },
        new(nameof(TrainingHub.Unsubscribe), r => [r.Job], HubExpect.Completes, HubExpect.Completes, HubExpect.Completes, HubExpect.Completes),
        new(nameof(TrainingHub.Pause), r => [r.Job], HubExpect.State, HubExpect.NoJob, HubExpect.State, HubExpect.Refused),
        new(nameof(TrainingHub.Resume), r => [r.Job], HubExpect.State, HubExpect.NoJob, HubExpect.State, HubExpect.Refused),
        new(nameof(TrainingHub.Cancel), r => [r.Job], HubExpect.State, HubExpect.NoJob, HubExpect.State, HubExpect.Refused),
        new(nameof(TrainingHub.ChangeHyperparameters), r => [r.Job, new HyperparameterChange { LearningRate = 0.01 }],
            HubExpect.State, HubExpect.NoJob, HubExpect.State, HubExpect.Refused),
        new(nameof(TrainingHub.Finish), r => [r.Job], HubExpect.State, HubExpect.NoJob, HubExpect.State, HubExpect.Refused),
    ];

    private static Guid[] Keys(Records a) => [a.OwnerKeyId, a.RevokedKeyId];

    private static Guid[] Jobs(Records a) => [a.Job, a.UnsharedJob];

    public static TheoryData<string> Routes => [.. s_rows.Select(r => r.Name)];

    public static TheoryData<string> HubMethods => [.. s_hub.Select(r => r.Name)];

    public static TheoryData<string> PublicEndpoints => [.. s_public];

    [Theory]
    [MemberData(nameof(Routes))]
    public async Task EveryIdentityGetsWhatTheRouteAllowsIt(string route)
    {
        Row row = s_rows.Single(r => r.Name == route);
        var mismatches = new List<(Identity Who, string Expected, string Got)>();
        foreach (Identity identity in IsolationWorld.Identities)
        {
            Expect expected = row.For(identity);
            Answer answer = await SendAsync(row, identity, world.A);
            if (!expected.Holds(world.A, answer.Status, answer.Body))
            {
                mismatches.Add((identity, expected.ToString(), answer.ToString()));
            }
            else if (expected.Hides && await SendAsync(row, identity, Records.Phantom()) is var phantom && !phantom.SameAs(answer))
            {
                mismatches.Add((identity, $"as for ids that name nothing: {phantom}", answer.ToString()));
            }
        }

        Assert.True(mismatches.Count == 0, Table(route, mismatches));
    }

    [Theory]
    [MemberData(nameof(HubMethods))]
    public async Task EveryIdentityGetsWhatTheHubMethodAllowsIt(string method)
    {
        HubRow row = s_hub.Single(r => r.Name == method);
        var mismatches = new List<(Identity Who, string Expected, string Got)>();
        foreach (Identity identity in IsolationWorld.Identities)
        {
            HubExpect expected = row.For(identity);
            (HubExpect? got, string text) = await HubOutcomeAsync(row, identity, expected);
            if (got != expected)
            {
                mismatches.Add((identity, Describe(expected), text));
            }
        }

        Assert.True(mismatches.Count == 0, Table(method, mismatches));
    }

    [Fact]
    public void EveryEndpointHasARow()
    {
        List<(string Method, string Pattern)> endpoints = [.. world.Factory.Services.GetRequiredService<EndpointDataSource>().Endpoints
            .OfType<RouteEndpoint>()
            .SelectMany(e => (e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? ["*"]).Select(m => (m, e.RoutePattern.RawText ?? "")))];
        var rows = s_rows.Select(r => (r.Method, r.Pattern)).ToHashSet();

        string[] missing = [.. endpoints
            .Where(e => !rows.Contains(e) && !s_public.Contains(e.Pattern) && !s_hubEndpoints.Contains(e.Pattern))
            .Select(e => $"{e.Method} {e.Pattern}").Distinct().Order()];
        string[] stale = [.. rows.Where(r => !endpoints.Contains(r)).Select(r => $"{r.Method} {r.Pattern}").Order()];

        Assert.True(missing.Length == 0, "Endpoints without a row in the isolation matrix (add one to s_rows):\n" + string.Join("\n", missing));
        Assert.True(stale.Length == 0, "Rows of the isolation matrix naming no endpoint:\n" + string.Join("\n", stale));
        Assert.All(s_public.Concat(s_hubEndpoints), p => Assert.Contains(p, endpoints.Select(e => e.Pattern)));
    }

    [Fact]
    public void EveryHubMethodHasARow()
    {
        string[] methods = [.. typeof(TrainingHub).GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly)
            .Where(m => !m.IsSpecialName && m.GetBaseDefinition().DeclaringType == typeof(TrainingHub))
            .Select(m => m.Name).Order()];

        Assert.Equal(methods, s_hub.Select(r => r.Method).Distinct().Order());
    }

    [Theory]
    [MemberData(nameof(PublicEndpoints))]
    public async Task PublicEndpointsAnswerAnyone(string path)
    {
        using HttpResponseMessage response = await world.Client(Identity.Anonymous).GetAsync(new Uri(path, UriKind.Relative));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    private async Task<Answer> SendAsync(Row row, Identity identity, Records records)
    {
        using var request = new HttpRequestMessage(new HttpMethod(row.Method), new Uri(await world.ResolveAsync(row.Path, records), UriKind.Relative))
        {
            Content = row.Body?.Invoke(records),
        };
        using HttpResponseMessage response = await world.Client(identity).SendAsync(request);
        byte[] content = await response.Content.ReadAsByteArrayAsync();
        string? mediaType = response.Content.Headers.ContentType?.MediaType;
        bool text = mediaType is null or "text/plain" || mediaType.EndsWith("json", StringComparison.Ordinal);
        return new Answer(response.StatusCode, text ? Encoding.UTF8.GetString(content) : "", mediaType, content.Length);
    }

    /// <summary>What happened, as the expectation it meets (null: none) and in words.</summary>
    private async Task<(HubExpect? Kind, string Text)> HubOutcomeAsync(HubRow row, Identity identity, HubExpect expected)
    {
        await using HubConnection hub = JobHarness.Hub(world.Factory, world.Token(identity));
        var received = new StreamRecorder(hub);
        try
        {
            await hub.StartAsync();
        }
        catch (HttpRequestException ex) when (ex.StatusCode is { } status)
        {
            return (status == HttpStatusCode.Unauthorized ? HubExpect.Unauthorized : null, $"{(int)status} at negotiate");
        }

        try
        {
            await hub.InvokeCoreAsync(row.Method, row.Arguments(world.A));
        }
        catch (HubException ex)
        {
            // The client wraps the server's message: "An unexpected error occurred invoking 'Pause' on the server. HubException: …".
            string message = ex.Message.Split("HubException: ", 2) is [_, var sent] ? sent : ex.Message;
            HubExpect? kind = message.StartsWith("id: There is no job", StringComparison.Ordinal) ? HubExpect.NoJob
                : message.StartsWith("state:", StringComparison.Ordinal) ? HubExpect.State
                : message.StartsWith("id:", StringComparison.Ordinal) ? null
                : HubExpect.Refused;
            return (kind, $"HubException \"{Shorten(message)}\"");
        }

        if (expected != HubExpect.Streams)
        {
            return (HubExpect.Completes, "completes");
        }

        for (DateTime deadline = DateTime.UtcNow.AddSeconds(30); DateTime.UtcNow < deadline && received.Events.Count < world.JobLastSeq;)
        {
            await Task.Delay(20);
        }

        List<long> seqs = [.. received.Events.Select(e => e.Seq)];
        return (seqs.SequenceEqual(Enumerable.Range(1, (int)world.JobLastSeq).Select(s => (long)s)) ? HubExpect.Streams : null,
            $"{seqs.Count} events, seqs {Shorten(string.Join(",", seqs))}");
    }

    private string Describe(HubExpect expected) => expected switch
    {
        HubExpect.Unauthorized => "401 at negotiate",
        HubExpect.Streams => $"events 1..{world.JobLastSeq} (the job's whole history)",
        HubExpect.Completes => "completes",
        HubExpect.NoJob => "HubException \"id: There is no job …\"",
        HubExpect.State => "HubException \"state: …\" (reached the job)",
        HubExpect.Refused => "HubException, not \"state:\" nor \"id:\" (refused before the job is looked at)",
        _ => throw new ArgumentOutOfRangeException(nameof(expected)),
    };

    private static string Table(string name, List<(Identity Who, string Expected, string Got)> mismatches)
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"{name}: {mismatches.Count} of {IsolationWorld.Identities.Length} identities got what they should not");
        text.AppendLine(CultureInfo.InvariantCulture, $"{"identity",-10} | {"expected",-40} | got");
        foreach ((Identity who, string expected, string got) in mismatches)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"{who,-10} | {expected,-40} | {got}");
        }

        return text.ToString();
    }

    private static string Shorten(string text) => text.Length <= 160 ? text : text[..160] + "…";

    private static StringContent Json(object body) => new(JsonSerializer.Serialize(body, JobHarness.Json), Encoding.UTF8, "application/json");

    private static StringContent Text(string json) => new(json, Encoding.UTF8, "application/json");

    /// <summary>Six 1×2×2 images of two classes, as CSV: the smallest upload there is.</summary>
    private static MultipartFormDataContent CsvUpload() => new()
    {
        { new StringContent("tiny"), "name" },
        { new StringContent("csv"), "format" },
        { new StringContent("1"), "channels" },
        { new StringContent("2"), "height" },
        { new StringContent("2"), "width" },
        { new ByteArrayContent("0,1,2,3,4\n1,5,6,7,8\n0,9,10,11,12\n1,13,14,15,16\n0,17,18,19,20\n1,21,22,23,24\n"u8.ToArray()), "images", "train.csv" },
    };
}

/// <summary>
/// One row of the matrix: an endpoint (method and route pattern, as the app maps it), the request against A's
/// records (<see cref="Path"/>'s placeholders filled in by the world), and what each identity must get.
/// </summary>
public sealed record Row(string Method, string Pattern, string Path, Expect Owner, Expect Other, Expect Admin, Expect Viewer)
{
    /// <summary>Which of a pattern's rows this is, when it has several.</summary>
    public string? Case { get; init; }

    public Func<Records, HttpContent>? Body { get; init; }

    public string Name => Case is null ? $"{Method} {Pattern}" : $"{Method} {Pattern} ({Case})";

    public Expect For(Identity identity) => identity switch
    {
        Identity.Owner => Owner,
        Identity.Other => Other,
        Identity.Admin => Admin,
        Identity.Viewer => Viewer,
        _ => Unauthorized,
    };
}

/// <summary>
/// What an identity must get from a route: a status, and for lists whether A's records are in it. One that
/// <see cref="Hides"/> A's records must also be the answer for ids that name nothing.
/// </summary>
public sealed class Expect(string text, Func<Records, HttpStatusCode, string, bool> holds, bool hides = false)
{
    public static readonly Expect Ok = Status(HttpStatusCode.OK);
    public static readonly Expect Created = Status(HttpStatusCode.Created);
    public static readonly Expect Accepted = Status(HttpStatusCode.Accepted);
    public static readonly Expect NoContent = Status(HttpStatusCode.NoContent);
    public static readonly Expect Unauthorized = Status(HttpStatusCode.Unauthorized);
    public static readonly Expect Forbidden = Status(HttpStatusCode.Forbidden);
    public static readonly Expect NotFound = Status(HttpStatusCode.NotFound, hides: true);

    /// <summary>The route reached the record and refused for its state (a finished job's commands).</summary>
    public static readonly Expect Conflict = Status(HttpStatusCode.Conflict);

    /// <summary>404 naming the field whose record the caller may not see.</summary>
    public static Expect Missing(string field) =>
        new($"404 on {field}", (_, status, body) => status == HttpStatusCode.NotFound && FieldOf(body) == field, hides: true);

    /// <summary>400 naming the field: a listing's cursor the caller may not see names nothing.</summary>
    public static Expect Invalid(string field) =>
        new($"400 on {field}", (_, status, body) => status == HttpStatusCode.BadRequest && FieldOf(body) == field, hides: true);

    /// <summary>200, listing every one of A's records given.</summary>
    public static Expect Listing(Func<Records, Guid[]> records) =>
        new("200 with A's", (a, status, body) => status == HttpStatusCode.OK && records(a).All(id => body.Contains(id.ToString(), StringComparison.Ordinal)));

    /// <summary>200, listing none of A's records given.</summary>
    public static Expect NotListing(Func<Records, Guid[]> records) =>
        new("200 without A's", (a, status, body) => status == HttpStatusCode.OK && !records(a).Any(id => body.Contains(id.ToString(), StringComparison.Ordinal)));

    public bool Hides => hides;

    public bool Holds(Records a, HttpStatusCode status, string body) => holds(a, status, body);

    public override string ToString() => text;

    private static Expect Status(HttpStatusCode status, bool hides = false) =>
        new(((int)status).ToString(CultureInfo.InvariantCulture), (_, s, _) => s == status, hides);

    private static string? FieldOf(string body)
    {
        try
        {
            return JsonSerializer.Deserialize<JsonElement>(body) is { ValueKind: JsonValueKind.Object } problem
                && problem.TryGetProperty("field", out JsonElement field) ? field.GetString() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

/// <summary>A response: its status and, when it is text, its body.</summary>
public sealed partial record Answer(HttpStatusCode Status, string Body, string? MediaType, int Length)
{
    /// <summary>The same answer, but for the ids in it (and the trace id): what another user gets for A's record and for none.</summary>
    public bool SameAs(Answer other) => Status == other.Status && MediaType == other.MediaType && Normalized(Body) == Normalized(other.Body);

    /// <summary>The status and a problem's detail, or the body's start, or what the binary body is.</summary>
    public override string ToString()
    {
        string shown = MediaType == "application/problem+json" && JsonSerializer.Deserialize<JsonElement>(Body).TryGetProperty("detail", out JsonElement detail)
            ? $"problem: {detail}"
            : Body.Length == 0 && Length > 0 ? $"<{Length:N0} bytes of {MediaType}>"
            : Body;
        return $"{(int)Status} {(shown.Length <= 200 ? shown : shown[..200] + "…")}";
    }

    private static string Normalized(string body) => TraceId().Replace(Id().Replace(body, "<id>"), "");

    [GeneratedRegex("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\\bu[0-9a-f]{32}\\b", RegexOptions.IgnoreCase)]
    private static partial Regex Id();

    [GeneratedRegex("\"traceId\":\"[^\"]*\"")]
    private static partial Regex TraceId();
}

public enum HubExpect
{
    Unauthorized,

    /// <summary>Subscribe: the job's events arrive, from seq 1 to its last.</summary>
    Streams,

    Completes,

    /// <summary>HubException "id: There is no job …", as for a job that does not exist.</summary>
    NoJob,

    /// <summary>HubException "state: …": the command reached the job, which has ended.</summary>
    State,

    /// <summary>A HubException before the job is looked at: a share link's viewer commands nothing.</summary>
    Refused,
}

/// <summary>One hub method called on A's records, and what each identity must get.</summary>
public sealed record HubRow(string Method, Func<Records, object?[]> Arguments, HubExpect Owner, HubExpect Other, HubExpect Admin, HubExpect Viewer)
{
    public string? Case { get; init; }

    public string Name => Case is null ? Method : $"{Method} ({Case})";

    public HubExpect For(Identity identity) => identity switch
    {
        Identity.Owner => Owner,
        Identity.Other => Other,
        Identity.Admin => Admin,
        Identity.Viewer => Viewer,
        _ => HubExpect.Unauthorized,
    };
}
