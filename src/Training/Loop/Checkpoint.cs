using System.Text.Json;
using TorchSharp.Modules;
using TrainingService.Training.Models;
using static TorchSharp.torch;
using static TorchSharp.torch.optim;

namespace TrainingService.Training.Loop;

/// <summary>Where a run stands: enough, with the weights and optimiser state, to continue it exactly.</summary>
public sealed record TrainingPosition
{
    /// <summary>The epoch in progress, from 1.</summary>
    public int Epoch { get; init; } = 1;

    /// <summary>Batches of <see cref="Epoch"/> already done.</summary>
    public int BatchInEpoch { get; init; }

    /// <summary>Steps done over the whole run.</summary>
    public long Step { get; init; }

    /// <summary>The seq of the last event this checkpoint covers (the sink's numbering).</summary>
    public long Seq { get; init; }

    public double EpochLossSum { get; init; }

    public long EpochCorrect { get; init; }

    public long EpochSeen { get; init; }

    public double? BestValidationAccuracy { get; init; }

    /// <summary>Hyperparameters a person changed during the run (null: as the job was created).</summary>
    public double? LearningRate { get; init; }

    public double? Momentum { get; init; }

    public double? WeightDecay { get; init; }

    /// <summary>The job's own generator's state, so a resumed run draws what the uninterrupted one would have.</summary>
    public byte[] GeneratorState { get; init; } = [];
}

/// <summary>One file: a header, the position as JSON, the weights and the optimiser state; replaced atomically.</summary>
public static class Checkpoint
{
    private const string Magic = "TrainingService.Checkpoint/1";

    /// <param name="beforeReplace">Called once the new checkpoint is complete on disk, before it replaces the last one: throws to keep the last one.</param>
    public static void Save(string path, TrainingPosition position, SpecModel model, OptimizerHelper optimizer, Action? beforeReplace = null)
    {
        string temp = path + ".tmp";
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        using (var writer = new BinaryWriter(stream))
        {
            writer.Write(Magic);
            writer.Write(JsonSerializer.Serialize(position));
            model.save(writer);
            optimizer.save_state_dict(writer);
            writer.Flush();
            stream.Flush(flushToDisk: true);
        }

        try
        {
            beforeReplace?.Invoke();
        }
        catch
        {
            File.Delete(temp);
            throw;
        }

        File.Move(temp, path, overwrite: true);
    }

    /// <param name="optimizer">The optimizer over the model's <see cref="FlatParameters"/>.</param>
    /// <param name="perParameter">
    /// Makes an optimizer of the same kind over the model's parameter tensors one by one: the layout of checkpoints
    /// written before the parameters were flat (one optimizer state per tensor), read into it and then joined.
    /// </param>
    public static TrainingPosition Load(string path, SpecModel model, OptimizerHelper optimizer, Func<OptimizerHelper> perParameter)
    {
        using var stream = File.OpenRead(path);
        using var reader = new BinaryReader(stream);
        string magic = reader.ReadString();
        if (magic != Magic)
        {
            throw new InvalidDataException($"{path} is not a TrainingService checkpoint (header \"{magic}\")");
        }

        TrainingPosition position = JsonSerializer.Deserialize<TrainingPosition>(reader.ReadString())
            ?? throw new InvalidDataException($"{path}: empty position");
        model.load(reader);
        long optimizerAt = stream.Position;
        OptimizerState flat = optimizer.state_dict().State.Single();
        OptimizerHelper? perTensor = null;
        try
        {
            List<OptimizerState> parts;
            try
            {
                optimizer.load_state_dict(reader); // a one-tensor model's older checkpoint loads here too, in that tensor's shape
                parts = [flat];
            }
            catch (ArgumentException) // "different number of states", read before any state: the per-tensor layout
            {
                stream.Position = optimizerAt;
                perTensor = perParameter();
                perTensor.load_state_dict(reader);
                parts = perTensor.state_dict().State;
            }

            Join(flat, parts);
        }
        finally
        {
            perTensor?.Dispose();
        }

        return position;
    }

    /// <summary>Sets <paramref name="flat"/>'s state to the states of the parameter tensors it joins, each flattened, in order.</summary>
    private static void Join(OptimizerState flat, List<OptimizerState> parts)
    {
        switch (flat)
        {
            case SGD.State sgd:
                Replace(ref sgd.momentum_buffer, Cat(parts.Cast<SGD.State>().Select(p => p.momentum_buffer)));
                break;
            case Adam.State adam:
                JoinMoments(ref adam.step, ref adam.exp_avg, ref adam.exp_avg_sq, ref adam.max_exp_avg_sq,
                    [.. parts.Cast<Adam.State>().Select(p => (p.step, p.exp_avg, p.exp_avg_sq, p.max_exp_avg_sq))]);
                break;
            case AdamW.State adamW: // the same fields as Adam's, in a type of its own
                JoinMoments(ref adamW.step, ref adamW.exp_avg, ref adamW.exp_avg_sq, ref adamW.max_exp_avg_sq,
                    [.. parts.Cast<AdamW.State>().Select(p => (p.step, p.exp_avg, p.exp_avg_sq, p.max_exp_avg_sq))]);
                break;
            default:
                throw new InvalidDataException($"no layout known for the state of {flat.GetType()}");
        }
    }

    private static void JoinMoments(ref long step, ref Tensor expAvg, ref Tensor expAvgSq, ref Tensor maxExpAvgSq,
        (long Step, Tensor? ExpAvg, Tensor? ExpAvgSq, Tensor? MaxExpAvgSq)[] parts)
    {
        step = parts[0].Step; // one count for every tensor: they were all stepped together
        Replace(ref expAvg, Cat(parts.Select(p => p.ExpAvg)));
        Replace(ref expAvgSq, Cat(parts.Select(p => p.ExpAvgSq)));
        Replace(ref maxExpAvgSq, Cat(parts.Select(p => p.MaxExpAvgSq)));
    }

    /// <summary>The tensors flattened and joined end to end; null while any is not made yet (SGD's momentum before the first step).</summary>
    private static Tensor? Cat(IEnumerable<Tensor?> tensors)
    {
        Tensor?[] all = [.. tensors];
        if (all.Any(t => t is null))
        {
            return null;
        }

        using (NewDisposeScope())
        using (no_grad())
        {
            return cat([.. all.Select(t => t!.reshape(-1))], 0).DetachFromDisposeScope(); // the optimizer's for good, not a caller's scope's
        }
    }

    private static void Replace(ref Tensor field, Tensor? value)
    {
        if (ReferenceEquals(field, value))
        {
            return;
        }

        field?.Dispose();
        field = value!;
    }

    /// <summary>A generator's state as bytes.</summary>
    internal static byte[] StateOf(Generator generator)
    {
        using Tensor state = generator.get_state();
        return state.bytes.ToArray();
    }

    /// <summary>Puts back a state from <see cref="StateOf"/> (none saved: left as it is).</summary>
    internal static void Restore(Generator generator, byte[] state)
    {
        if (state.Length == 0)
        {
            return;
        }

        using Tensor saved = tensor(state, ScalarType.Byte);
        generator.set_state(saved);
    }
}
