using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using TrainingService.Api.Tests.Jobs;
using Xunit.Abstractions;

namespace TrainingService.Api.Tests.Service;

/// <summary>
/// Meters are matched by name across the process: a service's metrics provider also sees the instruments of every other
/// service the test host runs at the same time (one service per process in production). These tests run alone.
/// </summary>
[CollectionDefinition(nameof(ProcessWideMetrics), DisableParallelization = true)]
public sealed class ProcessWideMetrics;

/// <summary>/metrics in Prometheus's text format: the service's own figures per running job, for an admin only.</summary>
[Collection(nameof(ProcessWideMetrics))]
public sealed class MetricsTests(ITestOutputHelper output)
{
    [Fact]
    public async Task ARunningJobsLossSpeedAndStepAreScrapedAndGoWhenItEnds()
    {
        await using var factory = new TrainingServiceFactory(new() { ["Jobs:CheckpointEverySteps"] = "20" });
        using HttpClient client = factory.CreateClient();
        Guid dataset = await JobHarness.CreateShapesAsync(client);
        (HttpResponseMessage response, JsonElement job) = await JobHarness.PostJobAsync(client,
            $$"""{ "datasetId": "{{dataset}}", "model": {{JobHarness.TinySpec}}, "hyperparameters": { "epochs": 400, "batchSize": 16 } }""");
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Guid id = job.GetProperty("id").GetGuid();
        for (DateTime deadline = DateTime.UtcNow.AddMinutes(1); (await client.GetFromJsonAsync<JsonElement>($"/jobs/{id}")).GetProperty("step").GetInt64() < 50; await Task.Delay(50))
        {
            Assert.True(DateTime.UtcNow < deadline, "the job did not reach step 50");
        }

        string running = await ScrapeAsync(client);
        output.WriteLine(string.Join('\n', running.Split('\n').Where(l => l.StartsWith("trainingservice", StringComparison.Ordinal))));
        string series = $"job_id=\"{id}\"";
        double loss = Value(running, "trainingservice_job_loss", series);
        Assert.InRange(loss, 1e-6, 10);
        Assert.True(Value(running, "trainingservice_job_samples_per_second", series) > 0);
        Assert.True(Value(running, "trainingservice_job_step", series) >= 50);
        Assert.Equal(1, Value(running, "trainingservice_jobs_running", ""));
        Assert.True(Value(running, "trainingservice_events_persisted_total", "") >= 50);
        Assert.True(Value(running, "trainingservice_checkpoint_duration_seconds_count", "") >= 2); // every 20 steps
        Assert.Matches(@"(?m)^http_server_request_duration_seconds_count\{", running); // ASP.NET Core's own

        await client.PostAsync(new Uri($"/jobs/{id}/cancel", UriKind.Relative), null);
        await JobHarness.WaitForStateAsync(client, id, "Cancelled");
        string ended = await ScrapeAsync(client);
        Assert.DoesNotContain(series, ended, StringComparison.Ordinal); // per-job series last as long as the job runs
        Assert.Equal(0, Value(ended, "trainingservice_jobs_running", ""));
    }

    [Fact]
    public async Task MetricsAreForAnAdminOnly()
    {
        await using var factory = new TrainingServiceFactory();
        using HttpClient admin = factory.CreateClient();
        using HttpClient anonymous = factory.Server.CreateClient();
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync(new Uri("/metrics", UriKind.Relative))).StatusCode);

        using HttpResponseMessage created = await admin.PostAsJsonAsync("/users", new { name = "someone" });
        string key = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetProperty("secret").GetString()!;
        using HttpClient user = factory.Server.CreateClient();
        user.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        Assert.Equal(HttpStatusCode.Forbidden, (await user.GetAsync(new Uri("/metrics", UriKind.Relative))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync(new Uri("/metrics", UriKind.Relative))).StatusCode);
    }

    private static async Task<string> ScrapeAsync(HttpClient client)
    {
        using HttpResponseMessage response = await client.GetAsync(new Uri("/metrics", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsStringAsync();
    }

    /// <summary>The value of the first sample of <paramref name="name"/> whose labels contain <paramref name="label"/>.</summary>
    private static double Value(string scrape, string name, string label)
    {
        Match sample = Regex.Match(scrape, $@"(?m)^{name}(\{{[^}}]*{Regex.Escape(label)}[^}}]*\}})? (?<value>\S+)");
        Assert.True(sample.Success, $"no {name} {label} in the scrape");
        return double.Parse(sample.Groups["value"].Value, System.Globalization.CultureInfo.InvariantCulture);
    }
}
