using Microsoft.Playwright;
using TrainingService.Api.Tests;

namespace TrainingService.Dashboard.Tests;

/// <summary>
/// One headless Chromium for all browser tests: Debian's /usr/bin/chromium (apt package chromium) driven by Playwright,
/// which never downloads a browser of its own. Each test opens its own context (fresh storage) from it.
/// </summary>
public sealed class Browser : IAsyncLifetime
{
    public static string ExecutablePath => Environment.GetEnvironmentVariable("CHROMIUM_PATH") ?? "/usr/bin/chromium";

    private IPlaywright? _playwright;
    private string? _profile;

    public IBrowser Instance { get; private set; } = null!;

    /// <summary>artifacts/screenshots at the repository's root: CI keeps it as the run's artifact.</summary>
    public static string ScreenshotFolder { get; } = FindScreenshotFolder();

    public async Task InitializeAsync()
    {
        Assert.True(File.Exists(ExecutablePath), $"Chromium is not at {ExecutablePath}: apt-get install -y chromium (or set CHROMIUM_PATH)");
        _playwright = await Playwright.CreateAsync();
        _profile = Directory.CreateTempSubdirectory("trainingservice-chromium-").FullName;
        Instance = await _playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = ExecutablePath,
            Headless = true,
            Args =
            [
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
            ],
        });
    }

    /// <summary>
    /// A new page in its own context, 1280×900 unless told otherwise; dialogs (cancel's confirm) are accepted. Signed in
    /// as the test service's admin through a sign-in address (#key=…, kept for the tab) unless told otherwise.
    /// </summary>
    public async Task<IPage> NewPageAsync(string baseUrl, int width = 1280, int height = 900, bool signIn = true)
    {
        IBrowserContext context = await Instance.NewContextAsync(new() { BaseURL = baseUrl, ViewportSize = new() { Width = width, Height = height } });
        IPage page = await context.NewPageAsync();
        page.Dialog += (_, dialog) => _ = dialog.AcceptAsync();
        page.SetDefaultTimeout(30_000);
        if (signIn)
        {
            await page.GotoAsync($"#key={TrainingServiceFactory.AdminKey}");
            await Assertions.Expect(page.Locator("#who")).ToHaveTextAsync("Signed in as admin (admin)");
        }

        return page;
    }

    /// <summary>A full-page screenshot; the page is scrolled through first, since charts draw only when near the viewport.</summary>
    public static async Task ScreenshotAsync(IPage page, string name)
    {
        await page.EvaluateAsync("""
            async () => {
              const frame = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
              for (let y = 0; y < document.documentElement.scrollHeight; y += window.innerHeight / 2) { window.scrollTo(0, y); await frame(); }
              window.scrollTo(0, 0); await frame();
            }
            """);
        await page.ScreenshotAsync(new() { Path = Path.Combine(ScreenshotFolder, $"{name}.png"), FullPage = true });
    }

    public async Task DisposeAsync()
    {
        await Instance.CloseAsync();
        _playwright?.Dispose();
        if (_profile is not null)
        {
            Directory.Delete(_profile, recursive: true);
        }
    }

    private static string FindScreenshotFolder()
    {
        string folder = Path.Combine(Dashboard.RepositoryRoot, "artifacts", "screenshots");
        Directory.CreateDirectory(folder);
        return folder;
    }
}

[CollectionDefinition(Name)]
public sealed class BrowserCollection : ICollectionFixture<Browser>
{
    public const string Name = "browser";
}
