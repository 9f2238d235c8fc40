using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Playwright;
using TrainingService.Api.Tests;
using static Microsoft.Playwright.Assertions;

namespace TrainingService.Dashboard.Tests;

/// <summary>Signing in with a key (a sign-in address or the form), refusals in the server's words, and share links.</summary>
[Collection(BrowserCollection.Name)]
public sealed class SignInTests(Browser browser)
{
    private const string Key = TrainingServiceFactory.AdminKey;

    [Fact]
    public async Task ASignInAddressSignsTheTabInAndLeavesNoKeyInTheAddressOrAnyUrl()
    {
        await using LiveService service = LiveService.Start();
        Guid job = await Dashboard.LongJobOnShapesAsync(service.Client);
        IPage page = await browser.NewPageAsync(service.BaseUrl, signIn: false);
        var urls = new List<string>();
        page.Request += (_, request) => { lock (urls) { urls.Add(request.Url); } };
        page.WebSocket += (_, socket) => { lock (urls) { urls.Add(socket.Url); } };

        await page.GotoAsync($"#key={Key}");
        await Expect(page.Locator("#who")).ToHaveTextAsync("Signed in as admin (admin)");
        await Expect(page.Locator("table.jobs tbody tr")).ToHaveCountAsync(1);
        Assert.DoesNotContain(Key, page.Url, StringComparison.Ordinal);
        Assert.EndsWith("/#/", page.Url, StringComparison.Ordinal);
        // Replaced, not added: no entry of the tab's history holds the key, so Back cannot bring it back.
        Assert.All(await page.EvaluateAsync<string[]>("() => navigation.entries().map(e => e.url)"), u => Assert.DoesNotContain(Key, u, StringComparison.Ordinal));
        Assert.Equal(Key, await page.EvaluateAsync<string>("() => sessionStorage.getItem('auth.key')"));
        Assert.Null(await page.EvaluateAsync<string?>("() => localStorage.getItem('auth.key')"));

        await page.ReloadAsync();
        await Expect(page.Locator("#who")).ToHaveTextAsync("Signed in as admin (admin)");
        await Expect(page.Locator("table.jobs tbody tr")).ToHaveCountAsync(1);

        // The job page: its pictures and live stream come with the key too, and no URL carries it but the hub's socket.
        await page.GotoAsync($"#/jobs/{job}");
        await Dashboard.WaitAsync(page, "p.job && p.job.link === 'live' && p.job.steps >= 5");
        await Browser.ScreenshotAsync(page, "signed-in");
        lock (urls)
        {
            Assert.NotEmpty(urls);
            Assert.All(urls.Where(u => !u.Contains("/hubs/training?", StringComparison.Ordinal)), u => Assert.DoesNotContain(Key, u, StringComparison.Ordinal));
        }

        // A tab of its own has no key until the browser remembers it.
        IPage other = await page.Context.NewPageAsync();
        await other.GotoAsync(service.BaseUrl);
        await Expect(other.Locator("#signin-key")).ToBeVisibleAsync();
        await page.CheckAsync("#remember-key");
        Assert.Equal(Key, await page.EvaluateAsync<string>("() => localStorage.getItem('auth.key')"));
        await other.ReloadAsync();
        await Expect(other.Locator("#who")).ToHaveTextAsync("Signed in as admin (admin)");

        await other.ClickAsync("#sign-out");
        await Expect(other.Locator("#signin-key")).ToBeVisibleAsync();
        Assert.Null(await other.EvaluateAsync<string?>("() => localStorage.getItem('auth.key') ?? sessionStorage.getItem('auth.key')"));
        await service.Client.PostAsync(new Uri($"jobs/{job}/cancel", UriKind.Relative), null);
    }

