using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using FsCheck;
using FsCheck.Fluent;
using Microsoft.FSharp.Core;
using TrainingService.Api.Tests.Datasets;
using TrainingService.Api.Tests.Jobs;
using Xunit.Abstractions;

namespace TrainingService.Api.Tests.Service;

/// <summary>
/// A valid spec, mutated (bit flips, truncations, inserted and overwritten bytes, a number made hostile), sent to
/// POST /models/validate and POST /jobs: never a 500, a bounded answer, and nothing stored when refused.
/// Fixed seed and count, as in <see cref="DatasetFuzzTests"/>.
/// </summary>
public sealed class SpecFuzzApiTests(ITestOutputHelper output)
{
    private const int SpecCases = 100, AnswerBytes = 64 * 1024;
    private const ulong Seed = 20261127, Gamma = 0x9E3779B97F4A7C15;

    private static readonly string[] s_hostileNumbers = ["-0", "2147483648", "1e308", "-1", "0", "\"NaN\"", "1e400", "[1,2,3]", "\"\\ud800\""];

    private static readonly Gen<Mutation> s_mutation =
        from kind in Gen.Choose(0, 3)
        from at in Gen.Choose(0, int.MaxValue)
        from value in Gen.Choose(0, 255)
        from length in Gen.Choose(1, 16)
        select new Mutation((MutationKind)kind, at, (byte)value, length);

    private static readonly Gen<SpecMutation> s_case =
        from count in Gen.Choose(0, 2)
        from a in s_mutation
        from b in s_mutation
        from number in Gen.Choose(-1, s_hostileNumbers.Length - 1)
        from at in Gen.Choose(0, int.MaxValue)
        select new SpecMutation(new[] { a, b }[..count], number, at);

    [Fact]
    public async Task AMutatedSpecIsNeverA500AndARefusedOneStoresNothing()
    {
        var statuses = new Dictionary<string, int>();
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        Guid dataset = await JobHarness.CreateShapesAsync(client, classes: 2, samples: 64);
        string models = await client.GetStringAsync(new Uri("/models", UriKind.Relative));
        HashSet<string> jobs = await JobIdsAsync(client);
        foreach (SpecMutation fuzz in Cases())
        {
            byte[] spec = fuzz.Apply(Encoding.UTF8.GetBytes(JobHarness.TinySpec));
            using var validate = new ByteArrayContent(spec);
            validate.Headers.ContentType = new("application/json");
            using HttpResponseMessage validated = await client.PostAsync(new Uri("/models/validate", UriKind.Relative), validate);
            await AnsweredAsync(validated, fuzz, statuses, "validate", HttpStatusCode.OK, HttpStatusCode.BadRequest, HttpStatusCode.RequestEntityTooLarge);

            byte[] body = [.. Encoding.UTF8.GetBytes($$"""{ "datasetId": "{{dataset}}", "hyperparameters": { "epochs": 1 }, "model": """), .. spec, .. "}"u8];
            using var job = new ByteArrayContent(body);
            job.Headers.ContentType = new("application/json");
            using HttpResponseMessage created = await client.PostAsync(new Uri("/jobs", UriKind.Relative), job);
            await AnsweredAsync(created, fuzz, statuses, "jobs", HttpStatusCode.Accepted, HttpStatusCode.BadRequest, HttpStatusCode.RequestEntityTooLarge);
            if (created.StatusCode == HttpStatusCode.Accepted)
            {
                // A mutation that leaves the spec valid trains; stop it, and count it among the stored jobs.
                string id = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString()!;
                using HttpResponseMessage cancelled = await client.PostAsync(new Uri($"/jobs/{id}/cancel", UriKind.Relative), null);
                jobs.Add(id);
            }

            Assert.Equal(jobs, await JobIdsAsync(client));
            Assert.Equal(models, await client.GetStringAsync(new Uri("/models", UriKind.Relative)));
        }

        output.WriteLine($"{SpecCases} specs: {string.Join(", ", statuses.OrderBy(s => s.Key).Select(s => $"{s.Key}: {s.Value}"))}");
        Assert.Equal(2 * SpecCases, statuses.Values.Sum());
    }

