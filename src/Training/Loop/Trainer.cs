using System.Diagnostics;
using TorchSharp;
using TorchSharp.Modules;
using TrainingService.Contracts.Training;
using TrainingService.Training.Data;
using TrainingService.Training.Models;
using TrainingService.Training.Monitoring;
using TrainingService.Training.Native;
using static TorchSharp.torch;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace TrainingService.Training.Loop;

/// <summary>Where a trainer keeps its checkpoint, and how often it writes one besides pauses and shutdown.</summary>
public sealed record TrainerOptions
{
    /// <summary>The checkpoint file; null: no checkpoints (a stopped run cannot resume).</summary>
    public string? CheckpointPath { get; init; }

    /// <summary>Write a checkpoint every this many steps (0: only at epoch ends, pauses and shutdown).</summary>
    public int CheckpointEverySteps { get; init; }

    /// <summary>
    /// Where to save the trained weights (TorchSharp's format) before the run reports Succeeded; null: not saved. When
    /// set, a run that succeeds deletes its checkpoint once Succeeded is durable.
    /// </summary>
    public string? WeightsPath { get; init; }

    /// <summary>Values per layer output summarised by the layer statistics (larger outputs are sampled).</summary>
    public int StatsSampleSize { get; init; } = 4096;

    /// <summary>Where to keep the latest <see cref="VisualSnapshot"/> (epoch ends and on request); null: none.</summary>
    public string? VisualsPath { get; init; }

    /// <summary>
    /// The second thread for training in halves, kept by a caller that trains job after job (not disposed by the
    /// Trainer); null: the Trainer starts its own when it trains in halves, and ends it when disposed.
    /// </summary>
    public HalfBatches? Halves { get; init; }
}

/// <summary>
/// Trains a spec on a dataset, synchronously on the calling thread, reporting every step to a sink.
/// One dispose scope per step keeps native memory flat; statistics are read from tensor memory on the host.
/// </summary>
public sealed class Trainer : IDisposable
{
    private readonly TrainingPlan _plan;
    private readonly ImageDataset _data;
    private Hyperparameters _hp; // a person may change the learning rate, momentum and weight decay as it runs
    private readonly MonitoringOptions _monitoring;
    private readonly ITrainingSink _sink;
    private readonly TrainerOptions _options;
    private readonly SpecModel _model;
    private readonly FlatParameters _flat;
    private readonly OptimizerHelper _optimizer;
    private readonly StatsCollector? _stats;
    private readonly Diagnostics? _diagnostics;
    private readonly SanityOptions? _sanity;
    private readonly RangeTest? _rangeTest;
    private readonly HalfBatches? _halves; // with 2+ threads and a model whose layers split by batch: each step in two halves at once
    private readonly Tensor _images;
    private readonly Tensor _labels;
    private readonly Tensor _scale;
    private readonly Tensor _shift;
    private readonly int[] _trainIndices;
    private readonly int[] _validationIndices;
    private readonly Tensor? _testImages;
    private readonly Tensor? _testLabels;
    private readonly AugmentationOptions? _augmentation;
    private TrainingPosition _position = new();
    private StepEvent? _lastStep;

