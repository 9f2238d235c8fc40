using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace TrainingService.Api.Tests.Jobs;

/// <summary>The real service in a child process on loopback, signed in as the admin; <see cref="Kill"/> is SIGKILL.</summary>
internal sealed class ServiceProcess : IDisposable
{
    private readonly Process _process;
    private readonly Queue<string> _log = new();

    private ServiceProcess(Process process, HttpClient client)
    {
        _process = process;
        Client = client;
    }

    public HttpClient Client { get; }

    public int Pid => _process.Id;

    /// <summary>The process's peak resident set so far (VmHWM), in bytes.</summary>
    public long PeakRssBytes => Status("VmHWM:");

    /// <summary>The process's resident set now (VmRSS), in bytes.</summary>
    public long RssBytes => Status("VmRSS:");

    public bool HasExited => _process.HasExited;

    /// <summary>Starts the service on <paramref name="dataFolder"/> with small checkpoints intervals, one thread a job and no request rate limit; <paramref name="settings"/> are more "--Key", "value" pairs.</summary>
    public static async Task<ServiceProcess> StartAsync(string dataFolder, params string[] settings)
    {
        int port = FreePort();
        var start = new ProcessStartInfo("dotnet",
        [
            Path.Combine(AppContext.BaseDirectory, "TrainingService.Api.dll"), "--urls", $"http://127.0.0.1:{port}",
            "--Storage:DataFolder", dataFolder, "--Auth:AdminKey", TrainingServiceFactory.AdminKey, "--Jobs:ThreadsPerJob", "1", "--Jobs:CheckpointEverySteps", "25",
            "--Serilog:MinimumLevel:Default", "Warning", "--RateLimits:RequestsPerMinute", "1000000", "--RateLimits:Burst", "1000000",
            .. settings,
        ])
        {
            WorkingDirectory = AppContext.BaseDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        Process process = Process.Start(start)!;
        var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", TrainingServiceFactory.AdminKey);
        var service = new ServiceProcess(process, client);
        process.OutputDataReceived += (_, e) => service.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => service.Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        string last = "no answer";
        for (DateTime deadline = DateTime.UtcNow.AddSeconds(60); DateTime.UtcNow < deadline && !process.HasExited; await Task.Delay(100))
        {
            try
            {
                using HttpResponseMessage ready = await client.GetAsync(new Uri("/health/ready", UriKind.Relative));
                if (ready.StatusCode == HttpStatusCode.OK)
                {
                    return service;
                }

                last = $"{(int)ready.StatusCode}: {await ready.Content.ReadAsStringAsync()}";
            }
            catch (HttpRequestException ex)
            {
                last = ex.Message;
            }
        }

        // Not ready in a minute, or gone: killed here (the caller gets no handle to dispose), with its log in the message.
        string exited = process.HasExited ? $"exited with {process.ExitCode}" : "not ready after 60 s";
        service.Dispose();
        throw new InvalidOperationException($"the service on port {port} {exited} (last answer: {last}); its log:\n{service.RecentLog}");
    }

    /// <summary>The last 300 lines the process wrote, for a failing assertion's message.</summary>
    public string RecentLog
    {
        get
        {
            lock (_log)
            {
                return string.Join('\n', _log);
            }
        }
    }

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_log)
        {
            _log.Enqueue(line);
            if (_log.Count > 300)
            {
                _log.Dequeue();
            }
        }
    }

    public void Kill()
    {
        _process.Kill(entireProcessTree: true); // SIGKILL: no graceful stop, no final checkpoint
        _process.WaitForExit();
    }

    public void Dispose()
    {
        Client.Dispose();
        if (!_process.HasExited)
        {
            Kill();
        }

        _process.Dispose();
    }

    private long Status(string field)
    {
        string line = File.ReadLines($"/proc/{_process.Id}/status").First(l => l.StartsWith(field, StringComparison.Ordinal));
        return long.Parse(line[field.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
