// Drives the dashboard in Debian's headless Chromium with playwright-core.
// Usage: node dashboard.cjs <phase> <base-url> <screenshot-dir> <empty directory> <sign-in>
//   <sign-in> is the demo's one-time sign-in URL, or a token to paste into
//   the sign-in page the browser is sent to first.
//   phase "backup":  signs in with the one-time URL, hydration, a backup made from the UI and browsed, an
//                    invalid cron refused, a second (local) location added
//                    in the empty directory and backed up to, every main
//                    page checked for accessible names and contrast and
//                    screenshotted, then signs out (the session ends);
//   phase "restore": signs in by pasting a token on the page it was sent to, the wizard brings `shop` back as `shop-restored`
//                    (run after the test deleted `shop`), its pods return;
//   phase "artefact": signs in with a token to the release archive's lifeboat;
//                    hydration, "Back up now", the restore wizard's plan;
//   phase "forbidden": signs in with the token of an operator without Kubernetes
//                    rights; the wizard's plan shows unknown and forbidden
//                    items with reasons, and Restore now is refused;
//   phase "timeline": signs in with a token; the timeline of `ops` shows a ConfigMap made and
//                    deleted, what its creation did, and "Restore to here" brings it back
//                    through the wizard's point-in-time plan.
// Exits non-zero with a message on the first failed expectation.
const { chromium } = require('playwright-core');
const fs = require('fs');
const path = require('path');