    public Trainer(TrainingPlan plan, ImageDataset data, ITrainingSink sink, TrainerOptions? options = null)
    {
        if (DatasetShape.Of(data) != plan.Dataset)
        {
            throw new ArgumentException($"the plan is for dataset {plan.Dataset} but this is {DatasetShape.Of(data)}", nameof(data));
        }

        _plan = plan;
        NativeTuning.Apply();
        _data = data;
        _options = options ?? new TrainerOptions();
        _sanity = plan.Sanity;
        _hp = plan.Hyperparameters;
        _monitoring = plan.Monitoring;
        _sink = sink;
        _model = new SpecModel(plan.Model, (ulong)_hp.Seed); // its own generator: seeded from the job's seed, saved in checkpoints
        _flat = FlatParameters.Of(_model);
        _optimizer = CreateOptimizer([_flat.All], _hp);
        _stats = _monitoring.StatsEvery > 0 ? new StatsCollector(_model, _options.StatsSampleSize, _hp.Seed) : null;
        _diagnostics = _sanity is null && _monitoring.Diagnostics is { Enabled: true } diagnostics ? new Diagnostics(diagnostics, data.Classes, _hp.LearningRate) : null;

        _images = Pixels(data.Train, data);
        _labels = tensor(data.Train.Labels, ScalarType.Byte).to(ScalarType.Int64);
        _scale = tensor(data.Std.Select(s => 1f / (255f * s)).ToArray()).reshape(1, data.Channels, 1, 1);
        _shift = tensor(data.Mean.Zip(data.Std, (m, s) => -m / s).ToArray()).reshape(1, data.Channels, 1, 1);

        int validation = plan.ValidationCount;
        int[] all = [.. Enumerable.Range(0, data.Train.Count)];
        new Random(_hp.Seed).Shuffle(all);
        _validationIndices = all[..validation];
        _trainIndices = _sanity?.Check == SanityCheck.OverfitSubset ? BalancedSubset(all, data.Train.Labels, _hp.BatchSize) : all[validation..];
        if (plan.ValidateOnTest)
        {
            ImageSplit test = data.Test!;
            _testImages = Pixels(test, data);
            _testLabels = tensor(test.Labels, ScalarType.Byte).to(ScalarType.Int64);
        }

        _augmentation = _hp.Augmentation is { IsOn: true } augmentation ? augmentation : null;
        _rangeTest = _sanity?.Check == SanityCheck.LearningRateRangeTest ? new RangeTest(_sanity) : null;
        if (plan.Threads >= 2 && _model.Plan.All(layer => layer.Kind.SplitsByBatch))
        {
            _halves = _options.Halves ?? new HalfBatches();
            _halves.Threads = plan.Threads / 2;
        }
    }

    /// <summary>The job's thread's intra-op threads while it trains: all the job's, or what the other half leaves.</summary>
    private int StepThreads => _halves is null ? _plan.Threads : _plan.Threads - (_plan.Threads / 2);

    /// <summary>
    /// The split's pixels as an N×C×H×W uint8 tensor over the dataset's own array, pinned while the tensor lives and
    /// never written to: torch.tensor(byte[]) would clone it into a second managed array (45 MB for Fashion-MNIST) that
    /// stays resident after the job until a full collection.
    /// </summary>
    private static Tensor Pixels(ImageSplit split, ImageDataset data)
    {
        long[] shape = [split.Count, data.Channels, data.Height, data.Width];
        if (split.Images.Length == 0)
        {
            return empty(shape, ScalarType.Byte);
        }

        using Tensor flat = frombuffer(split.Images, ScalarType.Byte);
        return flat.view(shape);
    }

    /// <summary>Up to <paramref name="count"/> samples, taking the classes in turn so each is there.</summary>
    private static int[] BalancedSubset(int[] shuffled, byte[] labels, int count)
    {
        var byClass = shuffled.GroupBy(i => labels[i]).OrderBy(g => g.Key).Select(g => new Queue<int>(g)).ToList();
        var subset = new List<int>(count);
        while (subset.Count < count && byClass.Any(q => q.Count > 0))
        {
            foreach (Queue<int> q in byClass.Where(q => q.Count > 0))
            {
                if (subset.Count < count)
                {
                    subset.Add(q.Dequeue());
                }
            }
        }

        return [.. subset];
    }

    public SpecModel Model => _model;

    public TrainingPosition Position => _position;

    public TrainingPlan Plan => _plan;

    /// <summary>Whether each step's batch trains as two halves at once (<see cref="HalfBatches"/>).</summary>
    internal bool TrainsInHalves => _halves is not null;

    /// <summary>Continue from a checkpoint written by a trainer of the same spec, data and hyperparameters.</summary>
    public void RestoreFrom(string checkpointPath)
    {
        _position = Checkpoint.Load(checkpointPath, _model, _optimizer, () => CreateOptimizer(_model.parameters(), _hp));
        SetHyperparameters(_position.LearningRate ?? _hp.LearningRate, _position.Momentum ?? _hp.Momentum, _position.WeightDecay ?? _hp.WeightDecay);
    }

