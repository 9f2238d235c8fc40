using TrainingService.Training.Models;
using TrainingService.Training.Tests.Loop;
using Xunit;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TrainingService.Training.Tests.Models;

/// <summary>
/// Our max pooling gives libtorch's results bit for bit: values, the chosen element among equals, gradients. The 2×2
/// stride-2 shapes run ours (with AVX2, as on any x86-64 CI machine of the last decade); the others libtorch's, the
/// same answer either way.
/// </summary>
[Collection(SequentialTraining.Name)]
public sealed class MaxPoolTests
{
    public static TheoryData<int, int, int, int, int, int> Shapes => new()
    {
        // height, width, kernel height, kernel width, stride height, stride width
        { 28, 28, 2, 2, 2, 2 },   // LeNet's first pool: rows of 14 outputs, the second block of 8 overlaps the first
        { 10, 10, 2, 2, 2, 2 },   // rows of 5: four at a time, the second block of 4 overlaps the first
        { 6, 6, 2, 2, 2, 2 },     // rows of 3: one window at a time
        { 7, 9, 2, 2, 2, 2 },     // odd sides: the last row and column are dropped
        { 6, 32, 2, 2, 2, 2 },    // rows of exactly 16
        { 5, 37, 2, 2, 2, 2 },    // rows of 18, odd width
        { 9, 9, 3, 3, 2, 2 },     // overlapping windows: gradients of one input add up
        { 8, 8, 3, 3, 1, 1 },
        { 6, 11, 2, 3, 1, 2 },    // unequal sides
        { 5, 5, 5, 5, 1, 1 },     // one window covers the plane
        { 12, 12, 2, 2, 3, 3 },   // stride beyond the kernel: some inputs in no window
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void ValuesAndGradientsAreLibtorchsBitForBit(int height, int width, int kh, int kw, int sh, int sw)
    {
        foreach (string values in new[] { "normal", "ties", "special" })
        {
            using var scope = NewDisposeScope();
            Tensor input = Input(values, [3, 4, height, width]);
            (Tensor ours, Tensor oursGrad) = RunWithGradient(input, x => MaxPool2d.Apply(x, kh, kw, sh, sw, 0, 0), values == "special");
            (Tensor theirs, Tensor theirsGrad) = RunWithGradient(input, x => F.max_pool2d(x, [kh, kw], [sh, sw], [0, 0], [1, 1], false), values == "special");
            Assert.Equal(theirs.shape, ours.shape);
            Assert.Equal(Bits(theirs), Bits(ours));
            Assert.Equal(Bits(theirsGrad), Bits(oursGrad));
        }
    }

    [Fact]
    public void WithoutGradientsAndInTheModuleItIsTheSame()
    {
        using var scope = NewDisposeScope();
        Tensor input = Input("ties", [2, 3, 28, 28]);
        using var pool = new MaxPool2d(2, 2, 2, 2, 0, 0);
        using (no_grad())
        {
            Assert.Equal(Bits(F.max_pool2d(input, [2, 2], [2, 2])), Bits(pool.call(input)));
        }

        // Padding, and a layout other than contiguous, go to libtorch's: the same answer either way.
        Assert.Equal(Bits(F.max_pool2d(input, [3, 3], [2, 2], [1, 1])), Bits(MaxPool2d.Apply(input, 3, 3, 2, 2, 1, 1)));
        Tensor strided = input.transpose(2, 3);
        Assert.Equal(Bits(F.max_pool2d(strided, [2, 2], [2, 2])), Bits(MaxPool2d.Apply(strided, 2, 2, 2, 2, 0, 0)));
    }

    /// <summary>normal: random values; ties: a few small integers and many zeros (ReLU outputs); special: NaN, ±∞ and −0 among them.</summary>
    private static Tensor Input(string values, long[] shape)
    {
        var generator = new Generator(42);
        Tensor x = values switch
        {
            "normal" => randn(shape, generator: generator),
            "ties" => randint(-2, 3, shape, generator: generator).to(ScalarType.Float32).relu(),
            _ => randn(shape, generator: generator),
        };
        if (values == "special")
        {
            x = Sprinkle(x, seed: 7);
        }

        return x;
    }

    /// <param name="special">The gradient arriving at the output has NaN, ±∞ and −0 among its values (−0 comes back +0 from libtorch's).</param>
    private static (Tensor Output, Tensor Gradient) RunWithGradient(Tensor input, Func<Tensor, Tensor> pool, bool special)
    {
        Tensor x = input.detach().clone().requires_grad_();
        Tensor output = pool(x);
        // A distinct weight per output, so a gradient sent to the wrong input shows: the output's gradient.
        Tensor weights = arange(output.numel(), ScalarType.Float32).reshape(output.shape).add(1).div(7);
        if (special)
        {
            weights = Sprinkle(weights, seed: 11);
        }

        output.mul(weights).sum().backward();
        return (output.detach(), x.grad!);
    }

    /// <summary>One value in five replaced by NaN, +∞, −∞ or −0.</summary>
    private static Tensor Sprinkle(Tensor x, int seed)
    {
        float[] data = x.data<float>().ToArray();
        var random = new Random(seed);
        for (int i = 0; i < data.Length; i++)
        {
            data[i] = random.Next(20) switch
            {
                0 => float.NaN,
                1 => float.PositiveInfinity,
                2 => float.NegativeInfinity,
                3 => -0f,
                _ => data[i],
            };
        }

        return tensor(data, x.shape);
    }

    private static byte[] Bits(Tensor t) => t.contiguous().bytes.ToArray();
}
