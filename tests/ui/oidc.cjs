// Signs in to Lifeboat through its OpenID Provider in Debian's headless
// Chromium: a page sends the browser to /login, the OpenID button to the
// provider's login and consent pages, and the provider back to the page.
// Usage: node oidc.cjs <lifeboat-url> <screenshot-dir> <user>
// Prints, as one JSON line, the session and the namespaces the user sees.
const { chromium } = require('playwright-core');
const path = require('path');

const [base, shots, user] = process.argv.slice(2);
const WAIT = 45000;

async function main() {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
  const page = await (await browser.newContext()).newPage();
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) console.error(`navigated: ${f.url()}`); });
  try {
    await page.goto(`${base}/namespaces`);
    await page.waitForURL((u) => u.pathname === '/login');
    await page.getByRole('link', { name: "Sign in with your organisation's account" }).click();
    // The provider's own pages (oidc-provider's development login and consent).
    await page.locator('input[name="login"]').fill(user, { timeout: WAIT });
    await page.locator('input[name="password"]').fill('anything');
    await page.locator('button[type="submit"]').click();
    await page.locator('button[type="submit"]').filter({ hasText: /continue/i }).click({ timeout: WAIT });
    // Back where the browser was going, signed in.
    await page.waitForURL((u) => u.href.startsWith(base) && u.pathname === '/namespaces', { timeout: WAIT });
    await page.locator('.account').filter({ hasText: `${user}@example.com` }).waitFor({ timeout: WAIT });
    await page.screenshot({ path: path.join(shots, `oidc-${user}.png`), fullPage: true });
    const seen = await page.evaluate(async () => ({
      session: await (await fetch('/api/v1/session')).json(),
      namespaces: (await (await fetch('/api/v1/namespaces')).json()).items.map((n) => n.name),
    }));
    console.log(JSON.stringify(seen));
  } catch (e) {
    await page.screenshot({ path: path.join(shots, `oidc-${user}-failed.png`), fullPage: true }).catch(() => {});
    console.error(`oidc sign-in as ${user}: ${e.message}\nat ${page.url()}`);
    await browser.close();
    process.exit(1);
  }
  await browser.close();
}

main().catch((e) => { console.error(e); process.exit(1); });
