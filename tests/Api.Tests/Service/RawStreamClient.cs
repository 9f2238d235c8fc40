using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.Http.Connections.Client;
using Microsoft.Extensions.Logging.Abstractions;
using TrainingService.Api.Tests.Jobs;
using TrainingService.Contracts.Streaming;

namespace TrainingService.Api.Tests.Service;

/// <summary>
/// A hub client that speaks the JSON hub protocol over a bare connection and reads its transport only when asked.
/// Between reads it really stops consuming: the SignalR client would keep draining the transport into an unbounded
/// queue even while a handler blocks, so the server would never see a slow reader.
/// </summary>
internal sealed class RawStreamClient : IAsyncDisposable
{
    private const byte RecordSeparator = 0x1e;

    private readonly HttpConnection _connection;
    private readonly List<StreamEvent> _events = [];

    public RawStreamClient(TrainingServiceFactory factory) =>
        _connection = new HttpConnection(
            new HttpConnectionOptions
            {
                Url = new Uri(factory.Server.BaseAddress, "/hubs/training"),
                Transports = HttpTransportType.LongPolling,
                HttpMessageHandlerFactory = _ => factory.Server.CreateHandler(),
                AccessTokenProvider = () => Task.FromResult<string?>(TrainingServiceFactory.AdminKey),
                TransportMaxBufferSize = 4096, // the poll loop stops soon after the reader does
            },
            NullLoggerFactory.Instance);

    public IReadOnlyList<StreamEvent> Events => _events;

    public async Task StartAsync()
    {
        await _connection.StartAsync(TransferFormat.Text);
        await WriteAsync("""{"protocol":"json","version":1}""");
    }

    public Task SubscribeAsync(Guid jobId, long afterSeq) =>
        WriteAsync($$"""{"type":1,"invocationId":"1","target":"Subscribe","arguments":["{{jobId}}",{{afterSeq}}]}""");

    /// <summary>Reads the transport until <paramref name="done"/> holds for the events received so far.</summary>
    public async Task ReadUntilAsync(Func<IReadOnlyList<StreamEvent>, bool> done, TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        PipeReader input = _connection.Transport.Input;
        while (!done(_events))
        {
            ReadResult result;
            try
            {
                result = await input.ReadAsync(cancel.Token);
            }
            catch (OperationCanceledException)
            {
                Assert.Fail($"timed out after {timeout}; received {_events.Count} events, last seq {_events.LastOrDefault()?.Seq}");
                throw;
            }

            ReadOnlySequence<byte> buffer = result.Buffer;
            while (buffer.PositionOf(RecordSeparator) is SequencePosition end)
            {
                Handle(buffer.Slice(0, end));
                buffer = buffer.Slice(buffer.GetPosition(1, end));
            }

            input.AdvanceTo(buffer.Start, buffer.End);
            Assert.False(result.IsCompleted && !done(_events), $"the connection closed after {_events.Count} events");
        }
    }

    public async ValueTask DisposeAsync() => await _connection.DisposeAsync();

    private async Task WriteAsync(string json)
    {
        await _connection.Transport.Output.WriteAsync(Encoding.UTF8.GetBytes(json + (char)RecordSeparator));
    }

    private void Handle(ReadOnlySequence<byte> record)
    {
        using JsonDocument message = JsonDocument.Parse(record);
        JsonElement root = message.RootElement;
        Assert.False(root.TryGetProperty("error", out JsonElement error), $"the server sent an error: {error}");
        if (root.TryGetProperty("type", out JsonElement type) && type.GetInt32() == 1 && root.GetProperty("target").GetString() == nameof(ITrainingClient.Events))
        {
            _events.AddRange(root.GetProperty("arguments")[1].Deserialize<List<StreamEvent>>(JobHarness.Json)!);
        }
    }
}
