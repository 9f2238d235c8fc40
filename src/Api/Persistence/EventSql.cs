using System.Data.Common;
using System.Globalization;
using Microsoft.Data.Sqlite;
using Npgsql;
using NpgsqlTypes;

namespace TrainingService.Api.Persistence;

/// <summary>One row of a job's stored history as the event pump writes it.</summary>
public sealed record EventRow(Guid JobId, long Seq, string Kind, string Json, int Bytes);

/// <summary>
/// The service's own SQL on the event history, one implementation per database provider (each provider's context names
/// its own: <see cref="TrainingDb.Sql"/>). Everything the event pump, history reads, thinning and the job worker's probe
/// run outside EF Core is here; callers stay provider-neutral.
/// </summary>
public abstract class EventSql
{
    /// <summary>What history thinning leaves of a layers event: seq, kind, time, step and "thinned": true, under 160 bytes.</summary>
    protected const string StubFields = "'seq', {0}, 'kind', 'layers', 'time', {1}, 'step', {2}, 'thinned', {3}";

    /// <summary>
    /// Before the pump begins its transaction on <paramref name="connection"/>: how long its statements may wait for a lock
    /// before the batch fails as a storage fault.
    /// </summary>
    public virtual void PrepareWrite(DbConnection connection, int timeoutSeconds)
    {
    }

    /// <summary>Inserts the rows in the transaction.</summary>
    public abstract Task InsertAsync(DbTransaction transaction, IReadOnlyList<EventRow> rows);

    /// <summary>
    /// A query of (Seq, Json) with afterSeq &lt; Seq ≤ upTo, in seq order, at most <paramref name="limit"/> rows; only
    /// events of <paramref name="kinds"/> when given (the kind is read before the JSON, so others cost little).
    /// </summary>
    public abstract DbCommand ReadChunk(DbConnection connection, Guid jobId, long afterSeq, long upTo, int limit, IReadOnlyList<string>? kinds = null);

    /// <summary>The fields of a step event that <see cref="ReadStepFields"/> reads, by their names in the stored JSON.</summary>
    public static readonly IReadOnlyList<string> StepFields = ["loss", "learningRate", "samplesPerSecond"];

    /// <summary>
    /// A query of (Seq, the JSON's length, step, epoch, then each of <paramref name="fields"/> as its JSON text) of the job's
    /// step events with Seq &gt; afterSeq, in seq order, at most <paramref name="limit"/> rows: the database reads the
    /// figures out of the stored JSON, so no event is parsed in .NET. A missing field is null (or the JSON null).
    /// </summary>
    public abstract DbCommand ReadStepFields(DbConnection connection, Guid jobId, long afterSeq, int limit, IReadOnlyList<string> fields);

    /// <summary>
    /// A query of (Seq, Bytes) of the job's full layers events with after &lt; Seq ≤ upTo, in seq order: answered from the
    /// partial index IX_JobEvents_FullLayers alone (the query repeats its filter).
    /// </summary>
    public abstract DbCommand FullLayers(DbTransaction transaction, Guid jobId, long after, long upTo, int limit);

    /// <summary>Deletes the job's events after <paramref name="seq"/>, answering each deleted row's Bytes and Kind.</summary>
    public abstract DbCommand Truncate(DbTransaction transaction, Guid jobId, long seq);

    /// <summary>Replaces the rows' JSON with stubs and their Bytes with the stubs' size; the bytes this saved.</summary>
    public abstract Task<long> RewriteAsync(DbTransaction transaction, Guid jobId, IReadOnlyList<(long Seq, int Bytes)> rows);

    /// <summary>
    /// Succeeds once the database takes a write again, waiting up to <paramref name="wait"/> for a lock; throws the
    /// database's fault otherwise. Runs on a fresh connection (the job worker's wait for storage).
    /// </summary>
    public abstract Task ProbeAsync(string connectionString, TimeSpan wait, CancellationToken cancellationToken);

