using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace TrainingService.Api.Persistence.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class HistoryThinning : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<long>(
                name: "HistoryBlock",
                table: "Jobs",
                type: "INTEGER",
                nullable: false,
                defaultValue: 0L);

            migrationBuilder.AddColumn<long>(
                name: "HistoryBytes",
                table: "Jobs",
                type: "INTEGER",
                nullable: false,
                defaultValue: 0L);

            migrationBuilder.AddColumn<long>(
                name: "HistoryThinnedSeq",
                table: "Jobs",
                type: "INTEGER",
                nullable: false,
                defaultValue: 0L);

            migrationBuilder.AddColumn<int>(
                name: "Bytes",
                table: "JobEvents",
                type: "INTEGER",
                nullable: false,
                defaultValue: 0);

            // Events stored before: their sizes, and each job's total (HistoryEstimate.RowBytes = 110 per row).
            migrationBuilder.Sql("UPDATE JobEvents SET Bytes = length(CAST(Json AS BLOB));");
            migrationBuilder.Sql("UPDATE Jobs SET HistoryBytes = (SELECT COALESCE(SUM(Bytes), 0) + COUNT(*) * 110 FROM JobEvents WHERE JobEvents.JobId = Jobs.Id);");

            migrationBuilder.CreateIndex(
                name: "IX_JobEvents_FullLayers",
                table: "JobEvents",
                columns: new[] { "JobId", "Seq", "Bytes" },
                filter: "\"Kind\" = 'layers' AND \"Bytes\" > 160");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_JobEvents_FullLayers",
                table: "JobEvents");

            migrationBuilder.DropColumn(
                name: "HistoryBlock",
                table: "Jobs");

            migrationBuilder.DropColumn(
                name: "HistoryBytes",
                table: "Jobs");

            migrationBuilder.DropColumn(
                name: "HistoryThinnedSeq",
                table: "Jobs");

            migrationBuilder.DropColumn(
                name: "Bytes",
                table: "JobEvents");
        }
    }
}
