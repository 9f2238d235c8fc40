using TorchSharp;
using TorchSharp.Modules;
using TrainingService.Training.Models;
using TrainingService.Training.Native;
using TrainingService.Training.Specs;
using TrainingService.Training.Specs.Kinds;
using static TorchSharp.torch;

namespace TrainingService.Training.Monitoring;

/// <summary>One convolution layer's weights: <see cref="Filters"/> × <see cref="Channels"/> × <see cref="Height"/> × <see cref="Width"/>, row-major.</summary>
public sealed record FilterBank(string Layer, int Filters, int Channels, int Height, int Width, float[] Weights);

/// <summary>One convolution layer's output for one probe image: <see cref="Maps"/> × <see cref="Height"/> × <see cref="Width"/>.</summary>
public sealed record FeatureMaps(string Layer, int Maps, int Height, int Width, float[] Values);

/// <summary>
/// What the network sees, at one step: every convolution layer's filters, and every convolution layer's feature maps
/// for each probe image (the first <see cref="ProbeCount"/> training samples, as the dataset page shows them).
/// Taken on the training thread between steps (eval mode, no gradients, no random draws), kept as one file per job.
/// </summary>
public sealed class VisualSnapshot
{
    public const int ProbeCount = 16;
    private const string Magic = "TrainingService.Visuals/1";

    public required long Step { get; init; }

    public required int Epoch { get; init; }

    public required IReadOnlyList<FilterBank> Filters { get; init; }

    /// <summary>[probe][conv layer].</summary>
    public required IReadOnlyList<IReadOnlyList<FeatureMaps>> Probes { get; init; }

    /// <summary>Takes the snapshot; <paramref name="probes"/> are normalised images, N × C × H × W.</summary>
    public static VisualSnapshot Take(SpecModel model, Tensor probes, long step, int epoch)
    {
        int[] convs = [.. model.Plan.Where(p => p.Kind is Conv2dKind).Select(p => p.Index)];
        var filters = new List<FilterBank>();
        foreach (int index in convs)
        {
            LayerPlan plan = model.Plan[index];
            Parameter weight = model.named_parameters().First(p => p.name == $"{plan.Name}.weight").parameter;
            long[] shape = weight.shape;
            filters.Add(new FilterBank(plan.Name, (int)shape[0], (int)shape[1], (int)shape[2], (int)shape[3], TensorMemory.Floats(weight).ToArray()));
        }

        int n = (int)probes.shape[0];
        var maps = new List<FeatureMaps>[n];
        for (int i = 0; i < n; i++)
        {
            maps[i] = [];
        }

        bool training = model.training;
        model.eval();
        Action<int, Tensor>? previous = model.LayerOutputObserver;
        try
        {
            using var noGrad = no_grad();
            using var scope = NewDisposeScope();
            model.LayerOutputObserver = (index, output) =>
            {
                if (!convs.Contains(index))
                {
                    return;
                }

                long[] shape = output.shape; // N × K × H × W
                ReadOnlySpan<float> values = TensorMemory.Floats(output.contiguous());
                int each = (int)(shape[1] * shape[2] * shape[3]);
                for (int i = 0; i < n; i++)
                {
                    maps[i].Add(new FeatureMaps(model.Plan[index].Name, (int)shape[1], (int)shape[2], (int)shape[3], values.Slice(i * each, each).ToArray()));
                }
            };
            model.call(probes);
        }
        finally
        {
            model.LayerOutputObserver = previous;
            model.train(training);
        }

        return new VisualSnapshot { Step = step, Epoch = epoch, Filters = filters, Probes = maps };
    }

    public void Save(string path)
    {
        string temp = path + ".tmp";
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        using (var writer = new BinaryWriter(File.Create(temp)))
        {
            writer.Write(Magic);
            writer.Write(Step);
            writer.Write(Epoch);
            writer.Write(Filters.Count);
            foreach (FilterBank f in Filters)
            {
                writer.Write(f.Layer);
                writer.Write(f.Filters);
                writer.Write(f.Channels);
                writer.Write(f.Height);
                writer.Write(f.Width);
                Write(writer, f.Weights);
            }

            writer.Write(Probes.Count);
            foreach (IReadOnlyList<FeatureMaps> probe in Probes)
            {
                writer.Write(probe.Count);
                foreach (FeatureMaps m in probe)
                {
                    writer.Write(m.Layer);
                    writer.Write(m.Maps);
                    writer.Write(m.Height);
                    writer.Write(m.Width);
                    Write(writer, m.Values);
                }
            }
        }

        File.Move(temp, path, overwrite: true);
    }

    public static VisualSnapshot Load(string path)
    {
        using var reader = new BinaryReader(File.OpenRead(path));
        if (reader.ReadString() != Magic)
        {
            throw new InvalidDataException($"{path} is not a visual snapshot");
        }

        long step = reader.ReadInt64();
        int epoch = reader.ReadInt32();
        var filters = new FilterBank[reader.ReadInt32()];
        for (int i = 0; i < filters.Length; i++)
        {
            filters[i] = new FilterBank(reader.ReadString(), reader.ReadInt32(), reader.ReadInt32(), reader.ReadInt32(), reader.ReadInt32(), Read(reader));
        }

        var probes = new FeatureMaps[reader.ReadInt32()][];
        for (int p = 0; p < probes.Length; p++)
        {
            probes[p] = new FeatureMaps[reader.ReadInt32()];
            for (int i = 0; i < probes[p].Length; i++)
            {
                probes[p][i] = new FeatureMaps(reader.ReadString(), reader.ReadInt32(), reader.ReadInt32(), reader.ReadInt32(), Read(reader));
            }
        }

        return new VisualSnapshot { Step = step, Epoch = epoch, Filters = filters, Probes = probes };
    }

    private static void Write(BinaryWriter writer, float[] values)
    {
        writer.Write(values.Length);
        writer.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
    }

    private static float[] Read(BinaryReader reader)
    {
        var values = new float[reader.ReadInt32()];
        reader.BaseStream.ReadExactly(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
        return values;
    }
}
