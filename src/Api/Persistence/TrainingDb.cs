using Microsoft.EntityFrameworkCore;

namespace TrainingService.Api.Persistence;

/// <summary>The service's store; used directly by handlers and workers (it is the unit of work and the repository).</summary>
public sealed class TrainingDb(DbContextOptions<TrainingDb> options) : DbContext(options)
{
    public DbSet<DatasetRecord> Datasets => Set<DatasetRecord>();

    public DbSet<ModelRecord> Models => Set<ModelRecord>();

    public DbSet<JobRecord> Jobs => Set<JobRecord>();

    public DbSet<JobEventRecord> JobEvents => Set<JobEventRecord>();

    /// <summary>Every time is stored and read as UTC: SQLite keeps no DateTimeKind, and the API writes ISO-8601 with Z.</summary>
    protected override void ConfigureConventions(ModelConfigurationBuilder configurationBuilder)
    {
        configurationBuilder.Properties<DateTime>().HaveConversion<UtcConverter>();
        configurationBuilder.Properties<DateTime?>().HaveConversion<UtcConverter>();
    }

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.Entity<DatasetRecord>().HasIndex(d => d.Owner);
        modelBuilder.Entity<ModelRecord>().HasIndex(m => m.Owner);
        modelBuilder.Entity<JobRecord>(e =>
        {
            e.Property(j => j.State).HasConversion<string>();
            e.HasIndex(j => new { j.State, j.CreatedAt });
            e.HasIndex(j => j.DatasetId);
        });
        modelBuilder.Entity<JobEventRecord>().HasKey(e => new { e.JobId, e.Seq });
    }
}

internal sealed class UtcConverter() : Microsoft.EntityFrameworkCore.Storage.ValueConversion.ValueConverter<DateTime, DateTime>(
    v => v.ToUniversalTime(), v => DateTime.SpecifyKind(v, DateTimeKind.Utc));
