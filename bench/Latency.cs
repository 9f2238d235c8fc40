using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Playwright;
using TrainingService.Contracts.Specs;
using TrainingService.Training.Data;
using static Stats;

/// <summary>
/// How long a step takes from its end on the server (the step event's timestamp) to its point on the dashboard's
/// loss chart: the dashboard records, for every step it receives live, the time at the end of the animation frame
/// that drew it (window.trainingDashboard.latencies; browser and server share this machine's clock). Measured with
/// the dashboard as the only client, then with 49 more SignalR clients (.NET, JSON protocol, as browsers use)
/// following the same job, in one run on the real service in a child process.
/// </summary>
internal static class Latency
{
    public static async Task RunAsync(ImageDataset data, ModelSpec model, int seconds)
    {
        using ServiceUnderTest service = await ServiceUnderTest.StartAsync(data, model);
        using IPlaywright playwright = await Playwright.CreateAsync();
        await using IBrowser browser = await playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = Environment.GetEnvironmentVariable("CHROMIUM_PATH") ?? "/usr/bin/chromium",
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });

        Console.WriteLine($"LeNet-5 on {data.Train.Count} Fashion-MNIST images, batch 64, stats every 10 steps; {seconds} s of live steps per case");
        Console.WriteLine("| clients following the job | steps drawn | median ms | p90 ms | p99 ms | max ms | other clients: events received, median ms to receipt |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---|");
        foreach (int clients in new[] { 1, 50, 1, 50 })
        {
            Guid job = await service.StartJobAsync(epochs: 1000, batch: 64);
            await using var others = new OtherClients(service.BaseAddress, job, clients - 1);
            await others.StartAsync();
            IPage page = await browser.NewPageAsync(new() { BaseURL = service.BaseAddress.ToString(), ViewportSize = new() { Width = 1280, Height = 900 } });
            await page.GotoAsync($"/#/jobs/{job}");
            await page.WaitForFunctionAsync("() => window.trainingDashboard.job && window.trainingDashboard.job.link === 'live' && window.trainingDashboard.latencies.length > 200");
            await page.EvaluateAsync("() => { window.trainingDashboard.latencies.length = 0; }"); // warm: measure from here
            others.Reset();
            await Task.Delay(TimeSpan.FromSeconds(seconds));
            double[] latencies = (await page.EvaluateAsync<double[]>("() => window.trainingDashboard.latencies.slice()")).Order().ToArray();
            await page.CloseAsync();
            await service.Client.PostAsync(new Uri($"/jobs/{job}/cancel", UriKind.Relative), null);
            string other = clients > 1 ? $"{others.Received:N0}, {Percentile(others.Latencies(), 0.5):F0}" : "–";
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {clients} ({(clients == 1 ? "the dashboard" : $"the dashboard + {clients - 1} SignalR clients")}) | {latencies.Length:N0} | {Percentile(latencies, 0.5):F0} | {Percentile(latencies, 0.9):F0} | {Percentile(latencies, 0.99):F0} | {latencies.LastOrDefault():F0} | {other} |"));
            await Task.Delay(2000); // the cancelled job checkpoints and stops before the next case
        }
    }

    /// <summary>SignalR clients subscribed to the job from seq 0, recording receipt time minus event time for steps.</summary>
    private sealed class OtherClients(Uri baseAddress, Guid job, int count) : IAsyncDisposable
    {
        private readonly List<HubConnection> _connections = [];
        private readonly List<double> _latencies = [];
        private readonly Lock _lock = new();
        private long _received;

        public long Received => Interlocked.Read(ref _received);

        public async Task StartAsync()
        {
            for (int i = 0; i < count; i++)
            {
                HubConnection connection = new HubConnectionBuilder().WithUrl(new Uri(baseAddress, "/hubs/training")).Build();
                connection.On<Guid, JsonElement[]>("Events", (_, events) =>
                {
                    DateTime now = DateTime.UtcNow;
                    Interlocked.Add(ref _received, events.Length);
                    lock (_lock)
                    {
                        foreach (JsonElement e in events)
                        {
                            if (e.GetProperty("kind").GetString() == "step")
                            {
                                _latencies.Add((now - e.GetProperty("time").GetDateTime()).TotalMilliseconds);
                            }
                        }
                    }
                });
                await connection.StartAsync();
                await connection.InvokeAsync("Subscribe", job, 0L);
                _connections.Add(connection);
            }
        }

        public void Reset()
        {
            Interlocked.Exchange(ref _received, 0);
            lock (_lock)
            {
                _latencies.Clear();
            }
        }

        public double[] Latencies()
        {
            lock (_lock)
            {
                return [.. _latencies.Order()];
            }
        }

        public async ValueTask DisposeAsync()
        {
            foreach (HubConnection c in _connections)
            {
                await c.DisposeAsync();
            }
        }
    }
}
