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
            migrationBuilder.AddColumn<int>(
                name: "Epoch",
                table: "JobEvents",
                type: "integer",
                nullable: true,
                computedColumnSql: "CASE WHEN \"Kind\" = 'step' THEN ((\"Json\"::json) ->> 'epoch')::integer END",
                stored: true);

            migrationBuilder.AddColumn<string>(
                name: "LearningRate",
                table: "JobEvents",
                type: "text",
                nullable: true,
                computedColumnSql: "CASE WHEN \"Kind\" = 'step' THEN ((\"Json\"::json) -> 'learningRate')::text END",
                stored: true);

            migrationBuilder.AddColumn<string>(
                name: "Loss",
                table: "JobEvents",
                type: "text",
                nullable: true,
                computedColumnSql: "CASE WHEN \"Kind\" = 'step' THEN ((\"Json\"::json) -> 'loss')::text END",
                stored: true);

            migrationBuilder.AddColumn<string>(
                name: "SamplesPerSecond",
                table: "JobEvents",
                type: "text",
                nullable: true,
                computedColumnSql: "CASE WHEN \"Kind\" = 'step' THEN ((\"Json\"::json) -> 'samplesPerSecond')::text END",
                stored: true);

            migrationBuilder.AddColumn<long>(
                name: "Step",
                table: "JobEvents",
                type: "bigint",
                nullable: true,
                computedColumnSql: "CASE WHEN \"Kind\" = 'step' THEN ((\"Json\"::json) ->> 'step')::bigint END",
                stored: true);

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
