using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace TrainingService.Api.Persistence;

/// <summary>The database behind <see cref="TrainingDb"/>, from Database:Provider.</summary>
public enum DatabaseProvider
{
    Sqlite,
    Postgres,
}

/// <summary>The SQLite store (the default): a file in the data folder; migrations in Persistence/Migrations/Sqlite.</summary>
public sealed class SqliteTrainingDb(DbContextOptions<SqliteTrainingDb> options) : TrainingDb(options)
{
    public override EventSql Sql => SqliteEventSql.Instance;

    /// <summary>
    /// SQLite adds only virtual generated columns to a table that exists (a stored one means building the table again),
    /// and its rows stay as they were; a partial index of step events holds the figures instead, in seq order, so a
    /// history's step figures are read from it (EventSql.ReadStepFields) without parsing an event.
    /// </summary>
    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        base.OnModelCreating(modelBuilder);
        StepColumns(modelBuilder, (field, asText) => $"CASE WHEN Kind = 'step' THEN Json {(asText ? "->" : "->>")} '$.{field}' END", stored: false);
        modelBuilder.Entity<JobEventRecord>().HasIndex(e => new { e.JobId, e.Seq, e.Bytes, e.Step, e.Epoch, e.Loss, e.LearningRate, e.SamplesPerSecond })
            .HasDatabaseName(SqliteEventSql.StepsIndex).HasFilter("\"Kind\" = 'step'");
    }
}

/// <summary>The PostgreSQL store (ConnectionStrings:Postgres); migrations in Persistence/Migrations/Postgres.</summary>
public sealed class PostgresTrainingDb(DbContextOptions<PostgresTrainingDb> options) : TrainingDb(options)
{
    public override EventSql Sql => PostgresEventSql.Instance;

    /// <summary>json (not jsonb) keeps a number's text as written; a JSON null is the text null, as in SQLite.</summary>
    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        base.OnModelCreating(modelBuilder);
        StepColumns(modelBuilder, (field, asText) => asText
            ? $"CASE WHEN \"Kind\" = 'step' THEN ((\"Json\"::json) -> '{field}')::text END"
            : $"CASE WHEN \"Kind\" = 'step' THEN ((\"Json\"::json) ->> '{field}')::{(field == "step" ? "bigint" : "integer")} END", stored: true);
    }
}

/// <summary>Lets `dotnet ef migrations add --context SqliteTrainingDb` build the context without starting the host.</summary>
internal sealed class DesignTimeSqliteTrainingDbFactory : IDesignTimeDbContextFactory<SqliteTrainingDb>
{
    public SqliteTrainingDb CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<SqliteTrainingDb>().UseSqlite("Data Source=design-time.db").Options);
}

/// <summary>Lets `dotnet ef migrations add --context PostgresTrainingDb` build the context; scaffolding needs no server.</summary>
internal sealed class DesignTimePostgresTrainingDbFactory : IDesignTimeDbContextFactory<PostgresTrainingDb>
{
    public PostgresTrainingDb CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<PostgresTrainingDb>().UseNpgsql("Host=localhost;Database=trainingservice").Options);
}
