using Microsoft.Extensions.DependencyInjection;
using TrainingService.Api.Persistence;
using TrainingService.Api.Streaming;
using TrainingService.Contracts.Training;

namespace TrainingService.Api.Tests.Service;

/// <summary>A checkpoint may only follow events that are in the history: a lost event fails that job's flushes until its next run.</summary>
public sealed class EventLossTests
{
    [Fact]
    public async Task AnEventLostByOneJobFailsThatJobsFlushesOnlyUntilItIsForgiven()
    {
        await using TrainingServiceFactory factory = ServiceHarness.Factory();
        _ = factory.Server;
        EventPump pump = factory.Services.GetServices<Microsoft.Extensions.Hosting.IHostedService>().OfType<EventPump>().Single();
        await pump.FlushAsync(); // running: nothing lost, the flush completes

        await pump.StopAsync(CancellationToken.None);
        await pump.FlushAsync(); // stopped with nothing lost: still fine

        Guid lost = Guid.NewGuid();
        var writer = new JobEventWriter(pump, lost, 0);
        writer.Publish(new StepEvent { Step = 1, Epoch = 1, Loss = 1 });
        EventsNotPersistedException error = await Assert.ThrowsAsync<EventsNotPersistedException>(writer.FlushAsync);
        Assert.Contains("previous checkpoint", error.Message, StringComparison.Ordinal);
        Assert.Throws<EventsNotPersistedException>(() => writer.Publish(new StepEvent { Step = 2, Epoch = 1, Loss = 1 })); // the run stops

        await new JobEventWriter(pump, Guid.NewGuid(), 0).FlushAsync(); // another job is not affected
        await pump.FlushAsync(); // nor is a flush of everything

        pump.Forgive(lost); // the job's next run
        await new JobEventWriter(pump, lost, 0).FlushAsync();
    }
}