    /// <summary>A step field's generated column: its name, capitalised.</summary>
    protected static string Column(string field) => char.ToUpperInvariant(field[0]) + field[1..];

    /// <summary>The fields, each one of <see cref="StepFields"/> (their names are written into the SQL).</summary>
    protected static IReadOnlyList<string> Checked(IReadOnlyList<string> fields) =>
        fields.FirstOrDefault(f => !StepFields.Contains(f)) is { } unknown
            ? throw new ArgumentException($"\"{unknown}\" is not a step field", nameof(fields))
            : fields;

    protected static TCommand WithParameters<TCommand>(TCommand command, params (string Name, object Value)[] parameters)
        where TCommand : DbCommand
    {
        foreach ((string name, object value) in parameters)
        {
            DbParameter parameter = command.CreateParameter();
            parameter.ParameterName = name;
            parameter.Value = value;
            command.Parameters.Add(parameter);
        }

        return command;
    }
}

/// <summary>SQLite: unquoted names, ids as EF Core's SQLite provider stores a Guid (upper-case text).</summary>
public sealed class SqliteEventSql : EventSql
{
    public static readonly SqliteEventSql Instance = new();

    private static readonly string s_stub = string.Format(CultureInfo.InvariantCulture, "json_object(" + StubFields + ")",
        "Seq", "json_extract(Json, '$.time')", "json_extract(Json, '$.step')", "json('true')");

    private static string Id(Guid id) => id.ToString().ToUpperInvariant();

    /// <summary>BEGIN IMMEDIATE and every command of the batch wait SQLite's busy timeout of this connection object.</summary>
    public override void PrepareWrite(DbConnection connection, int timeoutSeconds) =>
        ((SqliteConnection)connection).DefaultTimeout = timeoutSeconds;

    /// <summary>
    /// One prepared statement rather than EF change tracking: this runs ten times a second beside training, and on a small
    /// machine every millisecond of CPU here is taken from libtorch's threads.
    /// </summary>
    public override async Task InsertAsync(DbTransaction transaction, IReadOnlyList<EventRow> rows)
    {
        if (rows.Count == 0)
        {
            return;
        }

        await using SqliteCommand insert = Command(transaction,
            "INSERT INTO JobEvents (JobId, Seq, Kind, Json, Bytes) VALUES ($job, $seq, $kind, $json, $bytes)");
        SqliteParameter job = insert.Parameters.Add("$job", SqliteType.Text);
        SqliteParameter seq = insert.Parameters.Add("$seq", SqliteType.Integer);
        SqliteParameter kind = insert.Parameters.Add("$kind", SqliteType.Text);
        SqliteParameter json = insert.Parameters.Add("$json", SqliteType.Text);
        SqliteParameter bytes = insert.Parameters.Add("$bytes", SqliteType.Integer);
        insert.Prepare();
        foreach (EventRow row in rows)
        {
            job.Value = Id(row.JobId);
            seq.Value = row.Seq;
            kind.Value = row.Kind;
            json.Value = row.Json;
            bytes.Value = row.Bytes;
            await insert.ExecuteNonQueryAsync();
        }
    }

    public override DbCommand ReadChunk(DbConnection connection, Guid jobId, long afterSeq, long upTo, int limit, IReadOnlyList<string>? kinds = null)
    {
        DbCommand query = connection.CreateCommand();
        string ofKinds = kinds is null ? "" : $" AND Kind IN ({string.Join(", ", kinds.Select((_, i) => $"$kind{i}"))})";
        query.CommandText = $"SELECT Seq, Json FROM JobEvents WHERE JobId = $job AND Seq > $after AND Seq <= $upTo{ofKinds} ORDER BY Seq LIMIT $limit";
        WithParameters(query, [.. (kinds ?? []).Select((kind, i) => ($"$kind{i}", (object)kind))]);
        return WithParameters(query, ("$job", Id(jobId)), ("$after", afterSeq), ("$upTo", upTo), ("$limit", limit));
    }

