using System.Runtime.CompilerServices;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace TrainingService.Api.Persistence;

/// <summary>The service's store; used directly by handlers and workers (it is the unit of work and the repository).</summary>
/// <remarks>
/// Abstract: each database provider has its own subclass (<see cref="SqliteTrainingDb"/>, <see cref="PostgresTrainingDb"/>)
/// so that each has its own migration set; everything else injects <see cref="TrainingDb"/>.
/// </remarks>
public abstract class TrainingDb(DbContextOptions options) : DbContext(options)
{
    public DbSet<DatasetRecord> Datasets => Set<DatasetRecord>();

    public DbSet<ModelRecord> Models => Set<ModelRecord>();

    public DbSet<JobRecord> Jobs => Set<JobRecord>();

    public DbSet<JobEventRecord> JobEvents => Set<JobEventRecord>();

    public DbSet<JobCommandRecord> JobCommands => Set<JobCommandRecord>();

    public DbSet<UserRecord> Users => Set<UserRecord>();

    public DbSet<ApiKeyRecord> ApiKeys => Set<ApiKeyRecord>();

    public DbSet<ShareLinkRecord> ShareLinks => Set<ShareLinkRecord>();

    public DbSet<SweepRecord> Sweeps => Set<SweepRecord>();

    public DbSet<SweepRungRecord> SweepRungs => Set<SweepRungRecord>();

    /// <summary>The service's own SQL on the event history, in this provider's dialect.</summary>
    public abstract EventSql Sql { get; }

    /// <summary>
    /// Every time is stored and read as UTC: SQLite keeps no DateTimeKind, the API writes ISO-8601 with Z, and Npgsql
    /// writes only Kind=Utc values to timestamptz. And to the microsecond on both (<see cref="StoredTime"/>).
    /// </summary>
    protected override void ConfigureConventions(ModelConfigurationBuilder configurationBuilder)
    {
        configurationBuilder.Properties<DateTime>().HaveConversion<UtcConverter>();
        configurationBuilder.Properties<DateTime?>().HaveConversion<UtcConverter>();
    }

    public override int SaveChanges(bool acceptAllChangesOnSuccess)
    {
        TruncateTimes();
        return base.SaveChanges(acceptAllChangesOnSuccess);
    }

    public override Task<int> SaveChangesAsync(bool acceptAllChangesOnSuccess, CancellationToken cancellationToken = default)
    {
        TruncateTimes();
        return base.SaveChangesAsync(acceptAllChangesOnSuccess, cancellationToken);
    }