const [phase, base, shots, spareDir, signIn] = process.argv.slice(2);
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

  // Opens `path`, is sent to sign in, pastes the token and waits to land where `landed` says.
  const signInWithToken = async (path, landed) => {
    await page.goto(`${base}${path}`);
    await page.waitForURL((u) => u.pathname === '/login');
    await page.getByLabel('Kubernetes token').fill(signIn);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(landed, { timeout: WAIT });
  };
  // The wizard, from its namespaces step: `ns` restored as `mapped`, then the plan.
  const planRestore = async (ns, mapped) => {
    // The chosen backup's namespaces load by themselves.
    await page.locator(`input[name="namespace"][value="${ns}"]`).check({ timeout: WAIT });
    await page.locator(`input[name="map-${ns}"]`).fill(mapped);
    await page.getByRole('button', { name: 'Show the plan' }).click();
    await page.locator('.plan[data-phase="Planned"]').waitFor({ timeout: WAIT });
  };

  // What a screen reader gets: Chromium's accessibility tree. Every control
  // needs a name; text needs WCAG AA contrast against what is behind it.
  const accessible = async (where) => {
    const tree = await page.locator('body').ariaSnapshot();
    const unnamed = tree.split('\n')
      .filter((l) => /^\s*- (textbox|combobox|checkbox|radio|button|link|spinbutton|slider|img)\b(?! ")/.test(l));
    if (unnamed.length) throw new Error(`${where}: controls without an accessible name:\n${unnamed.join('\n')}`);
    const poor = await page.evaluate(() => {
      const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
      const lum = ([r, g, b]) => {
        const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
      };
      const background = (el) => {
        for (let e = el; e; e = e.parentElement) {
          const c = rgb(getComputedStyle(e).backgroundColor);
          if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
        }
        return [255, 255, 255];
      };
      const out = [];
      for (const el of document.querySelectorAll('body *')) {
        const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
        const style = getComputedStyle(el);
        if (!own || style.visibility === 'hidden' || style.display === 'none' || !el.getClientRects().length) continue;
        const [fg, bg] = [lum(rgb(style.color)), lum(background(el))];
        const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
        const large = parseFloat(style.fontSize) >= 24 || (parseFloat(style.fontSize) >= 18.66 && Number(style.fontWeight) >= 700);
        if (ratio < (large ? 3 : 4.5)) out.push(`${el.tagName.toLowerCase()}.${el.className} "${el.textContent.trim().slice(0, 40)}" ${ratio.toFixed(2)}`);
      }
      return out;
    });
    if (poor.length) throw new Error(`${where}: text below WCAG AA contrast:\n${poor.slice(0, 15).join('\n')}`);
    if (await page.locator('h1').count() !== 1) throw new Error(`${where}: a page has exactly one h1`);
    if (await page.locator('html[lang]').count() !== 1) throw new Error(`${where}: the document needs a lang`);
  };

  try {
    if (phase === 'backup') {
      // Nothing is open without sign-in: a page sends the browser to /login.
      await page.goto(`${base}/backups`);
      await page.waitForURL((u) => u.pathname === '/login' && u.searchParams.get('next') === '/backups');
      await page.getByRole('heading', { name: 'Sign in to Lifeboat' }).waitFor();
      await accessible('login');
      await shot('login');
      // The demo's one-time code signs in once.
      await page.goto(signIn);
      await page.getByRole('heading', { name: 'Cluster overview' }).waitFor();
      await page.locator('.account').filter({ hasText: 'kubernetes-admin' }).waitFor();
      await page.goto(`${base}/`);
      await page.getByRole('heading', { name: 'Cluster overview' }).waitFor();
      await hydrated();
      await accessible('overview');
      await shot('overview');

      // From the overview's pods that need attention, one click to the
      // crash-looping pod; its log view says why it ends.
      await page.getByRole('link', { name: /^recommendations-/ }).first().click();
      await page.getByRole('heading', { name: /^Pod recommendations-/ }).waitFor({ timeout: WAIT });
      await hydrated();
      const log = page.getByRole('log', { name: 'Log lines' });
      await log.filter({ hasText: 'FATAL cannot start without the catalog service' }).waitFor({ timeout: WAIT });
      await page.getByLabel('Search').fill('dial tcp');
      await page.locator('.logs p.status').filter({ hasText: '1 matching lines' }).waitFor({ timeout: WAIT });
      if ((await log.textContent()).includes('FATAL')) throw new Error('the search does not filter the lines');
      await page.getByLabel('Search').fill('');
      await accessible('pod');
      await shot('pod');
      // Its node, one click away: pressure, capacity and the last hour of usage.
      await page.getByRole('link', { name: /^node-/ }).first().click();
      await page.getByRole('heading', { name: /^Node node-/ }).waitFor({ timeout: WAIT });
      await page.getByRole('img', { name: /^CPU over the last hour: now / }).waitFor({ timeout: WAIT });
      await page.getByRole('img', { name: /^Memory over the last hour: now / }).waitFor({ timeout: WAIT });
      await accessible('node');
      await shot('node');

      // A web pod's log, followed: access lines written after the page
      // opened appear without a reload.
      await page.goto(`${base}/namespaces/shop`);
      await hydrated();
      await page.getByRole('link', { name: /^web-/ }).first().click();
      await page.getByRole('heading', { name: /^Pod web-/ }).waitFor({ timeout: WAIT });
      await hydrated();
      await page.getByRole('log', { name: 'Log lines' }).filter({ hasText: '"GET /' }).waitFor({ timeout: WAIT });
      await page.getByLabel('Follow').check();
      await page.locator('.logs p.status').filter({ hasText: 'Following' }).waitFor({ timeout: WAIT });
      const followedFrom = await page.evaluate(() => document.querySelector('pre.log').textContent.trim().split('\n').pop());
      await page.waitForFunction((before) => {
        const lines = document.querySelector('pre.log').textContent.trim().split('\n');
        return lines[lines.length - 1] !== before;
      }, followedFrom, { timeout: WAIT });

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
      // Surgery starts here: the wizard for exactly this object.
      const one = await page.getByRole('link', { name: 'Restore this object…' }).getAttribute('href');
      if (one !== '/restore?backup=ui-shop-1&object=deployments.apps/shop/web') throw new Error(`restore this object links to ${one}`);
      // Encrypted and signed; Verify reads it all back and records the outcome.
      await page.locator('[data-fact="encryption"]').filter({ hasText: /^age \(X25519\), key age1/ }).waitFor({ timeout: WAIT });
      await page.locator('[data-fact="signed"]').filter({ hasText: 'HMAC-SHA-256' }).waitFor({ timeout: WAIT });
      await page.locator('[data-fact="verified"]').filter({ hasText: 'never' }).waitFor({ timeout: WAIT });
      await page.getByRole('button', { name: 'Verify' }).click();
      const report = page.getByRole('region', { name: 'Verified: nothing wrong' });
      await report.locator('[data-check="ok"]').filter({ hasText: 'signature valid' }).waitFor({ timeout: WAIT });
      await report.locator('[data-check="ok"]').filter({ hasText: /resources\.tar\.zst: .*decrypted/ }).waitFor({ timeout: WAIT });
      await page.locator('[data-fact="verified"]').filter({ hasText: /: ok$/ }).waitFor({ timeout: WAIT });
      await page.locator('[data-fact="locked"]').filter({ hasText: /^no / }).waitFor({ timeout: WAIT });
      // A drill proves it restores: a scratch namespace, its workloads ready, then gone.
      await page.getByRole('button', { name: 'Drill' }).click();
      const drill = page.locator('[data-drill-phase="Passed"]');
      await drill.waitFor({ timeout: WAIT });
      await drill.locator('[data-check="ok"]').filter({ hasText: /deployments\.apps shop-drill-\w+\/web: 3\/3 available/ }).waitFor({ timeout: WAIT });
      await drill.filter({ hasText: 'scratch namespaces deleted' }).waitFor({ timeout: WAIT });
      await accessible('backup');
      await shot('backup');
      await page.goto(`${base}/backups`);
      await page.locator('table').getByText('ui-shop-1').waitFor();
      await accessible('backups');
      await shot('backups');

      // Volume data: the postgres replicas' claims are read by the demo's
      // node agents (through CSI snapshots) and listed on the backup's page.
      await page.getByText('Back up now').click();
      await page.getByLabel('Name', { exact: true }).fill('ui-data-1');
      await page.getByLabel(/Namespaces/).fill('data');
      await page.getByRole('button', { name: 'Start backup' }).click();
      await page.waitForURL(`${base}/backups/ui-data-1`, { timeout: WAIT });
      await hydrated();
      await page.locator('[data-phase="Completed"]').waitFor({ timeout: WAIT });
      await page.goto(`${base}/backups/ui-data-1`);
      const volumes = page.getByRole('region', { name: 'Volume data' });
      for (const claim of ['data/data-postgres-0', 'data/data-postgres-1']) {
        await volumes.getByRole('row').filter({ hasText: claim }).filter({ hasText: 'Completed' }).filter({ hasText: 'csi' }).waitFor({ timeout: WAIT });
      }
      await accessible('backup-volumes');
      await shot('backup-volumes');

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
      await accessible('schedules');
      await shot('schedules');

      // A second location: a wrong path is refused with the field named, a
      // good one is checked and listed, and a backup goes there.
      await page.goto(`${base}/storage`);
      await hydrated();
      await page.getByText('Add a location').click();
      await page.getByLabel('Name', { exact: true }).fill('second');
      await page.getByLabel('Directory on the server').check();
      await page.getByLabel(/^Directory \(absolute\)/).fill('relative/dir');
      await page.getByRole('button', { name: 'Check and add' }).click();
      await page.locator('form.add-location p.status').filter({ hasText: 'absolute' }).waitFor({ timeout: WAIT });
      await page.getByLabel(/^Directory \(absolute\)/).fill(spareDir);
      await page.getByRole('button', { name: 'Check and add' }).click();
      await page.locator('form.add-location p.status').filter({ hasText: 'Added second' }).waitFor({ timeout: WAIT });
      await page.locator('tr[data-location="second"]').getByText('available').waitFor({ timeout: WAIT });
      // Its recovery key is shown this once; the default location's, made by
      // the first backup and never shown, is flagged as not saved yet.
      const shownKey = page.getByRole('alert', { name: 'Recovery key of second' });
      await shownKey.locator('code.recovery-key').filter({ hasText: /^AGE-SECRET-KEY-1[0-9A-Z]+$/ }).waitFor({ timeout: WAIT });
      await page.locator('[data-encryption="second"]').filter({ hasText: /^age, key age1/ }).waitFor({ timeout: WAIT });
      if (await page.locator('[data-encryption="second"] .warning').count() !== 0) {
        throw new Error('a shown recovery key is flagged as not saved');
      }
      await page.locator('[data-encryption="default"] .warning').filter({ hasText: 'Recovery key not saved yet' }).waitFor({ timeout: WAIT });
      await page.locator('[data-immutability="default"]').filter({ hasText: /^none/ }).waitFor({ timeout: WAIT });
      await accessible('storage-recovery-key');
      await shownKey.getByRole('button', { name: 'I have kept it' }).click();
      await shownKey.waitFor({ state: 'detached', timeout: WAIT });
      await page.goto(`${base}/backups`);
      await hydrated();
      await page.getByText('Back up now').click();
      await page.getByLabel('Name', { exact: true }).fill('ui-second-1');
      await page.getByLabel(/Namespaces/).fill('data');
      await page.getByLabel('Storage location').selectOption('second');
      await page.getByRole('button', { name: 'Start backup' }).click();
      await page.waitForURL(`${base}/backups/ui-second-1`, { timeout: WAIT });
      await page.locator('[data-phase="Completed"]').waitFor({ timeout: WAIT });
      await page.goto(`${base}/storage`);
      await page.locator('tr[data-location="second"] td').filter({ hasText: /^1$/ }).waitFor({ timeout: WAIT });
      if (!fs.existsSync(path.join(spareDir, 'backups', 'ui-second-1', 'manifest.json'))) {
        throw new Error(`the backup is not in ${spareDir}`);
      }
      // A location stored in the clear only by ticking the box, and then
      // flagged on the page.
      await hydrated();
      await page.getByText('Add a location').click();
      await page.getByLabel('Name', { exact: true }).fill('plain');
      await page.getByLabel('Directory on the server').check();
      await page.getByLabel(/^Directory \(absolute\)/).fill(`${spareDir}-plain`);
      await page.getByRole('checkbox', { name: /Store backups unencrypted/ }).check();
      await page.getByRole('button', { name: 'Check and add' }).click();
      await page.locator('form.add-location p.status').filter({ hasText: 'Added plain' }).waitFor({ timeout: WAIT });
      await page.locator('[data-encryption="plain"] .warning').filter({ hasText: 'None, by choice' }).waitFor({ timeout: WAIT });
      if (await page.locator('[data-encryption="second"] .warning').count() !== 0) {
        throw new Error('an encrypted location is flagged as in the clear');
      }

      for (const [name, url] of [['namespaces', '/namespaces'], ['namespace', '/namespaces/shop'],
                                 ['workload', '/namespaces/shop/deployments/web'],
                                 ['storage', '/storage'], ['activity', '/activity'], ['restore', '/restore']]) {
        await page.goto(`${base}${url}`);
        await page.locator('h1').waitFor();
        await accessible(name);
        await shot(name);
      }
      // A webhook target: its URL is taken, and never shown again.
      await page.goto(`${base}/notifications`);
      await hydrated();
      await page.getByText('Add a target').click();
      await page.getByLabel('Name', { exact: true }).fill('ops');
      await page.getByLabel('Kind').selectOption('slack');
      await page.getByLabel(/^URL/).fill('https://hooks.example.test/T0/B0/ui-secret-token');
      await page.getByRole('checkbox', { name: 'a restore failed' }).uncheck();
      await page.getByRole('button', { name: 'Add target' }).click();
      const target = page.locator('tr[data-target="ops"]');
      await target.filter({ hasText: 'https://hooks.example.test/…' }).waitFor({ timeout: WAIT });
      if ((await page.content()).includes('ui-secret-token')) throw new Error('a webhook URL is shown');
      if ((await target.textContent()).includes('restore.failed')) throw new Error('an unticked event is kept');
      await accessible('notifications');
      await shot('notifications');
      // The drill above proved shop's restore; data was never drilled.
      await page.goto(`${base}/namespaces`);
      await page.getByRole('row').filter({ has: page.getByRole('link', { name: 'shop', exact: true }) })
        .locator('[data-proven="proven"]').filter({ hasText: /^restore proven .* ago$/ }).waitFor({ timeout: WAIT });
      await page.getByRole('row').filter({ has: page.getByRole('link', { name: 'data', exact: true }) })
        .locator('[data-proven="never"]').waitFor({ timeout: WAIT });
      // A phone-sized screen still shows the overview.
      await page.setViewportSize({ width: 390, height: 844 });
      await page.goto(`${base}/`);
      await page.getByRole('heading', { name: 'Cluster overview' }).waitFor();
      await shot('overview-phone');
      // Signing out ends the session: pages send the browser to sign in again,
      // and the one-time code does not work twice.
      await page.setViewportSize({ width: 1280, height: 900 });
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.waitForURL((u) => u.pathname === '/login');
      await page.goto(`${base}/schedules`);
      await page.waitForURL((u) => u.pathname === '/login');
      const again = await page.goto(signIn);
      if (again.status() !== 401) throw new Error(`a used sign-in code answered ${again.status()}`);
    } else if (phase === 'restore') {
      // Sent to sign in, a pasted token brings the browser back where it was going.
      await signInWithToken('/restore?backup=ui-shop-1',
        (u) => u.pathname === '/restore' && u.searchParams.get('backup') === 'ui-shop-1');
      await hydrated();
      await planRestore('shop', 'shop-restored');
      await shot('restore-plan');
      await page.getByRole('button', { name: 'Restore now' }).click();
      await page.locator('.run[data-phase="Completed"]').waitFor({ timeout: WAIT });
      // Item by item: the Deployment is listed as created, nothing is left waiting.
      await page.locator('.run tr[data-result="created"]').filter({ hasText: 'deployments.apps' }).filter({ hasText: 'web' }).first().waitFor({ timeout: WAIT });
      if (await page.locator('.run tr[data-result="waiting"]').count() !== 0) throw new Error('items still waiting after the restore completed');
      await accessible('restore-done');
      await shot('restore-done');
      // The wizard shows a backup's volumes and their sizes before anything starts.
      await page.goto(`${base}/restore?backup=ui-data-1`);
      await hydrated();
      await planRestore('data', 'data-copy');
      const lines = page.getByRole('region', { name: 'Volume data' }).locator('li');
      await lines.filter({ hasText: 'data-copy/data-postgres-0' }).filter({ hasText: /\d+(\.\d)? (B|KiB|MiB|GiB) in \d+ files/ }).waitFor({ timeout: WAIT });
      if (await lines.count() !== 2) throw new Error(`the plan lists ${await lines.count()} volumes, not 2`);
      await shot('restore-volumes-plan');
      // One object, from the contents browser: the plan creates it alone.
      await page.goto(`${base}/restore?backup=ui-shop-1&object=deployments.apps/shop/web`);
      await hydrated();
      await page.locator('[data-object="deployments.apps/shop/web"]').waitFor({ timeout: WAIT });
      await planRestore('shop', 'shop-one');
      await page.locator('.plan .counts li').filter({ hasText: /^1 to create$/ }).waitFor({ timeout: WAIT });
      // A mapping that does not read is said before anything is asked.
      await page.locator('input[name="storage-class-mapping"]').fill('standard');
      await page.getByRole('button', { name: 'Show the plan' }).click();
      await page.locator('p.status').filter({ hasText: 'StorageClass mapping: `standard` is not old:new' }).waitFor({ timeout: WAIT });
      // The pods come back in the mapped namespace, seen live on its page.
      await page.goto(`${base}/namespaces/shop-restored`);
      await hydrated();
      await page.locator('tr[data-workload="web"] td.ready').filter({ hasText: /^3 \/ 3$/ }).waitFor({ timeout: WAIT });
      await shot('namespace-restored');
    } else if (phase === 'artefact') {
      // The release archive's lifeboat (tests/tests/package.rs): the pages
      // hydrate from the bundle next to it, a backup is made with "Back up
      // now", and the restore wizard reaches its plan.
      await signInWithToken('/', (u) => u.pathname === '/');
      await page.getByRole('heading', { name: 'Cluster overview' }).waitFor({ timeout: WAIT });
      await hydrated();
      await page.goto(`${base}/backups`);
      await hydrated();
      await page.getByText('Back up now').click();
      await page.getByLabel('Name', { exact: true }).fill('archive-shop-1');
      await page.getByLabel(/Namespaces/).fill('shop');
      await page.getByRole('button', { name: 'Start backup' }).click();
      await page.waitForURL(`${base}/backups/archive-shop-1`, { timeout: WAIT });
      await hydrated();
      await page.locator('[data-phase="Completed"]').waitFor({ timeout: WAIT });
      await page.goto(`${base}/restore?backup=archive-shop-1`);
      await hydrated();
      await planRestore('shop', 'shop-copy');
      await page.locator('.plan tbody tr').filter({ hasText: 'deployments.apps' }).filter({ hasText: 'shop-copy' }).first().waitFor({ state: 'attached', timeout: WAIT });
      await shot('archive-restore-plan');
    } else if (phase === 'forbidden') {
      // An operator without Kubernetes rights (but creating ConfigMaps in
      // shop-restored): the plan says what it may not read and not write.
      await signInWithToken('/restore?backup=ui-shop-1', (u) => u.pathname === '/restore');
      await hydrated();
      await planRestore('shop', 'shop-restored');
      const counts = page.locator('.plan ul.counts');
      await counts.locator('li').filter({ hasText: 'unknown (you may not read them)' }).waitFor({ timeout: WAIT });
      const forbiddenCount = Number(await counts.locator('li[data-forbidden]').getAttribute('data-forbidden'));
      if (!(forbiddenCount > 0)) throw new Error(`the plan counts ${forbiddenCount} forbidden items`);
      // Every item, with its reason: the ConfigMaps it may create but not read
      // are unknown, never a false create; the Deployment names a binding.
      await page.locator('.plan details summary').click();
      const rows = page.locator('.plan tbody tr');
      await rows.filter({ hasText: 'configmaps' }).filter({ hasText: 'unknown — you may not read it' }).first().waitFor({ timeout: WAIT });
      if (await rows.filter({ has: page.locator('td:first-child', { hasText: /^create$/ }) }).count() !== 0) {
        throw new Error('an item the operator may not read or write is planned as create');
      }
      const deployment = rows.filter({ hasText: 'deployments.apps' }).filter({ hasText: 'web' }).first();
      await deployment.filter({ hasText: 'forbidden' }).filter({ hasText: /may not create deployments.*`(admin|edit)`/ }).waitFor({ timeout: WAIT });
      // Step 4 lists what it may not write and asks before a partial restore.
      const list = page.getByRole('group', { name: 'Items you may not write' });
      if (await list.locator('li').count() !== forbiddenCount) throw new Error('step 4 does not list every forbidden item');
      if (await list.getByRole('checkbox').isChecked()) throw new Error('a partial restore is agreed to without asking');
      await accessible('restore-forbidden');
      await shot('restore-forbidden-plan');
      // Restore now without agreeing: refused before anything is written.
      await page.getByRole('button', { name: 'Restore now' }).click();
      await page.getByRole('status').filter({ hasText: 'refused before anything was written' }).waitFor({ timeout: WAIT });
    } else if (phase === 'timeline') {
      await signInWithToken('/namespaces/ops/timeline', (u) => u.pathname === '/namespaces/ops/timeline');
      await hydrated();
      const rows = page.locator('tr[data-change="ConfigMap/keepsake"]');
      await rows.filter({ hasText: 'deleted' }).waitFor({ timeout: WAIT });
      await page.getByRole('img', { name: /change\(s\) from/ }).waitFor({ timeout: WAIT });
      // What its creation did, field by field.
      const created = rows.filter({ hasText: 'added' });
      await created.getByRole('button', { name: 'What changed' }).click();
      await page.locator('table.diff tr').filter({ hasText: 'data.note' }).filter({ hasText: 'remember-me' }).waitFor({ timeout: WAIT });
      await accessible('timeline');
      await shot('timeline');
      // Restore to just after its creation: the wizard plans first.
      await created.getByRole('link', { name: /^Restore to here/ }).click();
      await page.waitForURL((u) => u.pathname === '/restore' && u.searchParams.get('schedule') === 'ops-pit');
      await hydrated();
      await page.locator('[data-point-in-time]').waitFor({ timeout: WAIT });
      if (!(await page.locator('input[name="namespace"][value="ops"]').isChecked())) throw new Error('the namespace is not preselected');
      await page.getByRole('button', { name: 'Show the plan' }).click();
      await page.locator('.plan[data-phase="Planned"]').waitFor({ timeout: WAIT });
      await page.locator('.point-in-time [data-gaps="none"]').waitFor({ timeout: WAIT });
      await accessible('restore-point-in-time');
      await shot('restore-point-in-time-plan');
      await page.getByRole('button', { name: 'Restore now' }).click();
      await page.locator('.run[data-phase="Completed"]').waitFor({ timeout: WAIT });
      await page.locator('.run tr[data-result="created"]').filter({ hasText: 'keepsake' }).waitFor({ timeout: WAIT });
    } else {
      throw new Error(`unknown phase ${phase}`);
    }
    // 422s are the invalid cron and the forbidden restore being refused, 401 the used sign-in code, as the test intends.
    const real = errors.filter((e) => !e.includes('status of 422') && !e.includes('status of 401'));
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
