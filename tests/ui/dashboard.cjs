// Drives the dashboard in Debian's headless Chromium with playwright-core.
// Usage: node dashboard.cjs <phase> <base-url> <screenshot-dir>
//   phase "backup":  hydration, a backup made from the UI and browsed, an
//                    invalid cron refused, screenshots of every main page;
//   phase "restore": the wizard brings `shop` back as `shop-restored`
//                    (run after the test deleted `shop`), its pods return.
// Exits non-zero with a message on the first failed expectation.
const { chromium } = require('playwright-core');
const fs = require('fs');
const path = require('path');

const [phase, base, shots] = process.argv.slice(2);
const WAIT = 45000;

async function main() {
  fs.mkdirSync(shots, { recursive: true });
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  const shot = async (name) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  const hydrated = async () => {
    // The live indicator turns from "Snapshot" to "Live" only once the wasm runs and the stream is open.
    await page.getByRole('status').filter({ hasText: 'Live' }).first().waitFor({ timeout: WAIT });
  };

  try {
    if (phase === 'backup') {
      await page.goto(`${base}/`);
      await page.getByRole('heading', { name: 'Cluster overview' }).waitFor();
      await hydrated();
      await shot('overview');

      // A backup from the UI: the form works only if the page hydrated.
      await page.goto(`${base}/backups`);
      await hydrated();
      await page.getByText('Back up now').click();
      await page.getByLabel('Name', { exact: true }).fill('ui-shop-1');
      await page.getByLabel(/Namespaces/).fill('shop');
      await page.getByRole('button', { name: 'Start backup' }).click();
      await page.waitForURL(`${base}/backups/ui-shop-1`, { timeout: WAIT });
      await hydrated();
      await page.locator('[data-phase="Completed"]').waitFor({ timeout: WAIT });
      // Browse its contents: a Deployment, as stored.
      await page.goto(`${base}/backups/ui-shop-1`);
      await hydrated();
      await page.getByText(/^deployments\.apps \(\d+\)$/).click();
      await page.getByRole('button', { name: 'web', exact: true }).click();
      await page.locator('.object pre').filter({ hasText: '"kind": "Deployment"' }).waitFor({ timeout: WAIT });
      await shot('backup');
      await page.goto(`${base}/backups`);
      await page.locator('table').getByText('ui-shop-1').waitFor();
      await shot('backups');

      // An invalid cron expression is refused with the field named.
      await page.goto(`${base}/schedules`);
      await hydrated();
      await page.getByLabel('Name', { exact: true }).fill('nightly');
      await page.getByLabel(/^Cron/).fill('61 * * * *');
      await page.locator('.invalid').filter({ hasText: 'schedule' }).waitFor({ timeout: WAIT });
      await page.getByRole('button', { name: 'Create schedule' }).click();
      await page.locator('p.status').filter({ hasText: 'schedule' }).waitFor({ timeout: WAIT });
      // And a valid one shows its next runs, then lands in the list.
      await page.getByLabel(/^Cron/).fill('0 1 * * *');
      await page.locator('#cron-help ol li').nth(4).waitFor({ timeout: WAIT });
      await page.getByRole('button', { name: 'Create schedule' }).click();
      await page.locator('table').getByText('nightly').waitFor({ timeout: WAIT });
      // Edit it: the form takes the row, saving replaces the timetable.
      await page.getByRole('button', { name: 'Edit' }).click();
      await page.getByRole('heading', { name: 'Edit schedule nightly' }).waitFor();
      await page.getByLabel(/^Cron/).fill('30 2 * * 1');
      await page.getByRole('button', { name: 'Save schedule' }).click();
      await page.locator('table code').filter({ hasText: '30 2 * * 1' }).waitFor({ timeout: WAIT });
      await shot('schedules');

      for (const [name, url] of [['namespaces', '/namespaces'], ['namespace', '/namespaces/shop'],
                                 ['storage', '/storage'], ['activity', '/activity'], ['restore', '/restore']]) {
        await page.goto(`${base}${url}`);
        await page.locator('h1').waitFor();
        await shot(name);
      }
      // A phone-sized screen still shows the overview.
      await page.setViewportSize({ width: 390, height: 844 });
      await page.goto(`${base}/`);
      await page.getByRole('heading', { name: 'Cluster overview' }).waitFor();
      await shot('overview-phone');
    } else if (phase === 'restore') {
      await page.goto(`${base}/restore?backup=ui-shop-1`);
      await hydrated();
      await page.getByRole('button', { name: 'Show its namespaces' }).click();
      await page.locator('input[name="namespace"][value="shop"]').check({ timeout: WAIT });
      await page.locator('input[name="map-shop"]').fill('shop-restored');
      await page.getByRole('button', { name: 'Show the plan' }).click();
      await page.locator('.plan[data-phase="Planned"]').waitFor({ timeout: WAIT });
      await shot('restore-plan');
      await page.getByRole('button', { name: 'Restore now' }).click();
      await page.locator('.run[data-phase="Completed"]').waitFor({ timeout: WAIT });
      // Item by item: the Deployment is listed as created, nothing is left waiting.
      await page.locator('.run tr[data-result="created"]').filter({ hasText: 'deployments.apps' }).filter({ hasText: 'web' }).first().waitFor({ timeout: WAIT });
      if (await page.locator('.run tr[data-result="waiting"]').count() !== 0) throw new Error('items still waiting after the restore completed');
      await shot('restore-done');
      // The pods come back in the mapped namespace, seen live on its page.
      await page.goto(`${base}/namespaces/shop-restored`);
      await hydrated();
      await page.locator('tr[data-workload="web"] td.ready').filter({ hasText: /^3 \/ 3$/ }).waitFor({ timeout: WAIT });
      await shot('namespace-restored');
    } else {
      throw new Error(`unknown phase ${phase}`);
    }
    // 422s are the invalid cron being refused, as the test intends.
    const real = errors.filter((e) => !e.includes('status of 422'));
    if (real.length) throw new Error(`errors in the page: ${real.join(' | ')}`);
  } catch (e) {
    await shot(`failed-${phase}`).catch(() => {});
    console.error(`${phase}: ${e.message}\npage errors: ${errors.join(' | ')}`);
    await browser.close();
    process.exit(1);
  }
  await browser.close();
}

main().catch((e) => { console.error(e); process.exit(1); });
