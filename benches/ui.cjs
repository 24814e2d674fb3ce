// Browser side of `cargo bench -p lifeboat-e2e --bench ui`.
// Usage: node ui.cjs <base-url> <changes>
// Prints first contentful paint of the overview (fresh browser context each
// time), then for each change: "ready" once the namespace page is hydrated
// and watching; reads the epoch ms at which the bench changed the cluster
// from stdin; prints "seen <ms>" when the new desired count is on screen.
const { chromium } = require('playwright-core');
const readline = require('readline');

const [base, changes] = [process.argv[2], Number(process.argv[3] || 5)];

async function main() {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  for (let i = 0; i < 5; i++) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    await page.goto(`${base}/`, { waitUntil: 'load' });
    const fcp = await page.evaluate(() => new Promise((resolve) => {
      const found = performance.getEntriesByName('first-contentful-paint')[0];
      if (found) return resolve(found.startTime);
      new PerformanceObserver((list) => resolve(list.getEntries()[0].startTime)).observe({ type: 'paint', buffered: true });
    }));
    console.log(`fcp ${fcp.toFixed(1)}`);
    await context.close();
  }
  const page = await browser.newPage();
  await page.goto(`${base}/namespaces/shop`);
  await page.getByRole('status').filter({ hasText: 'Live' }).first().waitFor({ timeout: 30000 });
  const lines = readline.createInterface({ input: process.stdin });
  const next = () => new Promise((resolve) => lines.once('line', resolve));
  for (let i = 0; i < changes; i++) {
    const before = await page.locator('tr[data-workload="web"] td.ready').textContent();
    console.log('ready');
    const t0 = Number(await next());
    await page.waitForFunction((b) => {
      const cell = document.querySelector('tr[data-workload="web"] td.ready');
      return cell && cell.textContent !== b;
    }, before, { timeout: 30000, polling: 'raf' });
    console.log(`seen ${Date.now() - t0}`);
  }
  await browser.close();
}

main().catch((e) => { console.error(e); process.exit(1); });
