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
}

/// <summary>The PostgreSQL store (ConnectionStrings:Postgres); migrations in Persistence/Migrations/Postgres.</summary>
public sealed class PostgresTrainingDb(DbContextOptions<PostgresTrainingDb> options) : TrainingDb(options)
{
    public override EventSql Sql => PostgresEventSql.Instance;
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
