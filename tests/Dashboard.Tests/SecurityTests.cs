using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace TrainingService.Dashboard.Tests;

/// <summary>The Content-Security-Policy the service sends blocks nothing the dashboard or Swagger UI does.</summary>
[Collection(BrowserCollection.Name)]
public sealed class SecurityTests(Browser browser)
{
    [Fact]
    public async Task NoPageBreaksTheContentSecurityPolicy()
    {
        await using LiveService service = LiveService.Start();
        Guid job = await Dashboard.LongJobOnShapesAsync(service.Client);
        var violations = new List<string>();
        IPage signIn = await browser.NewPageAsync(service.BaseUrl, signIn: false);
        Watch(signIn);
        await signIn.GotoAsync("");
        await signIn.Locator("#signin-key").WaitForAsync();
        IPage page = await browser.NewPageAsync(service.BaseUrl);
        Watch(page);

        foreach ((string route, string ready) in new[]
        {
            ("", "table.jobs tbody tr"),
            ("#/new", "table.layers tbody tr"),
            ("#/keys", "#keys tbody tr"),
            ($"#/jobs/{job}", "#layers-h ~ .charts .uplot"),
        })
        {
            await page.GotoAsync(route);
            await page.Locator(ready).First.WaitForAsync();
        }

        await page.ClickAsync("#snapshot"); // a POST from the page: its own origin passes the origin check
        await Expect(page.Locator("#visuals img.filters")).ToHaveCountAsync(1);
        await page.GotoAsync("swagger/");
        await page.Locator("#swagger-ui .opblock").First.WaitForAsync();
        await page.Locator("#swagger-ui .opblock-summary").First.ClickAsync(); // an operation opens with its examples
        await page.Locator("#swagger-ui .opblock-body").First.WaitForAsync();

        Assert.True(violations.Count == 0, string.Join('\n', violations));
        await service.Client.PostAsync(new Uri($"jobs/{job}/cancel", UriKind.Relative), null);

        void Watch(IPage watched) => watched.Console += (_, message) =>
        {
            if (message.Text.Contains("Content Security Policy", StringComparison.OrdinalIgnoreCase))
            {
                lock (violations)
                {
                    violations.Add($"{watched.Url}: {message.Text} at {message.Location}");
                }
            }
        };
    }
}
