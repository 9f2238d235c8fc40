namespace TrainingService.Training.Data;

// Replays bytes already read for format detection, then continues with the inner stream.
internal sealed class PrefixedStream(byte[] prefix, int prefixLength, Stream inner) : ReadOnlyStream
{
    private int _position;

    public override int Read(Span<byte> buffer)
    {
        if (_position < prefixLength)
        {
            int n = Math.Min(buffer.Length, prefixLength - _position);
            prefix.AsSpan(_position, n).CopyTo(buffer);
            _position += n;
            return n;
        }

        return inner.Read(buffer);
    }
}