    /// <summary>The partial index of step events that holds their figures (SqliteTrainingDb).</summary>
    public const string StepsIndex = "IX_JobEvents_Steps";

    /// <summary>
    /// The step columns, read from the index that holds them (the virtual columns are not computed again, and no event is
    /// read); Bytes, not the JSON's length, for the same reason.
    /// </summary>
    public override DbCommand ReadStepFields(DbConnection connection, Guid jobId, long afterSeq, int limit, IReadOnlyList<string> fields)
    {
        DbCommand query = connection.CreateCommand();
        query.CommandText = "SELECT Seq, Bytes, Step, Epoch" + string.Concat(Checked(fields).Select(f => $", {Column(f)}"))
            + $" FROM JobEvents INDEXED BY {StepsIndex} WHERE JobId = $job AND Seq > $after AND Kind = 'step' ORDER BY Seq LIMIT $limit";
        return WithParameters(query, ("$job", Id(jobId)), ("$after", afterSeq), ("$limit", limit));
    }

    public override DbCommand FullLayers(DbTransaction transaction, Guid jobId, long after, long upTo, int limit) =>
        WithParameters(Command(transaction,
                "SELECT Seq, Bytes FROM JobEvents INDEXED BY IX_JobEvents_FullLayers WHERE JobId = $job AND Seq > $after AND Seq <= $upTo "
                + $"AND {HistoryThinning.FullLayersFilter} ORDER BY Seq LIMIT $limit"),
            ("$job", Id(jobId)), ("$after", after), ("$upTo", upTo), ("$limit", limit));

    public override DbCommand Truncate(DbTransaction transaction, Guid jobId, long seq) =>
        WithParameters(Command(transaction, "DELETE FROM JobEvents WHERE JobId = $job AND Seq > $seq RETURNING Bytes, Kind"),
            ("$job", Id(jobId)), ("$seq", seq));

