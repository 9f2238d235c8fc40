using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using TrainingService.Api.Persistence;
using TrainingService.Api.Tests.Jobs;
using TrainingService.Api.Tests.Service;

namespace TrainingService.Api.Tests.Outputs;

/// <summary>GET /jobs/{id}/history: a job's scalars as CSV, JSON Lines and a TensorBoard event file.</summary>
public sealed class HistoryApiTests
{
    private static readonly JsonSerializerOptions s_json = new(JsonSerializerOptions.Web) { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    private sealed record Row(long Step, int Epoch, DateTime Time, string Tag, double Value);

    [Fact]
    public async Task TheHistoryComesOutAsCsvJsonLinesAndAnEventFileThatAnIndependentReaderReads()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        Guid dataset = await JobHarness.CreateShapesAsync(client);
        (_, JsonElement job) = await JobHarness.PostJobAsync(client, $$"""
            { "datasetId": "{{dataset}}", "model": {{JobHarness.TinySpec}},
              "hyperparameters": { "epochs": 2, "batchSize": 32, "validationFraction": 0.25 }, "monitoring": { "statsEvery": 2 } }
            """);
        Guid id = job.GetProperty("id").GetGuid();
        await JobHarness.WaitForStateAsync(client, id, "Succeeded");
        JsonElement[] events = [.. (await client.GetFromJsonAsync<JsonElement>($"/jobs/{id}/events?limit=10000", s_json)).EnumerateArray()];
        JsonElement[] steps = [.. events.Where(e => e.GetProperty("kind").GetString() == "step")];
        JsonElement[] epochs = [.. events.Where(e => e.GetProperty("kind").GetString() == "epoch")];
        JsonElement[] layers = [.. events.Where(e => e.GetProperty("kind").GetString() == "layers")];
        Assert.Equal(2, epochs.Length);
        Assert.NotEmpty(layers);

        // CSV: a header, then one row per value; each step's loss exactly as the event holds it.
        HttpResponseMessage csvResponse = await client.GetAsync(new Uri($"/jobs/{id}/history", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, csvResponse.StatusCode);
        Assert.Equal("text/csv", csvResponse.Content.Headers.ContentType?.MediaType);
        string[] lines = (await csvResponse.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("step,epoch,time,tag,value", lines[0]);
        Row[] csv = [.. lines.Skip(1).Select(line => line.Split(',')).Select(f => new Row(
            long.Parse(f[0], CultureInfo.InvariantCulture), int.Parse(f[1], CultureInfo.InvariantCulture),
            DateTime.Parse(f[2], CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal), f[3], double.Parse(f[4], CultureInfo.InvariantCulture)))];
        Assert.Equal(
            steps.Select(s => (s.GetProperty("step").GetInt64(), s.GetProperty("epoch").GetInt32(), s.GetProperty("loss").GetDouble())),
            csv.Where(r => r.Tag == "step/loss").Select(r => (r.Step, r.Epoch, r.Value)));
        Assert.Equal(steps.Length, csv.Count(r => r.Tag == "step/learning_rate"));
        // An epoch's figures sit at its last step, so they line up with the step curves.
        foreach (JsonElement epoch in epochs)
        {
            int number = epoch.GetProperty("epoch").GetInt32();
            long last = steps.Where(s => s.GetProperty("epoch").GetInt32() == number).Max(s => s.GetProperty("step").GetInt64());
            Assert.Equal((last, epoch.GetProperty("validationAccuracy").GetDouble()),
                csv.Where(r => r.Tag == "epoch/validation_accuracy" && r.Epoch == number).Select(r => (r.Step, r.Value)).Single());
            Assert.Single(csv, r => r.Tag == "epoch/train_loss" && r.Epoch == number && r.Value == epoch.GetProperty("trainLoss").GetDouble());
        }

        JsonElement firstLayers = layers[0];
        string conv = firstLayers.GetProperty("layers")[0].GetProperty("name").GetString()!;
        string weight = firstLayers.GetProperty("parameters")[0].GetProperty("name").GetString()!;
        Assert.Equal(layers.Select(l => l.GetProperty("layers")[0].GetProperty("mean").GetDouble()),
            csv.Where(r => r.Tag == $"activations/{conv}/mean").Select(r => r.Value));
        Assert.Equal(layers.Select(l => (l.GetProperty("step").GetInt64(), l.GetProperty("parameters")[0].GetProperty("updateRatio").GetDouble())),
            csv.Where(r => r.Tag == $"parameters/{weight}/update_ratio").Select(r => (r.Step, r.Value)));

        // JSON Lines: the same rows.
        HttpResponseMessage jsonlResponse = await client.GetAsync(new Uri($"/jobs/{id}/history?format=jsonl", UriKind.Relative));
        Assert.Equal("application/jsonl", jsonlResponse.Content.Headers.ContentType?.MediaType);
        Row[] jsonl = [.. (await jsonlResponse.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => JsonSerializer.Deserialize<Row>(line, s_json)!)];
        Assert.Equal(csv, jsonl);

        // ?tags= keeps the tags named, exact or by group (a trailing slash); a layer's group takes its histogram too.
        string filtered = await client.GetStringAsync(new Uri($"/jobs/{id}/history?tags=step/loss,epoch/", UriKind.Relative));
        Assert.Equal(csv.Where(r => r.Tag == "step/loss" || r.Tag.StartsWith("epoch/", StringComparison.Ordinal)).Select(r => r.Tag),
            filtered.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(line => line.Split(',')[3]));
        string layerFile = Path.Combine(Directory.CreateTempSubdirectory("tfevents").FullName, "events.out.tfevents.layer");
        await File.WriteAllBytesAsync(layerFile, await client.GetByteArrayAsync(new Uri($"/jobs/{id}/history?format=tensorboard&tags=activations/{conv}/", UriKind.Relative)));
        JsonElement layerOnly = ReadWithPython(layerFile);
        Directory.Delete(Path.GetDirectoryName(layerFile)!, recursive: true);
        Assert.All(layerOnly.GetProperty("scalars").EnumerateArray(), s => Assert.StartsWith($"activations/{conv}/", s[1].GetString(), StringComparison.Ordinal));
        Assert.Equal(csv.Count(r => r.Tag.StartsWith($"activations/{conv}/", StringComparison.Ordinal)), layerOnly.GetProperty("scalars").GetArrayLength());
        Assert.Equal(layers.Length, layerOnly.GetProperty("histograms").GetArrayLength());

        // The event file, read by the independent reader: every CSV value at its step and tag (as float32), and each
        // layer's histogram with the counts the layers event holds.
        HttpResponseMessage tbResponse = await client.GetAsync(new Uri($"/jobs/{id}/history?format=tensorboard", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, tbResponse.StatusCode);
        string fileName = tbResponse.Content.Headers.ContentDisposition!.FileName!.Trim('"');
        Assert.StartsWith("events.out.tfevents.", fileName, StringComparison.Ordinal);
        string folder = Directory.CreateTempSubdirectory("tfevents").FullName;
        try
        {
            string path = Path.Combine(folder, fileName);
            await File.WriteAllBytesAsync(path, await tbResponse.Content.ReadAsByteArrayAsync());
            JsonElement read = ReadWithPython(path);
            Assert.Equal("brain.Event:2", read.GetProperty("version").GetString());
            var scalars = read.GetProperty("scalars").EnumerateArray().Select(s => (s[0].GetInt64(), s[1].GetString()!, s[2].GetSingle())).ToList();
            Assert.Equal(csv.Select(r => (r.Step, r.Tag, (float)r.Value)), scalars);

            JsonElement[] histograms = [.. read.GetProperty("histograms").EnumerateArray().Where(h => h.GetProperty("tag").GetString() == $"activations/{conv}")];
            Assert.Equal(layers.Length, histograms.Length);
            for (int i = 0; i < layers.Length; i++)
            {
                JsonElement stats = layers[i].GetProperty("layers")[0];
                JsonElement h = histograms[i];
                long[] counts = [.. stats.GetProperty("histogram").EnumerateArray().Select(c => c.GetInt64())];
                Assert.Equal(layers[i].GetProperty("step").GetInt64(), h.GetProperty("step").GetInt64());
                Assert.Equal((stats.GetProperty("min").GetDouble(), stats.GetProperty("max").GetDouble()), (h.GetProperty("min").GetDouble(), h.GetProperty("max").GetDouble()));
                Assert.Equal(counts.Select(c => (double)c), h.GetProperty("counts").EnumerateArray().Select(c => c.GetDouble()));
                Assert.Equal(counts.Sum(), h.GetProperty("num").GetDouble());
                double[] limits = [.. h.GetProperty("limits").EnumerateArray().Select(l => l.GetDouble())];
                Assert.Equal(limits.Order(), limits);
                Assert.Equal(stats.GetProperty("max").GetDouble(), limits[^1]);
                Assert.Equal(stats.GetProperty("mean").GetDouble(), h.GetProperty("sum").GetDouble() / counts.Sum(), 9);
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task ColumnsHoldTheCsvRowsWithoutTimesAndNonFiniteValuesAsStrings()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        Guid dataset = await JobHarness.CreateShapesAsync(client);
        (_, JsonElement job) = await JobHarness.PostJobAsync(client, $$"""
            { "datasetId": "{{dataset}}", "model": {{JobHarness.TinySpec}},
              "hyperparameters": { "epochs": 2, "batchSize": 32, "validationFraction": 0.25 }, "monitoring": { "statsEvery": 2 } }
            """);
        Guid id = job.GetProperty("id").GetGuid();
        await JobHarness.WaitForStateAsync(client, id, "Succeeded");

        // Three stored step events as a diverging run and a later version would leave them: NaN and -Infinity losses (the
        // stream writes them as strings), and a field this version does not know (read by the serializer, which skips it).
        using (IServiceScope scope = factory.Services.CreateScope())
        {
            TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
            long[] seqs = [.. await db.JobEvents.Where(e => e.JobId == id && e.Kind == "step").OrderBy(e => e.Seq).Select(e => e.Seq).Take(3).ToListAsync()];
            string key = id.ToString().ToUpperInvariant();
            (long Seq, string Replacement)[] edits = [(seqs[0], "\"loss\":\"NaN\","), (seqs[1], "\"loss\":\"-Infinity\","), (seqs[2], "\"later\":{\"field\":[1]},\"loss\":0.25,")];
            foreach ((long seq, string replacement) in edits)
            {
                Assert.Equal(1, await db.Database.ExecuteSqlAsync(
                    $"UPDATE JobEvents SET Json = substr(Json, 1, instr(Json, '\"loss\":') - 1) || {replacement} || substr(Json, instr(Json, ',\"learningRate\"') + 1) WHERE JobId = {key} AND Seq = {seq}"));
            }
        }

        string[] lines = (await client.GetStringAsync(new Uri($"/jobs/{id}/history", UriKind.Relative))).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        (long Step, int Epoch, string Tag, double Value)[] csv = [.. lines.Skip(1).Select(line => line.Split(',')).Select(f =>
            (long.Parse(f[0], CultureInfo.InvariantCulture), int.Parse(f[1], CultureInfo.InvariantCulture), f[3], double.Parse(f[4], CultureInfo.InvariantCulture)))];
        Assert.Equal([double.NaN, double.NegativeInfinity, 0.25], csv.Where(r => r.Tag == "step/loss").Take(3).Select(r => r.Value));

        HttpResponseMessage response = await client.GetAsync(new Uri($"/jobs/{id}/history?format=columns", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/jsonl", response.Content.Headers.ContentType?.MediaType);
        JsonElement[] blocks = [.. (await response.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonSerializer.Deserialize<JsonElement>(l))];
        var columns = blocks.SelectMany(b => Enumerable.Range(0, b.GetProperty("value").GetArrayLength()).Select(i =>
            (Step: b.GetProperty("step")[i].GetInt64(), Epoch: b.GetProperty("epoch")[i].GetInt32(), Tag: b.GetProperty("tag").GetString()!, Value: b.GetProperty("value")[i])))
            .ToList();
        double Value(JsonElement v) => v.ValueKind == JsonValueKind.String ? double.Parse(v.GetString()!, CultureInfo.InvariantCulture) : v.GetDouble();
        // Every CSV row, in the same order within each tag, and nothing else.
        foreach (IGrouping<string, (long, int, string, double)> tag in csv.GroupBy(r => r.Tag))
        {
            Assert.Equal(tag, columns.Where(c => c.Tag == tag.Key).Select(c => (c.Step, c.Epoch, c.Tag, Value(c.Value))));
        }

        Assert.Equal(csv.Length, columns.Count);
        Assert.Equal(["NaN", "-Infinity"], columns.Where(c => c.Tag == "step/loss").Take(2).Select(c => c.Value.GetString()));
        int lossBlocks = blocks.Count(b => b.GetProperty("tag").GetString() == "step/loss");
        Assert.True(lossBlocks * 4 <= csv.Count(r => r.Tag == "step/loss"), $"{lossBlocks} blocks of step/loss: a block holds a run of rows");

        // tags= as for CSV.
        string filtered = await client.GetStringAsync(new Uri($"/jobs/{id}/history?format=columns&tags=step/loss,epoch/", UriKind.Relative));
        Assert.Equal(csv.Select(r => r.Tag).Where(t => t == "step/loss" || t.StartsWith("epoch/", StringComparison.Ordinal)).Distinct().Order(),
            filtered.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonSerializer.Deserialize<JsonElement>(l).GetProperty("tag").GetString()).Distinct().Order());
    }

    [Fact]
    public async Task StepColumnsReadByTheDatabaseAreTheCsvRowsInTheSameChunks()
    {
        // A small byte budget, so the chunks (a line per tag each) end by bytes rather than at 1,000 events.
        await using TrainingServiceFactory factory = ServiceHarness.Factory(new() { ["Streaming:MaxFrameBytes"] = "1024" });
        using HttpClient client = factory.CreateClient();
        Guid id = await FinishedJobAsync(client);
        await AssertStepColumnsAreTheCsvRowsAsync(factory.Services, client, id);
    }

    /// <summary>A finished two-epoch job of 6 steps an epoch.</summary>
    internal static async Task<Guid> FinishedJobAsync(HttpClient client)
    {
        Guid dataset = await JobHarness.CreateShapesAsync(client);
        (_, JsonElement job) = await JobHarness.PostJobAsync(client, $$"""
            { "datasetId": "{{dataset}}", "model": {{JobHarness.TinySpec}},
              "hyperparameters": { "epochs": 2, "batchSize": 32, "validationFraction": 0.25 }, "monitoring": { "statsEvery": 2 } }
            """);
        Guid id = job.GetProperty("id").GetGuid();
        await JobHarness.WaitForStateAsync(client, id, "Succeeded");
        return id;
    }

    /// <summary>
    /// Edits the job's first step events into what a stored history may also hold (non-finite figures as the stream writes
    /// them, a JSON null, a field missing, an unknown one, -0, an exponent, a step without its epoch) and drops its layers
    /// events; then format=columns of step tags alone, whose figures the database reads, holds exactly the CSV's rows of
    /// those tags (bit for bit), and is byte for byte what reading every event gives (tags that also name a layer make
    /// /history read the events; with no layers events left, it reads the same events in the same chunks).
    /// </summary>
    internal static async Task AssertStepColumnsAreTheCsvRowsAsync(IServiceProvider services, HttpClient client, Guid id)
    {
        long[] edited;
        int stepEvents;
        using (IServiceScope scope = services.CreateScope())
        {
            TrainingDb db = scope.ServiceProvider.GetRequiredService<TrainingDb>();
            await db.JobEvents.Where(e => e.JobId == id && e.Kind == "layers").ExecuteDeleteAsync();
            List<JobEventRecord> steps = await db.JobEvents.Where(e => e.JobId == id && e.Kind == "step").OrderBy(e => e.Seq).Take(9).ToListAsync();
            Action<JsonObject>[] edits =
            [
                e => e["loss"] = "NaN",
                e => e["loss"] = "-Infinity",
                e => e["learningRate"] = "Infinity",
                e => e["loss"] = null,
                e => { e.Remove("loss"); e["later"] = new JsonObject { ["field"] = new JsonArray(1) }; },
                e => e["loss"] = -0.0,
                e => e.Remove("epoch"), // the first step of epoch 2: it keeps epoch 1
                e => e["loss"] = 1e-5,
                e => e["samplesPerSecond"] = 1e300,
            ];
            Assert.Equal(edits.Length, steps.Count);
            for (int i = 0; i < edits.Length; i++)
            {
                JsonObject e = JsonNode.Parse(steps[i].Json)!.AsObject();
                edits[i](e);
                steps[i].Json = e.ToJsonString();
                steps[i].Bytes = Encoding.UTF8.GetByteCount(steps[i].Json); // as the pump stores it
            }

            await db.SaveChangesAsync();
            edited = [.. steps.Select(e => JsonNode.Parse(e.Json)!["step"]!.GetValue<long>())];
            stepEvents = await db.JobEvents.CountAsync(e => e.JobId == id && e.Kind == "step");
        }

        foreach (string tags in new[] { "step/loss", "step/", "step/learning_rate,step/samples_per_second,epoch/none" })
        {
            string[] lines = (await client.GetStringAsync(new Uri($"/jobs/{id}/history?tags={tags}", UriKind.Relative))).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            (long Step, int Epoch, string Tag, long Bits)[] csv = [.. lines.Skip(1).Select(line => line.Split(',')).Select(f =>
                (long.Parse(f[0], CultureInfo.InvariantCulture), int.Parse(f[1], CultureInfo.InvariantCulture), f[3], Bits(double.Parse(f[4], CultureInfo.InvariantCulture))))];
            string text = await client.GetStringAsync(new Uri($"/jobs/{id}/history?format=columns&tags={tags}", UriKind.Relative));
            JsonElement[] blocks = [.. text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonSerializer.Deserialize<JsonElement>(l))];
            var columns = blocks.SelectMany(b => Enumerable.Range(0, b.GetProperty("value").GetArrayLength()).Select(i =>
                (Step: b.GetProperty("step")[i].GetInt64(), Epoch: b.GetProperty("epoch")[i].GetInt32(), Tag: b.GetProperty("tag").GetString()!, Value: b.GetProperty("value")[i])))
                .ToList();
            Assert.NotEmpty(csv);
            Assert.Equal(csv.Length, columns.Count);
            foreach (IGrouping<string, (long, int, string, long)> tag in csv.GroupBy(r => r.Tag))
            {
                Assert.Equal(tag, columns.Where(c => c.Tag == tag.Key).Select(c => (c.Step, c.Epoch, c.Tag, Bits(Value(c.Value)))));
            }

            Assert.All(columns.Where(c => !double.IsFinite(Value(c.Value))), c => Assert.Equal(JsonValueKind.String, c.Value.ValueKind));
            if (tags == "step/")
            {
                var loss = columns.Where(c => c.Tag == "step/loss").ToList();
                Assert.Equal(stepEvents - 2, loss.Count); // the null and the missing loss
                Assert.Equal(["NaN", "-Infinity"], loss.Take(2).Select(c => c.Value.GetString()));
                Assert.DoesNotContain(loss, c => c.Step == edited[3] || c.Step == edited[4]);
                Assert.Equal("-0", loss.Single(c => c.Step == edited[5]).Value.GetRawText());
                Assert.Equal(1, loss.Single(c => c.Step == edited[6]).Epoch);
                Assert.Equal("Infinity", columns.Single(c => c.Tag == "step/learning_rate" && c.Step == edited[2]).Value.GetString());
            }

            Assert.True(blocks.Length > csv.Select(r => r.Tag).Distinct().Count(), "the rows come in more than one chunk");
            string read = await client.GetStringAsync(new Uri($"/jobs/{id}/history?format=columns&tags={tags},activations/none/", UriKind.Relative));
            Assert.Equal(read, text);
        }

        static long Bits(double value) => BitConverter.DoubleToInt64Bits(value);
        static double Value(JsonElement v) => v.ValueKind == JsonValueKind.String ? double.Parse(v.GetString()!, CultureInfo.InvariantCulture) : v.GetDouble();
    }

    [Fact]
    public async Task AnUnknownFormatOrJobIsAProblemNamingIt()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        using HttpClient client = factory.CreateClient();
        HttpResponseMessage missing = await client.GetAsync(new Uri($"/jobs/{Guid.NewGuid()}/history", UriKind.Relative));
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);

        HttpResponseMessage badTags = await client.GetAsync(new Uri($"/jobs/{Guid.NewGuid()}/history?tags=step/loss,,epoch/", UriKind.Relative));
        Assert.Equal(HttpStatusCode.BadRequest, badTags.StatusCode);
        Assert.True((await badTags.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("errors").TryGetProperty("tags", out _));

        HttpResponseMessage badFormat = await client.GetAsync(new Uri($"/jobs/{Guid.NewGuid()}/history?format=xlsx", UriKind.Relative));
        Assert.Equal(HttpStatusCode.BadRequest, badFormat.StatusCode);
        JsonElement problem = await badFormat.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Contains("xlsx", problem.GetProperty("errors").GetProperty("format")[0].GetString(), StringComparison.Ordinal);
        Assert.Contains("columns", problem.GetProperty("errors").GetProperty("format")[0].GetString(), StringComparison.Ordinal);
    }

    /// <summary>read_tfevents.py: TFRecord framing and CRC-32C checked by crcmod, Event protos decoded by Google's protobuf runtime.</summary>
    private static JsonElement ReadWithPython(string path)
    {
        // Debian's interpreter, whose packages python3-protobuf and python3-crcmod are (a pyenv python3 first on PATH has neither).
        string python = File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
        var start = new ProcessStartInfo(python, [Path.Combine(AppContext.BaseDirectory, "Outputs", "read_tfevents.py"), path])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using Process reader = Process.Start(start)!;
        Task<string> output = reader.StandardOutput.ReadToEndAsync();
        string error = reader.StandardError.ReadToEnd();
        Assert.True(reader.WaitForExit(TimeSpan.FromSeconds(60)), "the reader did not finish in 60 s");
        Assert.True(reader.ExitCode == 0, $"read_tfevents.py failed ({reader.ExitCode}): {error}");
        return JsonSerializer.Deserialize<JsonElement>(output.Result);
    }
}
