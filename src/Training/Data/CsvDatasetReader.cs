using System.Globalization;
using System.Text;

namespace TrainingService.Training.Data;

/// <summary>
/// Images as CSV, the Kaggle MNIST layout: one image per line, the label (a class index) first, then the pixel values
/// 0–255 channel by channel, row by row (C × H × W); with or without a header row. The image size is given, and every
/// line must have exactly 1 + C·H·W columns. Each error names the file, the line and the column.
/// </summary>
public static class CsvDatasetReader
{
    // Longest cell a line may average: "255.000000" and spaces; a longer line is not read into memory.
    private const int MaxCellChars = 24;

    /// <exception cref="DatasetFormatException">A line is malformed, or the images break a limit of <paramref name="limits"/>.</exception>
    public static ImageDataset Read(
        string name, string trainPath, string? testPath, int channels, int height, int width, DatasetLimits? limits = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(channels, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        limits ??= new DatasetLimits();
        limits.Check("images", 0, channels, height, width);
        (byte[] images, byte[] labels) = ReadFile(trainPath, "images", channels, height, width, limits, 0);
        ImageSplit? test = null;
        int maxLabel = labels.Max();
        if (testPath is not null)
        {
            (byte[] testImages, byte[] testLabels) = ReadFile(testPath, "testImages", channels, height, width, limits, images.Length);
            test = new ImageSplit { Images = testImages, Labels = testLabels };
            maxLabel = Math.Max(maxLabel, testLabels.Max());
        }

        if (maxLabel < 1)
        {
            throw new DatasetFormatException("images", "every label is 0: a classifier needs at least two classes");
        }

        (float[] mean, float[] std) = ImageStatistics.MeanStd(images, channels, height, width);
        return new ImageDataset
        {
            Name = name,
            Channels = channels,
            Height = height,
            Width = width,
            Classes = maxLabel + 1,
            Train = new ImageSplit { Images = images, Labels = labels },
            Test = test,
            Mean = mean,
            Std = std,
        };
    }

    private static (byte[] Images, byte[] Labels) ReadFile(
        string path, string field, int channels, int height, int width, DatasetLimits limits, long bytesBefore)
    {
        int size = channels * height * width;
        var images = new List<byte>();
        var labels = new List<byte>();
        using var reader = new StreamReader(path, System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 1 << 16);
        int lineNumber = 0;
        var row = new byte[size];
        var buffer = new StringBuilder();
        int maxLineChars = (int)Math.Min(Array.MaxLength, (size + 1L) * MaxCellChars);
        while (ReadLine(reader, buffer, maxLineChars, field, lineNumber + 1) is { } line)
        {
            lineNumber++;
            if (line.Length == 0 || (line.Trim().Length == 0))
            {
                continue; // a blank line (the one after the last newline, or a stray one)
            }

            string[] columns = line.Split(',');
            if (lineNumber == 1 && !int.TryParse(columns[0].Trim().Trim('"'), NumberStyles.Integer, CultureInfo.InvariantCulture, out _))
            {
                if (columns.Length != size + 1)
                {
                    throw new DatasetFormatException(field, $"line 1 (the header): {columns.Length} columns, but {channels}×{height}×{width} images need {size + 1} (the label, then {size} pixels)");
                }

                continue; // a header row such as label,pixel0,pixel1,…
            }

            if (columns.Length != size + 1)
            {
                throw new DatasetFormatException(field, $"line {lineNumber}: {columns.Length} columns, but {channels}×{height}×{width} images need {size + 1} (the label, then {size} pixels)");
            }

            if (!int.TryParse(columns[0].Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out int label) || label is < 0 or > 255)
            {
                throw new DatasetFormatException(field, $"line {lineNumber}, column 1: the label \"{columns[0]}\" is not a class index 0..255");
            }

            for (int i = 0; i < size; i++)
            {
                string cell = columns[i + 1].Trim();
                if (!double.TryParse(cell, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) || !double.IsFinite(value))
                {
                    throw new DatasetFormatException(field, $"line {lineNumber}, column {i + 2}: \"{cell}\" is not a number");
                }

                if (value is < 0 or > 255)
                {
                    throw new DatasetFormatException(field, $"line {lineNumber}, column {i + 2}: {cell} is outside the pixel range 0..255");
                }

                row[i] = (byte)Math.Round(value);
            }

            limits.Check(field, labels.Count + 1L, channels, height, width, bytesBefore);
            labels.Add((byte)label);
            images.AddRange(row);
        }

        if (labels.Count == 0)
        {
            throw new DatasetFormatException(field, "no images: the file is empty or has only a header");
        }

        return ([.. images], [.. labels]);
    }

    // A line without its end, or null at the end of the file; a line longer than any image of the size needs is refused.
    private static string? ReadLine(StreamReader reader, StringBuilder line, int maxChars, string field, int lineNumber)
    {
        line.Clear();
        int c;
        while ((c = reader.Read()) >= 0)
        {
            if (c == '\n')
            {
                return line.ToString();
            }

            if (c == '\r')
            {
                if (reader.Peek() == '\n')
                {
                    reader.Read();
                }

                return line.ToString();
            }

            if (line.Length == maxChars)
            {
                throw new DatasetFormatException(field, $"line {lineNumber}: longer than {maxChars.ToString("N0", CultureInfo.InvariantCulture)} characters, more than any line of this image size needs");
            }

            line.Append((char)c);
        }

        return line.Length > 0 ? line.ToString() : null;
    }
}
