namespace TrainingService.Api.Tests.Postgres;

public sealed class PostgresServerTests
{
    [Fact]
    public void WithoutTheServerBinariesTheFixtureSaysWhatToInstall()
    {
        string empty = Directory.CreateTempSubdirectory("no-postgres-").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(empty, "15", "bin"));
            var error = Assert.Throws<InvalidOperationException>(() => PostgresServer.FindBinaries(configured: "", root: empty));
            Assert.Contains("apt-get install -y postgresql", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(empty, recursive: true);
        }
    }

    [Fact]
    public void TheNewestInstalledVersionIsChosen()
    {
        string root = Directory.CreateTempSubdirectory("postgres-versions-").FullName;
        try
        {
            foreach (string version in new[] { "9", "15", "13" })
            {
                string bin = Directory.CreateDirectory(Path.Combine(root, version, "bin")).FullName;
                File.WriteAllText(Path.Combine(bin, "initdb"), "");
                File.WriteAllText(Path.Combine(bin, "pg_ctl"), "");
            }

            Assert.Equal(Path.Combine(root, "15", "bin"), PostgresServer.FindBinaries(configured: "", root: root));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
