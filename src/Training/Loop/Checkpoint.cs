using System.Text.Json;
using TorchSharp.Modules;
using TrainingService.Training.Models;
using static TorchSharp.torch;

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

    public static TrainingPosition Load(string path, SpecModel model, OptimizerHelper optimizer)
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
        optimizer.load_state_dict(reader);
        return position;
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
