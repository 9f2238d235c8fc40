using Microsoft.Extensions.DependencyInjection;
using TrainingService.Api.Streaming;
using TrainingService.Contracts.Training;

namespace TrainingService.Api.Tests.Service;

/// <summary>A checkpoint may only follow events that are in the history: a lost event makes every later flush fail.</summary>
public sealed class EventLossTests
{
    [Fact]
    public async Task AFlushAfterAnEventWasPublishedToAStoppedPumpFails()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        _ = factory.Server;
        EventPump pump = factory.Services.GetServices<Microsoft.Extensions.Hosting.IHostedService>().OfType<EventPump>().Single();
        await pump.FlushAsync(); // running: nothing lost, the flush completes

        await pump.StopAsync(CancellationToken.None);
        await pump.FlushAsync(); // stopped with nothing lost: still fine

        pump.Publish(Guid.NewGuid(), new StepEvent { Step = 1, Epoch = 1, Loss = 1 }.ToStream() with { Seq = 1 });
        IOException error = await Assert.ThrowsAsync<IOException>(pump.FlushAsync);
        Assert.Contains("previous checkpoint", error.Message, StringComparison.Ordinal);
    }
}
