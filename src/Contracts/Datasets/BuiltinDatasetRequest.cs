namespace TrainingService.Contracts.Datasets;

/// <summary>Asks for a generated dataset. Every field has a default.</summary>
public sealed record BuiltinDatasetRequest
{
    /// <summary>What to generate; only "shapes" (one geometric shape per image on a noisy background).</summary>
    public string Kind { get; init; } = "shapes";

    /// <summary>The dataset's name; "shapes" when left out.</summary>
    public string? Name { get; init; }

    /// <summary>Shape classes, 2..10 (default 4): circle, square, triangle, plus, ring, bar, diamond, hollow square, x, star.</summary>
    public int? Classes { get; init; }

    /// <summary>Train images, 1..200000 (default 2000).</summary>
    public int? Samples { get; init; }

    /// <summary>Test images, 0..100000 (default 500); 0 means no test split.</summary>
    public int? TestSamples { get; init; }

    /// <summary>Image side in pixels, 16..64 (default 28).</summary>
    public int? ImageSize { get; init; }

    /// <summary>1 (grey, the default) or 3 (a random colour per image).</summary>
    public int? Channels { get; init; }

    /// <summary>Generator seed (default 1); the same request always gives the same images.</summary>
    public int? Seed { get; init; }
}