    [Fact]
    public async Task AWrongOrRevokedKeyIsRefusedInTheServersWords()
    {
        await using LiveService service = LiveService.Start();
        IPage page = await browser.NewPageAsync(service.BaseUrl, signIn: false);
        await page.GotoAsync("");
        await Expect(page.Locator("#signin-key")).ToBeFocusedAsync();
        Assert.Equal("password", await page.GetAttributeAsync("#signin-key", "type"));

        const string wrong = "tsk_not-a-key-this-service-issued-0000000000000";
        await page.FillAsync("#signin-key", wrong);
        await page.ClickAsync("#signin-submit");
        await Expect(page.Locator("#signin-error")).ToHaveTextAsync(await RefusalAsync(service, wrong));
        await Expect(page.Locator("#signin-key")).ToHaveAttributeAsync("aria-invalid", "true");
        Assert.Null(await page.EvaluateAsync<string?>("() => sessionStorage.getItem('auth.key') ?? localStorage.getItem('auth.key')"));
        await Browser.ScreenshotAsync(page, "sign-in-refused");

        // A key of its own, signed in with the form and remembered, then revoked: the next request brings the form back.
        HttpResponseMessage created = await service.Client.PostAsJsonAsync("keys", new { name = "laptop" });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        JsonElement key = await created.Content.ReadFromJsonAsync<JsonElement>();
        string secret = key.GetProperty("secret").GetString()!;
        await page.FillAsync("#signin-key", secret);
        await page.CheckAsync("#signin-remember");
        await page.ClickAsync("#signin-submit");
        await Expect(page.Locator("#who")).ToHaveTextAsync("Signed in as admin (admin)");
        await Expect(page.Locator("#remember-key")).ToBeCheckedAsync();
        Assert.Equal(secret, await page.EvaluateAsync<string>("() => localStorage.getItem('auth.key')"));

        Assert.Equal(HttpStatusCode.NoContent, (await service.Client.DeleteAsync(new Uri($"keys/{key.GetProperty("id").GetGuid()}", UriKind.Relative))).StatusCode);
        await Expect(page.Locator("#signin-error")).ToHaveTextAsync(await RefusalAsync(service, secret)); // the jobs list refreshes every second
        await Expect(page.Locator("#signin-error")).ToContainTextAsync("revoked");
        await Expect(page.Locator("#who")).ToHaveCountAsync(0);

        // The refused key stays stored (a reload says why again) until forgotten.
        await page.ClickAsync("#signin-forget");
        await Expect(page.Locator("#signin-error")).ToBeEmptyAsync();
        await Expect(page.Locator("#signin-forget")).ToHaveCountAsync(0);
        Assert.Null(await page.EvaluateAsync<string?>("() => localStorage.getItem('auth.key') ?? sessionStorage.getItem('auth.key')"));
    }

