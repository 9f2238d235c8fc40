namespace TrainingService.Training.Data;

/// <summary>A dataset file is malformed, truncated, too large or inconsistent with the other files.</summary>
public sealed class DatasetFormatException : Exception
{
    /// <summary>Creates the exception; the message is prefixed with <paramref name="file"/>.</summary>
    /// <param name="file">Which input is at fault: "images", "labels", "testImages" or "testLabels".</param>
    /// <param name="detail">What is wrong, with the numbers involved.</param>
    /// <param name="innerException">The underlying error, if any.</param>
    public DatasetFormatException(string file, string detail, Exception? innerException = null)
        : base($"{file}: {detail}", innerException)
    {
        File = file;
    }

    /// <summary>Which input is at fault: "images", "labels", "testImages" or "testLabels".</summary>
    public string File { get; }

    /// <summary>The configuration key of the size limit the input breaks (Uploads:MaxDatasetBytes), or null when it is malformed.</summary>
    public string? Limit { get; init; }
}
