using Microsoft.EntityFrameworkCore;

namespace TrainingService.Api.Persistence;

/// <summary>The service's store; used directly by handlers and workers (it is the unit of work and the repository).</summary>
public sealed class TrainingDb(DbContextOptions<TrainingDb> options) : DbContext(options)
{
    public DbSet<DatasetRecord> Datasets => Set<DatasetRecord>();

    public DbSet<ModelRecord> Models => Set<ModelRecord>();

    public DbSet<JobRecord> Jobs => Set<JobRecord>();

    public DbSet<JobEventRecord> JobEvents => Set<JobEventRecord>();

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
