using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace TrainingService.Api.Persistence.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class TypedJobSettings : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            // Spec, Hyperparameters, Monitoring and Sanity keep their JSON text, now read as the Contracts records;
            // jobs created before threads were fixed per job resume on one.
            migrationBuilder.AddColumn<int>(
                name: "Threads",
                table: "Jobs",
                type: "INTEGER",
                nullable: false,
                defaultValue: 1);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "Threads",
                table: "Jobs");
        }
    }
}
