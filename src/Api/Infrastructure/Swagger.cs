using System.Reflection;
using Microsoft.AspNetCore.Authorization;
using Microsoft.OpenApi;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace TrainingService.Api.Infrastructure;

public static class Swagger
{
    internal const string BearerScheme = "Bearer";
    internal const string HeaderScheme = "ApiKeyHeader";

    public static IServiceCollection AddSwagger(this IServiceCollection services)
    {
        services.AddEndpointsApiExplorer();
        services.AddSwaggerGen(options =>
        {
            options.SwaggerDoc("v1", new() { Title = "TrainingService", Version = "v1", Description = "Train convolutional networks and watch them learn." });
            foreach (Assembly assembly in new[] { typeof(Program).Assembly, typeof(Contracts.Specs.ModelSpec).Assembly })
            {
                string xml = Path.Combine(AppContext.BaseDirectory, assembly.GetName().Name + ".xml");
                if (File.Exists(xml))
                {
                    options.IncludeXmlComments(xml);
                }
            }

            options.OperationFilter<ExamplesOperationFilter>();

            // The Authorize button: a key as a bearer token or in X-Api-Key; operations that need one say so.
            options.AddSecurityDefinition(BearerScheme, new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.Http,
                Scheme = "bearer",
                Description = "An API key (tsk_…): the admin key from the data folder's admin-key file, or one from POST /keys.",
            });
            options.AddSecurityDefinition(HeaderScheme, new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.ApiKey,
                In = ParameterLocation.Header,
                Name = "X-Api-Key",
                Description = "The same API key, in the X-Api-Key header instead.",
            });
            options.OperationFilter<SecurityOperationFilter>();
        });
        return services;
    }

    public static WebApplication UseSwaggerWithUi(this WebApplication app)
    {
        app.UseSwagger();
        app.UseSwaggerUI(options => options.DocumentTitle = "TrainingService API");
        return app;
    }
}

/// <summary>Marks every operation that needs a key (all but health) with the two schemes, and its 401.</summary>
internal sealed class SecurityOperationFilter : IOperationFilter
{
    public void Apply(OpenApiOperation operation, OperationFilterContext context)
    {
        if (context.ApiDescription.ActionDescriptor.EndpointMetadata.OfType<IAllowAnonymous>().Any())
        {
            return;
        }

        operation.Security ??= [];
        foreach (string scheme in new[] { Swagger.BearerScheme, Swagger.HeaderScheme })
        {
            operation.Security.Add(new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(scheme, context.Document)] = [] });
        }

        operation.Responses ??= [];
        operation.Responses.TryAdd("401", new OpenApiResponse { Description = "No API key, or one that is unknown or revoked (problem details say which)" });
    }
}
