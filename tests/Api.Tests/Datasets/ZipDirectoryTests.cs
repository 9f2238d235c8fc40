using System.Buffers.Binary;
using System.IO.Compression;
using TrainingService.Api.Datasets;

namespace TrainingService.Api.Tests.Datasets;

/// <summary>Counting a zip's entries from its directory, without ZipArchive building them all first.</summary>
public sealed class ZipDirectoryTests
{
    private static byte[] ZipOf(int entries)
    {
        using var memory = new MemoryStream();
        using (var zip = new ZipArchive(memory, ZipArchiveMode.Create, leaveOpen: true))
        {
            for (int i = 0; i < entries; i++)
            {
                using Stream entry = zip.CreateEntry($"folder/{i}.png").Open();
                entry.Write(new byte[i % 3]);
            }
        }

        return memory.ToArray();
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(300)]
    public void CountsEveryEntryUpToTheLimit(int entries)
    {
        Assert.Equal(entries, ZipDirectory.CountEntries(new MemoryStream(ZipOf(entries)), limit: 1000));
    }

    [Fact]
    public void AnEndRecordThatUnderstatesTheCountIsNotBelievedAndTheWalkStopsPastTheLimit()
    {
        byte[] zip = ZipOf(50);
        int end = zip.Length - 22; // no comment: the end record is the last 22 bytes
        Assert.Equal(0x06054b50u, BinaryPrimitives.ReadUInt32LittleEndian(zip.AsSpan(end)));
        BinaryPrimitives.WriteUInt16LittleEndian(zip.AsSpan(end + 8), 2);
        BinaryPrimitives.WriteUInt16LittleEndian(zip.AsSpan(end + 10), 2);

        Assert.Equal(21, ZipDirectory.CountEntries(new MemoryStream(zip), limit: 20));
    }

    [Fact]
    public void AnEndRecordThatClaimsMoreThanTheLimitIsTakenAtItsWord()
    {
        byte[] zip = ZipOf(3);
        BinaryPrimitives.WriteUInt16LittleEndian(zip.AsSpan(zip.Length - 22 + 10), 60000);

        Assert.Equal(60000, ZipDirectory.CountEntries(new MemoryStream(zip), limit: 100));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(10)]
    [InlineData(100_000)]
    public void NotAZipIsNull(int length)
    {
        Assert.Null(ZipDirectory.CountEntries(new MemoryStream(new byte[length]), limit: 10));
    }
}
