using System.Globalization;

namespace TrainingService.Training.Data;

/// <summary>
/// Images as CSV, the Kaggle MNIST layout: one image per line, the label (a class index) first, then the pixel values
/// 0–255 channel by channel, row by row (C × H × W); with or without a header row. The image size is given, and every
/// line must have exactly 1 + C·H·W columns. Each error names the file, the line and the column.
/// </summary>
public static class CsvDatasetReader
{
    public const int MaxImages = 1_000_000;

    public static ImageDataset Read(string name, string trainPath, string? testPath, int channels, int height, int width)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(channels, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        (byte[] images, byte[] labels) = ReadFile(trainPath, "images", channels, height, width);
        ImageSplit? test = null;
        int maxLabel = labels.Max();
        if (testPath is not null)
        {
            (byte[] testImages, byte[] testLabels) = ReadFile(testPath, "testImages", channels, height, width);
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

    private static (byte[] Images, byte[] Labels) ReadFile(string path, string field, int channels, int height, int width)
    {
        int size = channels * height * width;
        var images = new List<byte>();
        var labels = new List<byte>();
        using var reader = new StreamReader(path, System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 1 << 16);
        int lineNumber = 0;
        var row = new byte[size];
        while (reader.ReadLine() is { } line)
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

            if (labels.Count == MaxImages)
            {
                throw new DatasetFormatException(field, $"more than {MaxImages:N0} images");
            }

            labels.Add((byte)label);
            images.AddRange(row);
        }

        if (labels.Count == 0)
        {
            throw new DatasetFormatException(field, "no images: the file is empty or has only a header");
        }

        return ([.. images], [.. labels]);
    }
}
