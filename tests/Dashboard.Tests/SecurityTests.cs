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
        IPage page = await browser.NewPageAsync(service.BaseUrl);
        var violations = new List<string>();
        page.Console += (_, message) =>
        {
            if (message.Text.Contains("Content Security Policy", StringComparison.OrdinalIgnoreCase))
            {
                lock (violations)
                {
                    violations.Add($"{page.Url}: {message.Text} at {message.Location}");
                }
            }
        };

        foreach ((string route, string ready) in new[]
        {
            ("", "table.jobs tbody tr"),
            ("#/new", "table.layers tbody tr"),
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
    }
}