    /// <summary>Trains until done, cancelled by <paramref name="control"/>, or interrupted by <paramref name="stop"/> (host shutdown).</summary>
    public TrainingOutcome Run(TrainingControl control, CancellationToken stop)
    {
        // libtorch's intra-op thread count belongs to the calling thread once that thread has read it (a first read
        // would otherwise reset it to the last count set by any thread): read, then set this job's own.
        _ = get_num_threads();
        set_num_threads(StepThreads);
        Checkpoint.Restore(_model.Generator, _position.GeneratorState);
        Emit(new StateEvent { State = RunState.Running, Reason = _position.Step == 0 ? null : $"resumed at step {_position.Step}" });
        long lastTick = Stopwatch.GetTimestamp();
        while (_position.Epoch <= _hp.Epochs)
        {
            _model.train();
            int[] order = EpochOrder(_position.Epoch);
            while (_position.BatchInEpoch < _plan.StepsPerEpoch)
            {
                if (stop.IsCancellationRequested)
                {
                    CheckpointThen(new StateEvent { State = RunState.Queued, Reason = $"stopped with the service at step {_position.Step}; it resumes from its checkpoint" });
                    return TrainingOutcome.Interrupted;
                }

                if (control.PauseRequested && !control.CancelRequested)
                {
                    CheckpointThen(new StateEvent { State = RunState.Paused, Reason = control.PauseReason, Code = control.PauseCode });
                    if (control.PauseEndsRun)
                    {
                        return TrainingOutcome.Paused; // the checkpoint holds everything; a later run continues from it
                    }

                    if (!control.WaitWhilePaused(stop))
                    {
                        return TrainingOutcome.Interrupted;
                    }

                    if (!control.CancelRequested && !control.FinishRequested)
                    {
                        Emit(new StateEvent { State = RunState.Running, Reason = "resumed" });
                    }

                    lastTick = Stopwatch.GetTimestamp();
                }

                if (control.CancelRequested)
                {
                    Emit(new StateEvent { State = RunState.Cancelled, Reason = control.CancelReason ?? "cancelled by request", Code = control.CancelCode });
                    return TrainingOutcome.Cancelled;
                }

                // Changes first: one asked for before a finish is applied and recorded, even if no step follows it.
                while (control.TryTakeChange(out HyperparameterChange change))
                {
                    Change(change);
                }

                if (control.FinishRequested)
                {
                    if (_position.BatchInEpoch > 0)
                    {
                        EndEpoch(); // the partial epoch's figures and validation, like any epoch's
                    }

                    return Complete($"finished early at step {_position.Step} by request");
                }

                if (control.TakeSnapshotRequest())
                {
                    Snapshot();
                }

                int start = _position.BatchInEpoch * _hp.BatchSize;
                int[] batch = order[start..Math.Min(start + _hp.BatchSize, order.Length)];
                Step(batch, ref lastTick);
                if (Sanity() is { } verdict)
                {
                    Emit(verdict);
                    return Complete(null, saveWeights: _rangeTest is null);
                }

                if (_diagnostics?.Failure is { } failure)
                {
                    // No checkpoint: the last one, from before the failure, is the one to resume or inspect.
                    Emit(new StateEvent { State = RunState.Failed, Reason = failure });
                    return TrainingOutcome.Failed;
                }

                if (_options.CheckpointEverySteps > 0 && _position.Step % _options.CheckpointEverySteps == 0)
                {
                    SaveCheckpoint();
                }
            }

            EndEpoch();
            lastTick = Stopwatch.GetTimestamp();
        }

        if (_sanity is not null)
        {
            Emit(Sanity(final: true)!);
            return Complete(null, saveWeights: _rangeTest is null);
        }

        return Complete(null);
    }