    [Fact]
    public async Task AShareLinkOpensOneJobReadOnlyAndLiveAndNothingElse()
    {
        await using LiveService service = LiveService.Start();
        Guid job = await Dashboard.LongJobOnShapesAsync(service.Client);

        // The owner makes the link on the job page.
        IPage owner = await browser.NewPageAsync(service.BaseUrl);
        await owner.GotoAsync($"#/jobs/{job}");
        await Dashboard.WaitAsync(owner, "p.job && p.job.state === 'Running'");
        await owner.ClickAsync("#share");
        await owner.SelectOptionAsync("#share-expiry", "1");
        await owner.ClickAsync("#share-create");
        ILocator link = owner.Locator("#share-url");
        await Expect(link).ToHaveValueAsync(new System.Text.RegularExpressions.Regex($"#/jobs/{job}\\?share=tss_"));
        await Expect(owner.Locator("#shares tbody tr")).ToHaveCountAsync(1);
        await Expect(owner.Locator("#shares tbody tr .share-state")).ToHaveTextAsync("active");
        await Browser.ScreenshotAsync(owner, "share-made");
        string url = await link.InputValueAsync();
        Assert.StartsWith(service.BaseUrl, url, StringComparison.Ordinal);
        await service.Client.PostAsync(new Uri($"jobs/{job}/snapshot", UriKind.Relative), null); // pictures to show

        // Someone without a key opens it: the job, live, and no control.
        IPage viewer = await browser.NewPageAsync(service.BaseUrl, signIn: false);
        await viewer.GotoAsync(url);
        await Expect(viewer.Locator("#shared-banner")).ToContainTextAsync("read-only");
        Assert.DoesNotContain("share=", viewer.Url, StringComparison.Ordinal);
        await Dashboard.WaitAsync(viewer, "p.job && p.job.link === 'live' && p.job.state === 'Running' && p.latencies.length >= 5");
        long seen = (await Dashboard.ProbeAsync(viewer)).LastStep;
        await Dashboard.WaitAsync(viewer, $"p.job.lastStep > {seen + 10}"); // loss keeps arriving
        Assert.True(await viewer.Locator("#loss-chart canvas").CountAsync() > 0);
        foreach (string control in new[] { "#pause", "#resume", "#cancel", "#finish", "#steer", "#steer-apply", "#snapshot", "#weights", "#share", "#try-file" })
        {
            await Expect(viewer.Locator(control)).ToHaveCountAsync(0);
        }

        await Expect(viewer.Locator("header nav")).ToBeHiddenAsync();
        await Expect(viewer.Locator("#visuals img.filters")).ToHaveCountAsync(1);
        Assert.True(await Dashboard.PictureWidthAsync(viewer, "#visuals img.filters") > 0);
        await Expect(viewer.Locator("#probes button")).ToHaveCountAsync(16);
        await Expect(viewer.Locator("#probes img")).ToHaveCountAsync(0); // no dataset samples: numbered buttons
        await viewer.Locator("#probes button").Nth(3).ClickAsync();
        await Expect(viewer.Locator("#visuals img.maps")).ToHaveAttributeAsync("data-src", new System.Text.RegularExpressions.Regex("sample=3&"));
        Assert.True(await Dashboard.PictureWidthAsync(viewer, "#visuals img.maps") > 0);
        await Browser.ScreenshotAsync(viewer, "shared-job");

        // The same tab reloads into the same view; the jobs list is not the link's to open.
        await viewer.ReloadAsync();
        await Expect(viewer.Locator("#shared-banner")).ToBeVisibleAsync();
        await viewer.GotoAsync("#/");
        await Expect(viewer.Locator("#signin-key")).ToBeVisibleAsync();
        await Expect(viewer.Locator("table.jobs")).ToHaveCountAsync(0);
        string token = url[(url.IndexOf("share=", StringComparison.Ordinal) + "share=".Length)..];
        using (var asViewer = new HttpClient { BaseAddress = new Uri(service.BaseUrl) })
        {
            asViewer.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            Assert.Equal(HttpStatusCode.Forbidden, (await asViewer.GetAsync(new Uri("jobs", UriKind.Relative))).StatusCode);
        }

        // Revoked by the owner: the service closes the viewer's stream, and the page, reconnecting, shows why.
        await viewer.GoBackAsync();
        await Dashboard.WaitAsync(viewer, "p.job && p.job.link === 'live'");
        await owner.ClickAsync("#shares button[data-share]");
        await Expect(owner.Locator("#shares tbody tr[data-share]")).ToHaveCountAsync(0);
        await Expect(viewer.Locator("#signin-error")).ToContainTextAsync("revoked", new() { Timeout = 15_000 });
        await service.Client.PostAsync(new Uri($"jobs/{job}/cancel", UriKind.Relative), null);
    }

    [Fact]
    public async Task AKeyIsMadeOnTheKeysPageShownOnceAndRevoked()
    {
        await using LiveService service = LiveService.Start();
        IPage page = await browser.NewPageAsync(service.BaseUrl);
        await page.ClickAsync("#keys-link");
        await page.FillAsync("#key-name", "ci-pipeline");
        await page.ClickAsync("#key-create");
        await Expect(page.Locator("#key-secret")).ToHaveValueAsync(new System.Text.RegularExpressions.Regex("^tsk_"));
        string secret = await page.Locator("#key-secret").InputValueAsync();
        ILocator row = page.Locator("#keys tbody tr", new() { HasText = "ci-pipeline" });
        await Expect(row).ToContainTextAsync("active");
        await Expect(row).ToContainTextAsync(secret[..8] + "…");
        await Expect(row).Not.ToContainTextAsync(secret);
        await Browser.ScreenshotAsync(page, "keys");

        await row.Locator("button[data-key]").ClickAsync();
        await Expect(row).ToContainTextAsync("revoked");
        Assert.Contains("revoked", await RefusalAsync(service, secret), StringComparison.Ordinal);

        // Revoking the key this tab uses (confirm() is accepted) signs it out, in the server's words.
        await page.Locator("#keys tbody tr", new() { HasText = "(this tab)" }).Locator("button[data-key]").ClickAsync();
        await Expect(page.Locator("#signin-error")).ToContainTextAsync("revoked");
    }

    /// <summary>The server's own reason for refusing a key (GET /me's problem detail).</summary>
    private static async Task<string> RefusalAsync(LiveService service, string key)
    {
        using var client = new HttpClient { BaseAddress = new Uri(service.BaseUrl) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        HttpResponseMessage response = await client.GetAsync(new Uri("me", UriKind.Relative));
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("detail").GetString()!;
    }
}