    /// <summary>A record answered right after it is saved (a POST) has the times a later read (a GET) will have.</summary>
    private void TruncateTimes()
    {
        foreach (EntityEntry entry in ChangeTracker.Entries())
        {
            if (entry.State is not (EntityState.Added or EntityState.Modified))
            {
                continue;
            }

            foreach (PropertyEntry property in entry.Properties)
            {
                if (property.CurrentValue is DateTime time && time != StoredTime.Truncate(time))
                {
                    property.CurrentValue = StoredTime.Truncate(time);
                }
            }
        }
    }

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.Entity<DatasetRecord>().HasIndex(d => d.Owner);
        modelBuilder.Entity<ModelRecord>().HasIndex(m => m.Owner);
        modelBuilder.Entity<JobRecord>(e =>
        {
            e.Property(j => j.State).HasConversion<string>();
            AsJson(e.Property(j => j.Spec));
            AsJson(e.Property(j => j.Hyperparameters));
            AsJson(e.Property(j => j.Monitoring));
            AsJson(e.Property(j => j.Sanity));
            e.HasIndex(j => new { j.State, j.CreatedAt });
            e.HasIndex(j => j.DatasetId);
            e.HasIndex(j => new { j.Owner, j.CreatedAt });
            e.Property(j => j.LeaseOwner).HasMaxLength(200);
            e.HasIndex(j => j.LeaseOwner);
            e.HasIndex(j => new { j.SweepId, j.SweepTrial }).IsUnique(); // a trial has one job, whichever nodes start it
            e.Property(j => j.StopCode).HasMaxLength(32);
        });
        modelBuilder.Entity<SweepRecord>(e =>
        {
            e.Property(s => s.State).HasConversion<string>().HasMaxLength(16);
            AsJson(e.Property(s => s.Settings));
            e.Property(s => s.Name).HasMaxLength(200);
            e.HasIndex(s => new { s.Owner, s.CreatedAt });
            e.HasIndex(s => new { s.State, s.CreatedAt });
            e.HasIndex(s => s.DatasetId);
        });
        modelBuilder.Entity<SweepRungRecord>().HasKey(r => new { r.SweepId, r.Epoch, r.Trial });
        modelBuilder.Entity<JobCommandRecord>(e =>
        {
            e.Property(c => c.Kind).HasConversion<string>().HasMaxLength(16);
            e.HasIndex(c => new { c.JobId, c.Id });
        });
        modelBuilder.Entity<JobEventRecord>().HasKey(e => new { e.JobId, e.Seq });
        // Full layers events only, with their size: what history thinning looks for, found without reading a row.
        modelBuilder.Entity<JobEventRecord>().HasIndex(e => new { e.JobId, e.Seq, e.Bytes })
            .HasDatabaseName("IX_JobEvents_FullLayers").HasFilter(HistoryThinning.FullLayersFilter);
        // State events only: where each run of a job began, which a rewind looks for (StreamRewinds), found in a handful of rows.
        modelBuilder.Entity<JobEventRecord>().HasIndex(e => new { e.JobId, e.Seq })
            .HasDatabaseName("IX_JobEvents_States").HasFilter(Streaming.StreamRewinds.StatesFilter);
        modelBuilder.Entity<UserRecord>().HasIndex(u => u.Name).IsUnique();
        modelBuilder.Entity<ApiKeyRecord>(e =>
        {
            e.HasIndex(k => k.Hash).IsUnique();
            e.HasIndex(k => k.UserId);
        });
        modelBuilder.Entity<ShareLinkRecord>().HasIndex(s => s.JobId);
    }

    /// <summary>
    /// A step event's figures as generated columns (<see cref="JobEventRecord.Step"/> and the rest): each provider's SQL
    /// for a field of the stored JSON, as a number (step, epoch) or as its JSON text (the figures); stored, or virtual.
    /// </summary>
    protected static void StepColumns(ModelBuilder modelBuilder, Func<string, bool, string> sql, bool stored) =>
        modelBuilder.Entity<JobEventRecord>(e =>
        {
            e.Property(r => r.Step).HasComputedColumnSql(sql("step", false), stored);
            e.Property(r => r.Epoch).HasComputedColumnSql(sql("epoch", false), stored);
            e.Property(r => r.Loss).HasComputedColumnSql(sql("loss", true), stored);
            e.Property(r => r.LearningRate).HasComputedColumnSql(sql("learningRate", true), stored);
            e.Property(r => r.SamplesPerSecond).HasComputedColumnSql(sql("samplesPerSecond", true), stored);
        });

    /// <summary>A Contracts record in a TEXT column as the API's JSON (docs/architecture.md says why not owned types).</summary>
    /// <remarks>
    /// The records are immutable and replaced whole (<c>with</c>), so a reference comparison detects a change: the event
    /// pump loads and saves jobs ten times a second, and comparing by JSON would serialise each column four more times.
    /// </remarks>
    private static void AsJson<T>(PropertyBuilder<T> property) where T : class? =>
        property.HasConversion(v => ToJson(v), v => FromJson<T>(v), new ValueComparer<T>(
            (a, b) => ReferenceEquals(a, b), v => v == null ? 0 : RuntimeHelpers.GetHashCode(v), v => v));

    private static string ToJson<T>(T value) => JsonSerializer.Serialize(value, JsonSerializerOptions.Web);

    private static T FromJson<T>(string json) => JsonSerializer.Deserialize<T>(json, JsonSerializerOptions.Web)!;
}

internal sealed class UtcConverter() : Microsoft.EntityFrameworkCore.Storage.ValueConversion.ValueConverter<DateTime, DateTime>(
    v => StoredTime.Truncate(v.ToUniversalTime()), v => StoredTime.Truncate(DateTime.SpecifyKind(v, DateTimeKind.Utc)));

/// <summary>
/// Times to the microsecond: PostgreSQL keeps microseconds where .NET and SQLite keep 100 ns ticks, so a time made with
/// full ticks would come back different from the database, break equality in keyset paging (created at, then id) and
/// differ between a POST's answer and a later GET. Both providers store times truncated alike.
/// </summary>
public static class StoredTime
{
    /// <summary>Now, UTC, to the microsecond.</summary>
    public static DateTime UtcNow => Truncate(DateTime.UtcNow);

    public static DateTime Truncate(DateTime time) => new(time.Ticks - (time.Ticks % TimeSpan.TicksPerMicrosecond), time.Kind);
}
