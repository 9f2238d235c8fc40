using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace TrainingService.Api.Persistence.Migrations.Sqlite
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
                type: "TEXT",
                maxLength: 32,
                nullable: true);

            migrationBuilder.AddColumn<Guid>(
                name: "SweepId",
                table: "Jobs",
                type: "TEXT",
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "SweepTrial",
                table: "Jobs",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.AddColumn<double>(
                name: "SweepValue",
                table: "Jobs",
                type: "REAL",
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "SweepValueEpoch",
                table: "Jobs",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.CreateTable(
                name: "SweepRungs",
                columns: table => new
                {
                    SweepId = table.Column<Guid>(type: "TEXT", nullable: false),
                    Epoch = table.Column<int>(type: "INTEGER", nullable: false),
                    Trial = table.Column<int>(type: "INTEGER", nullable: false),
                    Value = table.Column<double>(type: "REAL", nullable: false),
                    Cutoff = table.Column<double>(type: "REAL", nullable: true),
                    Earlier = table.Column<int>(type: "INTEGER", nullable: false),
                    Continued = table.Column<bool>(type: "INTEGER", nullable: false),
                    ReportedAt = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_SweepRungs", x => new { x.SweepId, x.Epoch, x.Trial });
                });

            migrationBuilder.CreateTable(
                name: "Sweeps",
                columns: table => new
                {
                    Id = table.Column<Guid>(type: "TEXT", nullable: false),
                    Owner = table.Column<string>(type: "TEXT", nullable: false),
                    Name = table.Column<string>(type: "TEXT", maxLength: 200, nullable: true),
                    State = table.Column<string>(type: "TEXT", maxLength: 16, nullable: false),
                    Settings = table.Column<string>(type: "TEXT", nullable: false),
                    TrialParams = table.Column<string>(type: "TEXT", nullable: false),
                    DatasetId = table.Column<Guid>(type: "TEXT", nullable: false),
                    Trials = table.Column<int>(type: "INTEGER", nullable: false),
                    Parallelism = table.Column<int>(type: "INTEGER", nullable: false),
                    TrialsCreated = table.Column<int>(type: "INTEGER", nullable: false),
                    Waiting = table.Column<string>(type: "TEXT", nullable: true),
                    Error = table.Column<string>(type: "TEXT", nullable: true),
                    RangeTestJobId = table.Column<Guid>(type: "TEXT", nullable: true),
                    SuggestedLearningRate = table.Column<double>(type: "REAL", nullable: true),
                    CreatedAt = table.Column<DateTime>(type: "TEXT", nullable: false),
                    FinishedAt = table.Column<DateTime>(type: "TEXT", nullable: true)
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
