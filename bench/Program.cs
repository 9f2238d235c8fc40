using TrainingService.Contracts.Training;
using TrainingService.Training.Data;
using TrainingService.Training.Loop;
using TrainingService.Training.Specs;

var data = ShapesDataset.Generate(new ShapesOptions { Classes = 4, Samples = 4000, TestSamples = 500 });
var analysis = SpecAnalyzer.Analyze(ModelPresets.LeNet5(classes: 4));
var sink = new PrintSink();
using var trainer = new Trainer(analysis, data, new Hyperparameters { Epochs = 3, LearningRate = 0.05 }, new MonitoringOptions { StatsEvery = 10 }, sink);
var sw = System.Diagnostics.Stopwatch.StartNew();
using var control = new TrainingControl();
Console.WriteLine(trainer.Run(control, CancellationToken.None));
Console.WriteLine(sw.Elapsed);

sealed class PrintSink : ITrainingSink
{
    public void Publish(TrainingEvent e)
    {
        if (e is StepEvent s && (s.Step % 20 == 1)) Console.WriteLine($"{s.Seq} step {s.Step} loss {s.Loss:F4} lr {s.LearningRate} sps {s.SamplesPerSecond:F0}");
        else if (e is LayersEvent l && l.Step == 20) Console.WriteLine(System.Text.Json.JsonSerializer.Serialize(l)[..600]);
        else if (e is not StepEvent and not LayersEvent) Console.WriteLine(System.Text.Json.JsonSerializer.Serialize(e));
    }
}
