using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace TrainingService.Api.Persistence.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class StepColumns : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            // One statement: each ADD of a stored generated column rewrites the table, and this is the largest one.
            migrationBuilder.Sql("ALTER TABLE \"JobEvents\" "
                + "ADD COLUMN \"Epoch\" integer GENERATED ALWAYS AS (CASE WHEN \"Kind\" = 'step' THEN ((\"Json\"::json) ->> 'epoch')::integer END) STORED, "
                + "ADD COLUMN \"LearningRate\" text GENERATED ALWAYS AS (CASE WHEN \"Kind\" = 'step' THEN ((\"Json\"::json) -> 'learningRate')::text END) STORED, "
                + "ADD COLUMN \"Loss\" text GENERATED ALWAYS AS (CASE WHEN \"Kind\" = 'step' THEN ((\"Json\"::json) -> 'loss')::text END) STORED, "
                + "ADD COLUMN \"SamplesPerSecond\" text GENERATED ALWAYS AS (CASE WHEN \"Kind\" = 'step' THEN ((\"Json\"::json) -> 'samplesPerSecond')::text END) STORED, "
                + "ADD COLUMN \"Step\" bigint GENERATED ALWAYS AS (CASE WHEN \"Kind\" = 'step' THEN ((\"Json\"::json) ->> 'step')::bigint END) STORED;");

            // A job's history count takes in its step events' figures as kept here: HistoryEstimate.StepFiguresBytes (100) each.
            migrationBuilder.Sql("UPDATE \"Jobs\" j SET \"HistoryBytes\" = j.\"HistoryBytes\" + (SELECT COUNT(*) FROM \"JobEvents\" e WHERE e.\"JobId\" = j.\"Id\" AND e.\"Kind\" = 'step') * 100;");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("UPDATE \"Jobs\" j SET \"HistoryBytes\" = j.\"HistoryBytes\" - (SELECT COUNT(*) FROM \"JobEvents\" e WHERE e.\"JobId\" = j.\"Id\" AND e.\"Kind\" = 'step') * 100;");

            migrationBuilder.DropColumn(
                name: "Epoch",
                table: "JobEvents");

            migrationBuilder.DropColumn(
                name: "LearningRate",
                table: "JobEvents");

            migrationBuilder.DropColumn(
                name: "Loss",
                table: "JobEvents");

            migrationBuilder.DropColumn(
                name: "SamplesPerSecond",
                table: "JobEvents");

            migrationBuilder.DropColumn(
                name: "Step",
                table: "JobEvents");
        }
    }
}
