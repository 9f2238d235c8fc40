using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace TrainingService.Api.Persistence.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class Sweeps : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "StopCode",
                table: "Jobs",
                type: "character varying(32)",
                maxLength: 32,
                nullable: true);

            migrationBuilder.AddColumn<Guid>(
                name: "SweepId",
                table: "Jobs",
                type: "uuid",
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "SweepTrial",
                table: "Jobs",
                type: "integer",
                nullable: true);

            migrationBuilder.AddColumn<double>(
                name: "SweepValue",
                table: "Jobs",
                type: "double precision",
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "SweepValueEpoch",
                table: "Jobs",
                type: "integer",
                nullable: true);

            migrationBuilder.CreateTable(
                name: "SweepRungs",
                columns: table => new
                {
                    SweepId = table.Column<Guid>(type: "uuid", nullable: false),
                    Epoch = table.Column<int>(type: "integer", nullable: false),
                    Trial = table.Column<int>(type: "integer", nullable: false),
                    Value = table.Column<double>(type: "double precision", nullable: false),
                    Cutoff = table.Column<double>(type: "double precision", nullable: true),
                    Earlier = table.Column<int>(type: "integer", nullable: false),
                    Continued = table.Column<bool>(type: "boolean", nullable: false),
                    ReportedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_SweepRungs", x => new { x.SweepId, x.Epoch, x.Trial });
                });

            migrationBuilder.CreateTable(
                name: "Sweeps",
                columns: table => new
                {
                    Id = table.Column<Guid>(type: "uuid", nullable: false),
                    Owner = table.Column<string>(type: "text", nullable: false),
                    Name = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: true),
                    State = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    Settings = table.Column<string>(type: "text", nullable: false),
                    TrialParams = table.Column<string>(type: "text", nullable: false),
                    DatasetId = table.Column<Guid>(type: "uuid", nullable: false),
                    Trials = table.Column<int>(type: "integer", nullable: false),
                    Parallelism = table.Column<int>(type: "integer", nullable: false),
                    TrialsCreated = table.Column<int>(type: "integer", nullable: false),
                    Waiting = table.Column<string>(type: "text", nullable: true),
                    Error = table.Column<string>(type: "text", nullable: true),
                    RangeTestJobId = table.Column<Guid>(type: "uuid", nullable: true),
                    SuggestedLearningRate = table.Column<double>(type: "double precision", nullable: true),
                    CreatedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: false),
                    FinishedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_Sweeps", x => x.Id);
                });

            migrationBuilder.CreateIndex(
                name: "IX_Jobs_SweepId_SweepTrial",
                table: "Jobs",
                columns: new[] { "SweepId", "SweepTrial" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_Sweeps_DatasetId",
                table: "Sweeps",
                column: "DatasetId");

            migrationBuilder.CreateIndex(
                name: "IX_Sweeps_Owner_CreatedAt",
                table: "Sweeps",
                columns: new[] { "Owner", "CreatedAt" });

            migrationBuilder.CreateIndex(
                name: "IX_Sweeps_State_CreatedAt",
                table: "Sweeps",
                columns: new[] { "State", "CreatedAt" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "SweepRungs");

            migrationBuilder.DropTable(
                name: "Sweeps");

            migrationBuilder.DropIndex(
                name: "IX_Jobs_SweepId_SweepTrial",
                table: "Jobs");

            migrationBuilder.DropColumn(
                name: "StopCode",
                table: "Jobs");

            migrationBuilder.DropColumn(
                name: "SweepId",
                table: "Jobs");

            migrationBuilder.DropColumn(
                name: "SweepTrial",
                table: "Jobs");

            migrationBuilder.DropColumn(
                name: "SweepValue",
                table: "Jobs");

            migrationBuilder.DropColumn(
                name: "SweepValueEpoch",
                table: "Jobs");
        }
    }
}
