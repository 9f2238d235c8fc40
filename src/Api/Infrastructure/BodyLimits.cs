using System.Globalization;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace TrainingService.Api.Infrastructure;

/// <summary>Caps on request bodies (configuration section Requests).</summary>
public sealed class RequestOptions
{
    /// <summary>JSON bodies of /models and /jobs: a spec of 500 layers is ~50 KB.</summary>
    public long MaxJsonBodyBytes { get; set; } = 1L << 20;
}

/// <summary>A route group's or endpoint's cap on its request body, with the configuration key a refusal names.</summary>
public sealed record BodyLimit(string Key, Func<IServiceProvider, long> Bytes)
{
    /// <summary>The 413 detail, the same whether the length was declared or counted.</summary>
    public static string Detail(long bytes, string key) => string.Create(CultureInfo.InvariantCulture,
        $"The request body is over the limit of {bytes:N0} bytes (configuration {key}).");
}

public static class BodyLimits
{
    public static IServiceCollection AddBodyLimits(this IServiceCollection services)
    {
        services.AddOptions<RequestOptions>().BindConfiguration("Requests")
            .Validate(o => o.MaxJsonBodyBytes > 0, "Requests:MaxJsonBodyBytes must be positive").ValidateOnStart();
        return services;
    }

    /// <summary>The group's (or endpoint's: the most specific wins) cap on request bodies.</summary>
    public static TBuilder WithBodyLimit<TBuilder>(this TBuilder builder, string key, Func<IServiceProvider, long> bytes)
        where TBuilder : IEndpointConventionBuilder => builder.WithMetadata(new BodyLimit(key, bytes));

    /// <summary>/models and /jobs: <see cref="RequestOptions.MaxJsonBodyBytes"/>.</summary>
    public static TBuilder WithJsonBodyLimit<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder =>
        builder.WithBodyLimit("Requests:MaxJsonBodyBytes", s => s.GetRequiredService<IOptions<RequestOptions>>().Value.MaxJsonBodyBytes);

    /// <summary>
    /// Applies each endpoint's <see cref="BodyLimit"/>: a declared length over it is refused before a byte is read;
    /// otherwise the body is counted as it is read (chunked bodies, and servers without a size feature such as the test
    /// server), and going over throws the 413 that <see cref="BadRequestExceptionHandler"/> writes.
    /// </summary>
    public static WebApplication UseBodyLimits(this WebApplication app)
    {
        app.Use(async (context, next) =>
        {
            if (context.GetEndpoint()?.Metadata.GetMetadata<BodyLimit>() is { } limit)
            {
                long bytes = limit.Bytes(context.RequestServices);
                if (context.Request.ContentLength > bytes)
                {
                    throw new BadHttpRequestException(BodyLimit.Detail(bytes, limit.Key), StatusCodes.Status413PayloadTooLarge);
                }

                if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
                {
                    size.MaxRequestBodySize = bytes;
                }

                context.Request.Body = new LimitedBody(context.Request.Body, bytes, limit.Key);
            }

            await next(context);
        });
        return app;
    }

    /// <summary>Caps a body where the server cannot (the test server has no IHttpMaxRequestBodySizeFeature).</summary>
    internal sealed class LimitedBody(Stream inner, long maxBytes, string key) : Training.Data.ReadOnlyStream
    {
        private long _read;

        public override int Read(Span<byte> buffer) => Count(inner.Read(buffer));

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            Count(await inner.ReadAsync(buffer, cancellationToken));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        private int Count(int read)
        {
            _read += read;
            return _read > maxBytes
                ? throw new BadHttpRequestException(BodyLimit.Detail(maxBytes, key), StatusCodes.Status413PayloadTooLarge)
                : read;
        }
    }
}