    /// <summary>Two prepared statements a row: SQLite runs in process, so a round trip costs nothing.</summary>
    public override async Task<long> RewriteAsync(DbTransaction transaction, Guid jobId, IReadOnlyList<(long Seq, int Bytes)> rows)
    {
        if (rows.Count == 0)
        {
            return 0;
        }

        await using SqliteCommand stub = Command(transaction, $"UPDATE JobEvents SET Json = {s_stub} WHERE JobId = $job AND Seq = $seq");
        stub.Parameters.AddWithValue("$job", Id(jobId));
        SqliteParameter stubSeq = stub.Parameters.Add("$seq", SqliteType.Integer);
        await using SqliteCommand measure = Command(transaction,
            "UPDATE JobEvents SET Bytes = length(CAST(Json AS BLOB)) WHERE JobId = $job AND Seq = $seq RETURNING Bytes");
        measure.Parameters.AddWithValue("$job", Id(jobId));
        SqliteParameter measureSeq = measure.Parameters.Add("$seq", SqliteType.Integer);
        stub.Prepare();
        measure.Prepare();
        long saved = 0;
        foreach ((long seq, int bytes) in rows)
        {
            stubSeq.Value = measureSeq.Value = seq;
            await stub.ExecuteNonQueryAsync();
            saved += bytes - Convert.ToInt64(await measure.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
        }

        return saved;
    }

    /// <summary>BEGIN IMMEDIATE waits out another process's write lock for up to the wait, ending as soon as it is released.</summary>
    public override async Task ProbeAsync(string connectionString, TimeSpan wait, CancellationToken cancellationToken)
    {
        await using var connection = new SqliteConnection(new SqliteConnectionStringBuilder(connectionString) { Pooling = false }.ToString());
        await connection.OpenAsync(cancellationToken);
        await using SqliteCommand command = connection.CreateCommand();
        command.CommandTimeout = Math.Max(1, (int)wait.TotalSeconds);
        command.CommandText = "BEGIN IMMEDIATE; ROLLBACK;";
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static SqliteCommand Command(DbTransaction transaction, string sql)
    {
        var command = ((SqliteConnection)transaction.Connection!).CreateCommand();
        command.Transaction = (SqliteTransaction)transaction;
        command.CommandText = sql;
        return command;
    }
}

/// <summary>
/// PostgreSQL: quoted names (unquoted ones fold to lower case), ids as uuid, and one statement per batch where SQLite runs
/// one per row, since every statement is a round trip to the server. A lock waited for longer than the connection's
/// lock_timeout fails the statement (55P03), which is a storage fault (Storage sets it; docs/operations.md).
/// </summary>
public sealed class PostgresEventSql : EventSql
{
    public static readonly PostgresEventSql Instance = new();

    // json, not jsonb: keeps the keys in this order and "time" exactly as written; -> keeps step a number (->> is text).
    private static readonly string s_stub = string.Format(CultureInfo.InvariantCulture, "json_build_object(" + StubFields + ")::text",
        "\"Seq\"", "(\"Json\"::json -> 'time')", "(\"Json\"::json -> 'step')", "true");

    /// <summary>The whole batch in one statement: each column an array parameter, unnested into rows.</summary>
    public override async Task InsertAsync(DbTransaction transaction, IReadOnlyList<EventRow> rows)
    {
        if (rows.Count == 0)
        {
            return;
        }

        await using NpgsqlCommand insert = Command(transaction,
            "INSERT INTO \"JobEvents\" (\"JobId\", \"Seq\", \"Kind\", \"Json\", \"Bytes\") "
            + "SELECT * FROM unnest(@job, @seq, @kind, @json, @bytes)");
        insert.Parameters.Add(ArrayOf("job", NpgsqlDbType.Uuid, rows.Select(r => r.JobId)));
        insert.Parameters.Add(ArrayOf("seq", NpgsqlDbType.Bigint, rows.Select(r => r.Seq)));
        insert.Parameters.Add(ArrayOf("kind", NpgsqlDbType.Text, rows.Select(r => r.Kind)));
        insert.Parameters.Add(ArrayOf("json", NpgsqlDbType.Text, rows.Select(r => r.Json)));
        insert.Parameters.Add(ArrayOf("bytes", NpgsqlDbType.Integer, rows.Select(r => r.Bytes)));
        await insert.ExecuteNonQueryAsync();
    }

    public override DbCommand ReadChunk(DbConnection connection, Guid jobId, long afterSeq, long upTo, int limit, IReadOnlyList<string>? kinds = null)
    {
        var query = new NpgsqlCommand(
            "SELECT \"Seq\", \"Json\" FROM \"JobEvents\" WHERE \"JobId\" = @job AND \"Seq\" > @after AND \"Seq\" <= @upTo"
            + (kinds is null ? "" : " AND \"Kind\" = ANY(@kinds)") + " ORDER BY \"Seq\" LIMIT @limit",
            (NpgsqlConnection)connection);
        if (kinds is not null)
        {
            query.Parameters.Add(ArrayOf("kinds", NpgsqlDbType.Text, kinds));
        }

        return WithParameters(query, ("job", jobId), ("after", afterSeq), ("upTo", upTo), ("limit", limit));
    }

    /// <summary>The step columns the database generated from each event's JSON (JobEventRecord.Step and the rest).</summary>
    public override DbCommand ReadStepFields(DbConnection connection, Guid jobId, long afterSeq, int limit, IReadOnlyList<string> fields)
    {
        var query = new NpgsqlCommand(
            "SELECT \"Seq\", length(\"Json\"), \"Step\", \"Epoch\"" + string.Concat(Checked(fields).Select(f => $", \"{Column(f)}\""))
            + " FROM \"JobEvents\" WHERE \"JobId\" = @job AND \"Seq\" > @after AND \"Kind\" = 'step' ORDER BY \"Seq\" LIMIT @limit",
            (NpgsqlConnection)connection);
        return WithParameters(query, ("job", jobId), ("after", afterSeq), ("limit", limit));
    }

    public override DbCommand FullLayers(DbTransaction transaction, Guid jobId, long after, long upTo, int limit) =>
        WithParameters(Command(transaction,
                "SELECT \"Seq\", \"Bytes\" FROM \"JobEvents\" WHERE \"JobId\" = @job AND \"Seq\" > @after AND \"Seq\" <= @upTo "
                + $"AND {HistoryThinning.FullLayersFilter} ORDER BY \"Seq\" LIMIT @limit"),
            ("job", jobId), ("after", after), ("upTo", upTo), ("limit", limit));

    public override DbCommand Truncate(DbTransaction transaction, Guid jobId, long seq) =>
        WithParameters(Command(transaction, "DELETE FROM \"JobEvents\" WHERE \"JobId\" = @job AND \"Seq\" > @seq RETURNING \"Bytes\", \"Kind\""),
            ("job", jobId), ("seq", seq));

    public override async Task<long> RewriteAsync(DbTransaction transaction, Guid jobId, IReadOnlyList<(long Seq, int Bytes)> rows)
    {
        if (rows.Count == 0)
        {
            return 0;
        }

        await using NpgsqlCommand rewrite = Command(transaction,
            "UPDATE \"JobEvents\" e SET \"Json\" = s.stub, \"Bytes\" = octet_length(s.stub) "
            + $"FROM (SELECT \"Seq\", {s_stub} AS stub FROM \"JobEvents\" WHERE \"JobId\" = @job AND \"Seq\" = ANY(@seqs)) s "
            + "WHERE e.\"JobId\" = @job AND e.\"Seq\" = s.\"Seq\" RETURNING e.\"Bytes\"");
        rewrite.Parameters.Add(new NpgsqlParameter<Guid>("job", NpgsqlDbType.Uuid) { TypedValue = jobId });
        rewrite.Parameters.Add(ArrayOf("seqs", NpgsqlDbType.Bigint, rows.Select(r => r.Seq)));
        long saved = rows.Sum(r => (long)r.Bytes);
        await using NpgsqlDataReader stubs = await rewrite.ExecuteReaderAsync();
        while (await stubs.ReadAsync())
        {
            saved -= stubs.GetInt32(0);
        }

        return saved;
    }

    /// <summary>
    /// A write that changes nothing (it needs the lock an insert needs, and fails on a read-only server) on a fresh
    /// connection; then the pool's connections are dropped, since after an outage each would fail once before it is replaced.
    /// </summary>
    public override async Task ProbeAsync(string connectionString, TimeSpan wait, CancellationToken cancellationToken)
    {
        int seconds = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds));
        var builder = new NpgsqlConnectionStringBuilder(connectionString)
        {
            Pooling = false,
            Timeout = seconds,
            CommandTimeout = seconds + 1,
        };
        await using (var connection = new NpgsqlConnection(builder.ConnectionString))
        {
            await connection.OpenAsync(cancellationToken);
            await using NpgsqlTransaction transaction = await connection.BeginTransactionAsync(cancellationToken);
            string sql = string.Create(CultureInfo.InvariantCulture,
                $"SET LOCAL lock_timeout = {seconds * 1000}; UPDATE \"JobEvents\" SET \"Seq\" = \"Seq\" WHERE false");
            await using var probe = new NpgsqlCommand(sql, connection, transaction);
            await probe.ExecuteNonQueryAsync(cancellationToken);
            await transaction.RollbackAsync(cancellationToken);
        }

        NpgsqlConnection.ClearAllPools();
    }

    private static NpgsqlParameter<T[]> ArrayOf<T>(string name, NpgsqlDbType elementType, IEnumerable<T> values) =>
        new(name, NpgsqlDbType.Array | elementType) { TypedValue = [.. values] };

    private static NpgsqlCommand Command(DbTransaction transaction, string sql) =>
        new(sql, (NpgsqlConnection)transaction.Connection!, (NpgsqlTransaction)transaction);
}