    /// <summary>The sanity check's verdict once it has one (or, at the end, whatever it has).</summary>
    private SanityEvent? Sanity(bool final = false)
    {
        if (_sanity is null)
        {
            return null;
        }

        StepEvent last = _lastStep!;
        if (_rangeTest is not null)
        {
            if (final)
            {
                return _rangeTest.Verdict(last.Step);
            }

            _rangeTest.Add(last.LearningRate, last.Loss);
            return _rangeTest.Done || final || last.Step >= _sanity.Steps ? _rangeTest.Verdict(last.Step) : null;
        }

        bool passed = last.Loss < _sanity.TargetLoss;
        if (!passed && !final && last.Step < _sanity.MaxSteps)
        {
            return null;
        }

        return new SanityEvent
        {
            Check = SanityCheck.OverfitSubset,
            Passed = passed,
            Step = last.Step,
            Message = passed
                ? $"The model learnt {_hp.BatchSize} samples by heart: the loss reached {last.Loss:G3} (below {_sanity.TargetLoss:G2}) at step {last.Step}. Model, loss and labels work together; now train on everything."
                : $"After {last.Step} steps on {_hp.BatchSize} samples the loss is still {last.Loss:G3} (target {_sanity.TargetLoss:G2}). A model that cannot memorise 20 images has a bug (labels, loss, data, a layer cutting the signal) or too small a learning rate ({_hp.LearningRate:G3}).",
        };
    }

