using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using TrainingService.Contracts.Specs;
using TrainingService.Training.Data;

/// <summary>
/// How long one LeNet-5 prediction takes through the service: a job trains one epoch, then the benchmark sends
/// one-image requests (JSON pixels, 784 values) one after another and times each round trip on loopback.
/// </summary>
internal static class PredictLatency
{
    public static async Task RunAsync(ImageDataset data, ModelSpec model, int requests)
    {
        using ServiceUnderTest service = await ServiceUnderTest.StartAsync(data, model);
        Guid job = await service.StartJobAsync(epochs: 1, batch: 64);
        while ((await service.Client.GetFromJsonAsync<JsonElement>($"/jobs/{job}")).GetProperty("state").GetString() != "Succeeded")
        {
            await Task.Delay(200);
        }

        float[][] images = [.. Enumerable.Range(0, 100).Select(i => data.Train.Images.AsSpan(i * data.SampleSize, data.SampleSize).ToArray().Select(b => (float)b).ToArray())];
        var uri = new Uri($"/jobs/{job}/predict", UriKind.Relative);
        var times = new List<double>(requests);
        // Beside each prediction, for where its time goes: a request with no key and no database read (the liveness
        // probe), and one with the key checked and one read (GET /jobs/{id}).
        var bare = new List<double>(requests);
        var read = new List<double>(requests);
        for (int i = 0; i < requests + 200; i++)
        {
            var clock = Stopwatch.StartNew();
            using (HttpResponseMessage response = await service.Client.PostAsJsonAsync(uri, new { images = new[] { images[i % images.Length] }, top = 3 }))
            {
                _ = await response.Content.ReadAsByteArrayAsync();
                response.EnsureSuccessStatusCode();
            }

            double predicted = clock.Elapsed.TotalMilliseconds;
            clock.Restart();
            (await service.Client.GetAsync(new Uri("/health/live", UriKind.Relative))).EnsureSuccessStatusCode();
            double probed = clock.Elapsed.TotalMilliseconds;
            clock.Restart();
            (await service.Client.GetAsync(new Uri($"/jobs/{job}", UriKind.Relative))).EnsureSuccessStatusCode();
            if (i >= 200) // the first 200 warm the JIT and the model cache
            {
                times.Add(predicted);
                bare.Add(probed);
                read.Add(clock.Elapsed.TotalMilliseconds);
            }
        }

        times.Sort();
        bare.Sort();
        read.Sort();
        static double Q(List<double> sorted, double q) => sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(q * sorted.Count) - 1)];
        double P(double q) => Q(times, q);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"beside them: GET /health/live p50 {Q(bare, 0.5):F2} ms, p99 {Q(bare, 0.99):F2} ms; GET /jobs/{{id}} p50 {Q(read, 0.5):F2} ms, p99 {Q(read, 0.99):F2} ms"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"LeNet-5, one 28×28 image per request (JSON), {requests} sequential requests after 200 warm-up: p50 {P(0.5):F2} ms, p90 {P(0.9):F2} ms, p99 {P(0.99):F2} ms, max {times[^1]:F2} ms"));
        Summary.Add("one-image prediction (LeNet-5, JSON, loopback): p99 ms", P(0.99), "F2", "< 5", P(0.99) < 5);

        // Batches of 256 (Predict:MaxImages), one request after another: images per second over each round trip.
        float[][] batch = [.. Enumerable.Range(0, 256).Select(i => images[i % images.Length])];
        var rates = new List<double>();
        for (int i = 0; i < 60; i++)
        {
            var clock = Stopwatch.StartNew();
            using HttpResponseMessage response = await service.Client.PostAsJsonAsync(uri, new { images = batch, top = 3 });
            _ = await response.Content.ReadAsByteArrayAsync();
            response.EnsureSuccessStatusCode();
            if (i >= 10)
            {
                rates.Add(batch.Length / clock.Elapsed.TotalSeconds);
            }
        }

        rates.Sort();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"LeNet-5, 256 images per request (JSON), 50 sequential requests after 10 warm-up: median {rates[rates.Count / 2]:F0} images/s, slowest request {rates[0]:F0} images/s, fastest {rates[^1]:F0}"));
        Summary.Add("predictions in batches of 256: median images/s", rates[rates.Count / 2], "F0", "≥ 5,000", rates[rates.Count / 2] >= 5000);
    }
}
