using System.Reflection;

namespace TrainingService.Api.Infrastructure;

public static class Swagger
{
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
