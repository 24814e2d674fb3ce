// Browser side of `cargo bench -p lifeboat-e2e --bench ui`.
// Usage: node ui.cjs <base-url> <kubeconfig> <changes>
// Prints first contentful paint of the overview (fresh browser context each
// time), then for each change: scales `shop/web` with kubectl (a merge patch)
// and prints "seen <ms>" when the new count is on screen, timed from just
// before kubectl starts; "kubectl <ms>" is kubectl's own round trip, for scale.
const { chromium } = require('playwright-core');
const { execFileSync } = require('child_process');

const [base, kubeconfig, changes] = [process.argv[2], process.argv[3], Number(process.argv[4] || 5)];

async function main() {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  // Signed in once with the demo admin's token (the sign-in form), as a
  // person would be; each measured load is a fresh context with only that cookie.
  const config = JSON.parse(require('fs').readFileSync(kubeconfig, 'utf8'));
  const token = config.users[0].user.token;
  const signing = await browser.newContext();
  const login = await signing.newPage();
  await login.goto(`${base}/login`);
  await login.fill('#token', token);
  await Promise.all([login.waitForURL(`${base}/`), login.click('button[type=submit]')]);
  const signedIn = await signing.storageState();
  await signing.close();
  for (let i = 0; i < 5; i++) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, storageState: signedIn });
    const page = await context.newPage();
    await page.goto(`${base}/`, { waitUntil: 'load' });
    const fcp = await page.evaluate(() => new Promise((resolve) => {
      const found = performance.getEntriesByName('first-contentful-paint')[0];
      if (found) return resolve(found.startTime);
      new PerformanceObserver((list) => resolve(list.getEntries()[0].startTime)).observe({ type: 'paint', buffered: true });
    }));
    // The overview itself, not a sign-in page, was measured.
    if (!(await page.title()).startsWith('Overview')) throw new Error(`not the overview: ${await page.title()}`);
    console.log(`fcp ${fcp.toFixed(1)}`);
    await context.close();
  }
  const page = await (await browser.newContext({ storageState: signedIn })).newPage();
  // What the page reports of itself, shown if the live indicator never comes.
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') console.error(`console: ${m.text()}`); });
  await page.goto(`${base}/namespaces/shop`);
  await page.getByRole('status').filter({ hasText: 'Live' }).first().waitFor({ timeout: 30000 });
  for (let i = 0; i < changes; i++) {
    const before = await page.locator('tr[data-workload="web"] td.ready').textContent();
    const replicas = i % 2 === 0 ? 4 : 3;
    const t0 = Date.now();
    execFileSync('kubectl', ['--kubeconfig', kubeconfig, '-n', 'shop', 'patch', 'deployment', 'web',
                             '--type=merge', '-p', JSON.stringify({ spec: { replicas } })]);
    console.log(`kubectl ${Date.now() - t0}`);
    await page.waitForFunction((b) => {
      const cell = document.querySelector('tr[data-workload="web"] td.ready');
      return cell && cell.textContent !== b;
    }, before, { timeout: 30000, polling: 'raf' });
    console.log(`seen ${Date.now() - t0}`);
  }
  await browser.close();
}

main().catch((e) => { console.error(e); process.exit(1); });