    private TrainingOutcome Complete(string? reason, bool saveWeights = true)
    {
        if (saveWeights && _options.WeightsPath is { } weights)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(weights))!);
            _model.save(weights + ".tmp");
            _sink.BeforeReplacingFiles();
            File.Move(weights + ".tmp", weights, overwrite: true);
        }

        Emit(new StateEvent { State = RunState.Succeeded, Reason = reason });
        DropCheckpoint();
        return TrainingOutcome.Succeeded;
    }

    /// <summary>
    /// A run that succeeded keeps only its weights: the checkpoint (weights again, optimiser state, position) goes once
    /// Succeeded is durable, never before, so a crash in between still resumes from it.
    /// </summary>
    private void DropCheckpoint()
    {
        if (_options.WeightsPath is null || _options.CheckpointPath is not { } checkpoint || !File.Exists(checkpoint))
        {
            return;
        }

        try
        {
            _sink.Flush();
            File.Delete(checkpoint);
        }
        catch (IOException)
        {
            // Kept: the service's start-up sweep removes a succeeded job's checkpoint.
        }
    }

    /// <summary>A person's change, applied between steps and recorded (and checkpointed) so the history says when.</summary>
    private void Change(HyperparameterChange change)
    {
        SetHyperparameters(change.LearningRate ?? _hp.LearningRate, change.Momentum ?? _hp.Momentum, change.WeightDecay ?? _hp.WeightDecay);
        _position = _position with { LearningRate = _hp.LearningRate, Momentum = _hp.Momentum, WeightDecay = _hp.WeightDecay };
        Emit(new HyperparametersEvent
        {
            Step = _position.Step,
            LearningRate = _hp.LearningRate,
            Momentum = _hp.Momentum,
            WeightDecay = _hp.WeightDecay,
            Reason = change.Reason,
        });
    }

    private void SetHyperparameters(double learningRate, double momentum, double weightDecay)
    {
        _hp = _hp with { LearningRate = learningRate, Momentum = momentum, WeightDecay = weightDecay };
        _diagnostics?.SetBaseLearningRate(learningRate);
        foreach (ParamGroup group in _optimizer.ParamGroups)
        {
            switch (group.Options)
            {
                case SGD.Options sgd:
                    sgd.momentum = momentum;
                    sgd.weight_decay = weightDecay;
                    break;
                case Adam.Options adam:
                    adam.weight_decay = weightDecay;
                    break;
                case AdamW.Options adamW:
                    adamW.weight_decay = weightDecay;
                    break;
            }
        }
    }

    public void Dispose()
    {
        if (_halves is not null && _halves != _options.Halves)
        {
            _halves.Dispose();
        }
        else
        {
            _halves?.Release(); // the caller's thread lives on: the last step's tensors go now, before the model
        }

        _model.Dispose();
        _optimizer.Dispose();
        _flat.Dispose();
        _images.Dispose();
        _labels.Dispose();
        _scale.Dispose();
        _shift.Dispose();
        _testImages?.Dispose();
        _testLabels?.Dispose();
    }

    private void Step(int[] batch, ref long lastTick)
    {
        long step = _position.Step + 1;
        double learningRate = _rangeTest?.LearningRate(step) ?? LearningRateSchedule.At(_hp, _position.Epoch, step, _plan.TotalSteps);
        foreach (ParamGroup group in _optimizer.ParamGroups)
        {
            group.LearningRate = learningRate;
        }

        bool collect = _stats is not null && step % _monitoring.StatsEvery == 0;
        float loss;
        long correct;
        LayersEvent? layers = null;
        using (NewDisposeScope())
        {
            (Tensor x, Tensor y) = TrainingBatch(batch, _position.Epoch);
            _optimizer.zero_grad();
            if (collect)
            {
                _stats!.BeginForward();
            }

            if (_halves is not null && batch.Length >= 2)
            {
                (loss, correct) = ForwardBackwardInHalves(x, y, batch, _model.LayerOutputObserver);
            }
            else
            {
                Tensor logits = _model.call(x);
                Tensor lossTensor = nn.functional.cross_entropy(logits, y);
                lossTensor.backward();
                loss = lossTensor.item<float>();
                correct = CountCorrect(logits, _data.Train.Labels, batch);
            }

            if (collect)
            {
                _stats!.BeforeUpdate();
            }

            _optimizer.step();
            if (collect)
            {
                layers = _stats!.AfterUpdate(step);
            }
        }

        long now = Stopwatch.GetTimestamp();
        double seconds = Stopwatch.GetElapsedTime(lastTick, now).TotalSeconds;
        lastTick = now;
        _position = _position with
        {
            Step = step,
            BatchInEpoch = _position.BatchInEpoch + 1,
            EpochLossSum = _position.EpochLossSum + ((double)loss * batch.Length),
            EpochCorrect = _position.EpochCorrect + correct,
            EpochSeen = _position.EpochSeen + batch.Length,
        };
        _lastStep = new StepEvent
        {
            Epoch = _position.Epoch,
            Step = step,
            Loss = loss,
            LearningRate = learningRate,
            SamplesPerSecond = seconds > 0 ? batch.Length / seconds : 0,
        };
        Emit(_lastStep);
        if (layers is not null)
        {
            Emit(layers);
        }

        if (_diagnostics is not null)
        {
            EmitAll(_diagnostics.OnStep(step, loss, learningRate));
            if (layers is not null && _diagnostics.Failure is null)
            {
                EmitAll(_diagnostics.OnLayers(layers, _stats!.ActiveUnits, learningRate));
            }
        }
    }

    /// <summary>
    /// The step's forward and backward passes as two halves at once (<see cref="HalfBatches"/>), the second on the other
    /// thread. Each half's loss is its cross-entropy summed and divided by the whole batch's size, so the two add up to
    /// the batch's mean and autograd's sum of their gradients is the batch's gradient. The layer outputs that
    /// <paramref name="observe"/> is to see are each half's joined back into the batch's, in order, once both are done.
    /// </summary>
    private (float Loss, long Correct) ForwardBackwardInHalves(Tensor x, Tensor y, int[] batch, Action<int, Tensor>? observe)
    {
        int n = batch.Length, half = n / 2;
        Tensor[]? first = observe is null ? null : new Tensor[_model.Plan.Count];
        Tensor[]? second = observe is null ? null : new Tensor[_model.Plan.Count];
        Tensor x2 = x.narrow(0, half, n - half), y2 = y.narrow(0, half, n - half);
        float loss2 = 0;
        long correct2 = 0;
        _halves!.Start(() =>
        {
            (loss2, correct2) = HalfPass(x2, y2, n, batch.AsSpan(half), second);
        });
        float loss1;
        long correct1;
        try
        {
            (loss1, correct1) = HalfPass(x.narrow(0, 0, half), y.narrow(0, 0, half), n, batch.AsSpan(0, half), first);
        }
        catch
        {
            _halves.Wait(rethrow: false); // never leave the other half running on tensors about to be freed
            throw;
        }

        _halves.Wait();
        if (observe is not null)
        {
            for (int i = 0; i < first!.Length; i++)
            {
                observe(i, cat([first[i], second![i]], 0));
            }
        }

        return (loss1 + loss2, correct1 + correct2);
    }

    private (float Loss, long Correct) HalfPass(Tensor x, Tensor y, int batchSize, ReadOnlySpan<int> samples, Tensor[]? outputs)
    {
        Tensor logits = _model.Observed(x, outputs is null ? null : (i, output) => outputs[i] = output);
        Tensor loss = nn.functional.cross_entropy(logits, y, reduction: nn.Reduction.Sum).div_(batchSize);
        loss.backward();
        return (loss.item<float>(), CountCorrect(logits, _data.Train.Labels, samples));
    }

    private void EmitAll(List<AlertEvent> alerts)
    {
        foreach (AlertEvent alert in alerts)
        {
            Emit(alert);
        }
    }

    private void EndEpoch()
    {
        (double? validationLoss, double? validationAccuracy) = Evaluate();
        double? best = validationAccuracy is { } accuracy
            ? Math.Max(accuracy, _position.BestValidationAccuracy ?? double.MinValue)
            : _position.BestValidationAccuracy;
        var epoch = new EpochEvent
        {
            Epoch = _position.Epoch,
            TrainLoss = _position.EpochSeen > 0 ? _position.EpochLossSum / _position.EpochSeen : double.NaN,
            TrainAccuracy = _position.EpochSeen > 0 ? (double)_position.EpochCorrect / _position.EpochSeen : double.NaN,
            ValidationLoss = validationLoss,
            ValidationAccuracy = validationAccuracy,
        };
        Emit(epoch);
        if (_diagnostics is not null)
        {
            EmitAll(_diagnostics.OnEpoch(epoch, _position.Step, LearningRateSchedule.At(_hp, _position.Epoch, _position.Step, _plan.TotalSteps)));
        }

        _position = _position with
        {
            Epoch = _position.Epoch + 1,
            BatchInEpoch = 0,
            EpochLossSum = 0,
            EpochCorrect = 0,
            EpochSeen = 0,
            BestValidationAccuracy = best,
        };
        if (_sanity is null)
        {
            SaveCheckpoint();
            Snapshot();
        }
    }

    /// <summary>Filters and feature maps of the probe images, saved for the API and announced by a snapshot event.</summary>
    private void Snapshot()
    {
        if (_options.VisualsPath is not { } path || _sanity is not null)
        {
            return;
        }

        // At an epoch's end the position has already moved to the next epoch; mid-epoch (on request) it is this one.
        int epoch = Math.Max(1, _position.Epoch - (_position.BatchInEpoch == 0 ? 1 : 0));
        using (NewDisposeScope())
        {
            int[] probes = [.. Enumerable.Range(0, Math.Min(VisualSnapshot.ProbeCount, _data.Train.Count))];
            (Tensor x, _) = Batch(_images, _labels, probes);
            VisualSnapshot.Take(_model, x, _position.Step, epoch).Save(path);
        }

        Emit(new SnapshotEvent { Step = _position.Step, Epoch = epoch });
    }

    /// <summary>Mean loss and accuracy over the validation samples, in evaluation mode; nulls when there are none.</summary>
    public (double? Loss, double? Accuracy) Evaluate()
    {
        (Tensor images, Tensor labels, int[] indices) = _plan.ValidateOnTest
            ? (_testImages!, _testLabels!, Enumerable.Range(0, _data.Test!.Count).ToArray())
            : (_images, _labels, _validationIndices);
        if (indices.Length == 0)
        {
            return (null, null);
        }

        _model.eval();
        double lossSum = 0;
        long correct = 0;
        // While the job trains in halves its thread has half the job's threads; evaluation, on this thread alone, takes
        // them all, and gives the caller's thread back its own count.
        int threads = get_num_threads();
        if (_halves is not null)
        {
            set_num_threads(_plan.Threads);
        }

        try
        {
            using (no_grad())
            {
                // In batches of the training batch's size: its tensors are the sizes each step already allocates, so
                // malloc gives evaluation the steps' memory back rather than growing its heap for larger ones.
                for (int start = 0; start < indices.Length; start += _hp.BatchSize)
                {
                    using var scope = NewDisposeScope();
                    int[] batch = indices[start..Math.Min(start + _hp.BatchSize, indices.Length)];
                    (Tensor x, Tensor y) = Batch(images, labels, batch);
                    Tensor logits = _model.call(x);
                    lossSum += nn.functional.cross_entropy(logits, y, reduction: nn.Reduction.Sum).item<float>();
                    correct += logits.argmax(1).eq(y).sum().item<long>();
                }
            }
        }
        finally
        {
            if (_halves is not null)
            {
                set_num_threads(threads);
            }
        }

        _model.train();
        return (lossSum / indices.Length, (double)correct / indices.Length);
    }

    /// <summary>Top-1 hits, read from the logits' memory: four torch ops a step fewer than argmax/eq/sum/item.</summary>
    private long CountCorrect(Tensor logits, byte[] labels, ReadOnlySpan<int> batch)
    {
        ReadOnlySpan<float> scores = TensorMemory.Floats(logits);
        int classes = _data.Classes;
        long correct = 0;
        for (int i = 0; i < batch.Length; i++)
        {
            correct += TensorPrimitives.IndexOfMax(scores.Slice(i * classes, classes)) == labels[batch[i]] ? 1 : 0;
        }

        return correct;
    }

    private (Tensor X, Tensor Y) Batch(Tensor images, Tensor labels, int[] batch)
    {
        using Tensor index = tensor(batch, ScalarType.Int32).to(ScalarType.Int64);
        Tensor x = images.index_select(0, index).to(ScalarType.Float32).mul_(_scale).add_(_shift);
        Tensor y = labels.index_select(0, index);
        return (x, y);
    }

    /// <summary>
    /// A training batch: with augmentation, the images augmented on their uint8 pixels straight into the batch tensor,
    /// then normalised like any batch. Validation, test and probe batches never come here.
    /// </summary>
    internal (Tensor X, Tensor Y) TrainingBatch(int[] batch, int epoch)
    {
        if (_augmentation is null)
        {
            return Batch(_images, _labels, batch);
        }

        Tensor pixels = empty([batch.Length, _data.Channels, _data.Height, _data.Width], ScalarType.Byte);
        Augmentation.ApplyToBatch(_data, batch, _augmentation, _hp.Seed, epoch, TensorMemory.Bytes(pixels));
        using Tensor index = tensor(batch, ScalarType.Int32).to(ScalarType.Int64);
        return (pixels.to(ScalarType.Float32).mul_(_scale).add_(_shift), _labels.index_select(0, index));
    }

    private int[] EpochOrder(int epoch)
    {
        int[] order = (int[])_trainIndices.Clone();
        new Random(unchecked((_hp.Seed * 7_919) + epoch)).Shuffle(order);
        return order;
    }

    private void SaveCheckpoint(int eventsAfter = 0)
    {
        if (_options.CheckpointPath is { } path)
        {
            TrainingMeter.Checkpoint(() => Checkpoint.Save(path, _position with
            {
                Seq = _sink.Flush() + eventsAfter, GeneratorState = Checkpoint.StateOf(_model.Generator),
            }, _model, _optimizer, _sink.BeforeReplacingFiles));
        }
    }

    /// <summary>
    /// A pause or a hand-back: the checkpoint first, then the state event, so whoever sees the job Paused or Queued
    /// finds its weights at this step (an export, a worker that claims it next). The checkpoint records the event's
    /// seq; a run stopped before the event was stored resumes with that seq, no gap (the sink numbers on from the
    /// history, which the checkpoint is then ahead of by one).
    /// </summary>
    private void CheckpointThen(StateEvent state)
    {
        SaveCheckpoint(eventsAfter: 1);
        Emit(state);
    }

    private void Emit(TrainingEvent trainingEvent) => _sink.Publish(trainingEvent);

    private static OptimizerHelper CreateOptimizer(IEnumerable<Parameter> parameters, Hyperparameters hp) => hp.Optimizer switch
    {
        OptimizerKind.Adam => optim.Adam(parameters, hp.LearningRate, weight_decay: hp.WeightDecay),
        OptimizerKind.AdamW => optim.AdamW(parameters, hp.LearningRate, weight_decay: hp.WeightDecay),
        _ => optim.SGD(parameters, hp.LearningRate, hp.Momentum, weight_decay: hp.WeightDecay, nesterov: hp.Nesterov),
    };
}