    [Fact]
    public async Task AJobWhoseModelHoldsInvalidUtf8IsRefusedNotA500()
    {
        // Found by the mutated specs: an overwritten byte 0xB0 inside a string made GetRawText throw in POST /jobs.
        await using var factory = new TrainingServiceFactory();
        using HttpClient client = factory.CreateClient();
        Guid dataset = await JobHarness.CreateShapesAsync(client, classes: 2, samples: 64);
        byte[] spec = Encoding.UTF8.GetBytes(JobHarness.TinySpec.Replace("conv2d", "conv#d", StringComparison.Ordinal));
        spec[Array.IndexOf(spec, (byte)'#')] = 0xB0;
        byte[] body = [.. Encoding.UTF8.GetBytes($$"""{ "datasetId": "{{dataset}}", "model": """), .. spec, .. "}"u8];
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new("application/json");

        using HttpResponseMessage response = await client.PostAsync(new Uri("/jobs", UriKind.Relative), content);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Empty(await JobIdsAsync(client));
    }

    private static async Task AnsweredAsync(
        HttpResponseMessage response, SpecMutation fuzz, Dictionary<string, int> statuses, string route, params HttpStatusCode[] expected)
    {
        byte[] answer = await response.Content.ReadAsByteArrayAsync();
        Assert.True(expected.Contains(response.StatusCode), $"{fuzz}: {route} answered {(int)response.StatusCode} {Encoding.UTF8.GetString(answer)}");
        Assert.True(answer.Length <= AnswerBytes, $"{fuzz}: {route} answered {answer.Length:N0} bytes");
        string key = $"{route} {(int)response.StatusCode}";
        statuses[key] = statuses.GetValueOrDefault(key) + 1;
    }

    private static async Task<HashSet<string>> JobIdsAsync(HttpClient client)
    {
        JsonElement page = await client.GetFromJsonAsync<JsonElement>(new Uri("/jobs?limit=100", UriKind.Relative));
        return [.. page.GetProperty("items").EnumerateArray().Select(j => j.GetProperty("id").GetString()!)];
    }

    private static List<SpecMutation> Cases()
    {
        var cases = new List<SpecMutation>();
        Config settings = Config.QuickThrowOnFailure.WithMaxTest(SpecCases).WithQuietOnSuccess(true)
            .WithReplay(FSharpOption<Replay>.Some(new Replay(new Rnd(Seed, Gamma), FSharpOption<int>.None)));
        Check.One(settings, Prop.ForAll(Arb.From(s_case), (SpecMutation c) => cases.Add(c)));
        return cases;
    }

    private sealed record SpecMutation(Mutation[] Mutations, int Number, int Where)
    {
        /// <summary>One of the spec's numbers made hostile (when Number ≥ 0), then the byte mutations.</summary>
        public byte[] Apply(byte[] spec)
        {
            if (Number >= 0)
            {
                string text = Encoding.UTF8.GetString(spec);
                int[] digits = [.. text.Select((ch, i) => (ch, i)).Where(p => char.IsAsciiDigit(p.ch) && !char.IsAsciiDigit(text[p.i - 1])).Select(p => p.i)];
                int start = digits[Where % digits.Length], end = start;
                while (end < text.Length && char.IsAsciiDigit(text[end]))
                {
                    end++;
                }

                spec = Encoding.UTF8.GetBytes(text[..start] + s_hostileNumbers[Number] + text[end..]);
            }

            return Mutations.Aggregate(spec, (current, mutation) => mutation.Apply(current));
        }

        public override string ToString() =>
            $"{(Number >= 0 ? $"number {Where} → {s_hostileNumbers[Number]}; " : "")}{string.Join("; ", Mutations.Select(m => m.ToString()))}";
    }
}
