using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace TrainingService.Api.Persistence.Migrations.Sqlite
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
                type: "INTEGER",
                nullable: true,
                computedColumnSql: "CASE WHEN Kind = 'step' THEN Json ->> '$.epoch' END",
                stored: false);

            migrationBuilder.AddColumn<string>(
                name: "LearningRate",
                table: "JobEvents",
                type: "TEXT",
                nullable: true,
                computedColumnSql: "CASE WHEN Kind = 'step' THEN Json -> '$.learningRate' END",
                stored: false);

            migrationBuilder.AddColumn<string>(
                name: "Loss",
                table: "JobEvents",
                type: "TEXT",
                nullable: true,
                computedColumnSql: "CASE WHEN Kind = 'step' THEN Json -> '$.loss' END",
                stored: false);

            migrationBuilder.AddColumn<string>(
                name: "SamplesPerSecond",
                table: "JobEvents",
                type: "TEXT",
                nullable: true,
                computedColumnSql: "CASE WHEN Kind = 'step' THEN Json -> '$.samplesPerSecond' END",
                stored: false);

            migrationBuilder.AddColumn<long>(
                name: "Step",
                table: "JobEvents",
                type: "INTEGER",
                nullable: true,
                computedColumnSql: "CASE WHEN Kind = 'step' THEN Json ->> '$.step' END",
                stored: false);

            migrationBuilder.CreateIndex(
                name: "IX_JobEvents_Steps",
                table: "JobEvents",
                columns: new[] { "JobId", "Seq", "Bytes", "Step", "Epoch", "Loss", "LearningRate", "SamplesPerSecond" },
                filter: "\"Kind\" = 'step'");

            // A job's history count takes in its step events' figures as kept here: HistoryEstimate.StepFiguresBytes (100) each.
            migrationBuilder.Sql("UPDATE Jobs SET HistoryBytes = HistoryBytes + (SELECT COUNT(*) FROM JobEvents WHERE JobEvents.JobId = Jobs.Id AND Kind = 'step') * 100;");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("UPDATE Jobs SET HistoryBytes = HistoryBytes - (SELECT COUNT(*) FROM JobEvents WHERE JobEvents.JobId = Jobs.Id AND Kind = 'step') * 100;");

            migrationBuilder.DropIndex(
                name: "IX_JobEvents_Steps",
                table: "JobEvents");

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
