// ui.test.mjs - rolloutd's /ui page in headless Debian chromium (playwright-core), against a
// real rolloutd that test_ui.sh started.  Prints TAP lines; exits 1 when a check fails.
//
//   node ui.test.mjs WORK_DIR URL ADMIN_TOKEN UI_ADMIN_TOKEN UI_ADMIN_ID EVAL_TOKEN [SCREENSHOT]
//
// WORK_DIR holds node_modules (playwright-core).  UI_ADMIN_TOKEN is an admin token named
// "ui-admin" that the test revokes (with ADMIN_TOKEN) while the page holds it.  The rollout
// section is fed tests/browser/fixtures/rollouts.json through page.route(): rolloutd itself has
// no test-only code.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const [workDir, base, adminToken, uiToken, uiTokenId, evalToken, screenshot] = process.argv.slice(2);
if (!evalToken) {
  console.error('usage: node ui.test.mjs WORK_DIR URL ADMIN_TOKEN UI_ADMIN_TOKEN UI_ADMIN_ID EVAL_TOKEN [SCREENSHOT]');
  process.exit(2);
}
const here = path.dirname(fileURLToPath(import.meta.url));
const { chromium } = createRequire(path.resolve(workDir, 'package.json'))('playwright-core');
const fixture = JSON.parse(readFileSync(path.join(here, 'fixtures', 'rollouts.json'), 'utf8'));

let n = 0;
let failed = 0;
function ok(cond, desc, detail) {
  n++;
  console.log(`${cond ? 'ok' : 'not ok'} ${n} - ${desc}`);
  if (!cond) {
    failed++;
    if (detail !== undefined) console.log(`# ${String(detail).replace(/\n/g, '\n# ')}`);
  }
  return cond;
}
// Waits until fn() is truthy (Playwright's own auto-waiting is in @playwright/test, not core).
async function until(fn, ms = 5000) {
  const end = Date.now() + ms;
  for (;;) {
    let v;
    try { v = await fn(); } catch { v = false; }
    if (v || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}
async function apiGet(p) {
  const res = await fetch(base + p, { headers: { Authorization: `Bearer ${adminToken}` } });
  return res.json();
}
async function apiPost(p, body) {
  const res = await fetch(base + p, {
    method: 'POST', body: JSON.stringify(body),
    headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' },
  });
  if (!res.ok) throw new Error(`POST ${p}: ${res.status} ${await res.text()}`);
  return res.json();
}
const prodKilled = async () =>
  (await apiGet('/api/v1/flags/model.v2')).environments.production.kill === true;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // CI runs as root, where chromium refuses its sandbox; containers have a 64 MiB /dev/shm.
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
const problems = []; // console errors (a CSP violation is one) and uncaught exceptions
try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  // 401/403/404 answers are logged as "Failed to load resource": expected here, and checked.
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`exception: ${e.message}`));
  page.setDefaultTimeout(5000);
  const message = page.locator('#message');
  const row = page.locator('#flags tbody tr[data-flag="model.v2"]');
  const prod = row.locator('td[data-env="production"]');
  const enterToken = async (t) => {
    await page.locator('#token').fill(t);
    await page.getByRole('button', { name: 'Use token' }).click();
  };
  const msgHas = (s) => until(async () => (await message.textContent()).includes(s));

  // ---- first visit: the page asks for a token and shows nothing else.  The page's clock is
  // Playwright's, paused after the load: its 10 s refresh runs only when the test says so.
  const t0 = Date.now();
  await page.clock.install({ time: t0 });
  const res = await page.goto(`${base}/ui`);
  await page.clock.pauseAt(t0 + 5000);
  ok(res.status() === 200, 'GET /ui answers 200');
  ok(await page.locator('#token').isVisible(), 'the page asks for a token first');
  ok(await page.locator('#flags-section').isHidden(), 'no flags without a token');

  // ---- a wrong token: refused, and the page says so
  await enterToken(`rt_${'0'.repeat(64)}`);
  ok(await msgHas('rolloutd refused the token (401'), 'a wrong token: the page says rolloutd refused it (401)',
    await message.textContent());
  ok(await page.evaluate(() => sessionStorage.length) === 0, 'a refused token is not kept');

  // ---- an eval token reads; its change is refused (403)
  await enterToken(evalToken);
  ok(await until(() => row.isVisible()), 'an eval token shows the flag model.v2');
  ok(/canary\s*5 %/.test(await prod.textContent()), 'production shows stage canary at 5 %', await prod.textContent());
  ok((await row.locator('td[data-env="staging"]').textContent()).includes('full'), 'staging shows stage full');
  ok(await until(() => page.locator('#rollouts-empty').isVisible()),
    'no rollout has started on this rolloutd: "No rollouts."');
  ok(await until(async () => (await page.locator('#history tbody tr').count()) === 1),
    'the history of model.v2 has its create entry');
  await page.getByRole('button', { name: 'Kill model.v2 in production' }).click();
  ok(await msgHas('Change refused: this token may only read (403'), 'a change with an eval token is refused (403) and the page says so',
    await message.textContent());
  ok(!(await prodKilled()), 'the flag is unchanged in rolloutd');

  // ---- an admin token flips the kill switch
  await page.getByRole('button', { name: 'Change token' }).click();
  await page.getByRole('button', { name: 'Cancel' }).click();
  ok(await page.locator('#token-form').isHidden() && await row.isVisible(), 'Cancel keeps the token in use');
  await page.getByRole('button', { name: 'Change token' }).click();
  await enterToken(uiToken);
  await until(() => page.locator('#token-state').isVisible());
  await page.getByRole('button', { name: 'Kill model.v2 in production' }).click();
  ok(await msgHas('kill switch on'), 'an admin token flips the kill switch', await message.textContent());
  ok(await until(async () => (await prod.locator('.badge.kill').count()) === 1), 'production shows "killed"');
  ok(await page.getByRole('button', { name: 'Lift the kill switch of model.v2 in production' }).isVisible(),
    'the button now lifts the kill switch');
  ok(await prodKilled(), 'rolloutd has the flag killed in production');
  const first = page.locator('#history tbody tr').first();
  ok(await until(async () => /kill/.test(await first.textContent()) && /ui-admin/.test(await first.textContent())),
    'the history shows the kill by ui-admin first', await first.textContent());
  ok((await first.textContent()).includes('environments.production.kill: false → true'),
    'the history entry says what changed');
  ok(await page.evaluate((t) => sessionStorage.getItem('rolloutd.token') === t && localStorage.length === 0
    && document.cookie === '', uiToken), 'the token is in sessionStorage only');

  // ---- a change made elsewhere appears at the next refresh
  const cProd = page.locator('#flags tbody tr[data-flag="checkout"] td[data-env="production"]');
  await apiPost('/api/v1/flags/checkout/stage', { env: 'production', stage: 'full' });
  ok(/partial/.test(await cProd.textContent()), 'until the refresh the page shows checkout at partial');
  await page.clock.runFor(10000);
  ok(await until(async () => /full/.test(await cProd.textContent())),
    'the 10 s refresh shows the stage set elsewhere (full)', await cProd.textContent());

  // ---- a click on a stale view: refused (409), nothing overwritten, the page reloads
  await apiPost('/api/v1/flags/checkout/stage', { env: 'production', stage: 'canary' });
  await page.getByRole('button', { name: 'Kill checkout in production' }).click();
  ok(await msgHas('Change refused: checkout changed meanwhile (409'),
    'a kill clicked on a stale view is refused (409) and the page says so', await message.textContent());
  ok((await apiGet('/api/v1/flags/checkout')).environments.production.kill === false, 'checkout is not killed');
  ok(await until(async () => /canary/.test(await cProd.textContent())), 'the page shows checkout as it is now (canary)');

  // ---- the token is revoked while the page holds it: the next change is refused (401)
  const del = await fetch(`${base}/api/v1/tokens/${uiTokenId}`,
    { method: 'DELETE', headers: { Authorization: `Bearer ${adminToken}` } });
  ok(del.status === 204, 'ui-admin token revoked');
  await page.getByRole('button', { name: 'Lift the kill switch of model.v2 in production' }).click();
  ok(await msgHas('Change refused: rolloutd does not accept this token (401'),
    'a change with a revoked token is refused (401) and the page says so', await message.textContent());
  ok(await page.locator('#token').isVisible(), 'the page asks for a token again');
  ok(await prodKilled(), 'the flag is still killed');

  // ---- a change without any token (this tab's storage cleared): refused (401)
  await enterToken(adminToken);
  await until(() => row.isVisible());
  await page.evaluate(() => sessionStorage.clear());
  await page.getByRole('button', { name: 'Lift the kill switch of model.v2 in production' }).click();
  ok(await msgHas('Change refused: rolloutd does not accept a change without a token (401'),
    'a change without a token is refused (401) and the page says so', await message.textContent());
  ok(await prodKilled(), 'the flag is still killed');

  // ---- rollouts: the controller's JSON (fixture) drawn as steps and a chart per metric
  await page.route('**/api/v1/rollouts', (route) => route.fulfill({ json: fixture }));
  await enterToken(adminToken);
  await page.reload(); // the token survives a reload of the tab
  ok(await until(() => row.isVisible()), 'after a reload the page still has its token');
  ok(await until(async () => (await page.locator('#history-flag').textContent()) === 'model.v2'),
    'and still shows the history of model.v2 (#model.v2 in the address)');
  const card = page.locator('article.rollout[data-flag="model.v2"][data-env="production"]');
  ok(await until(() => card.isVisible()), 'the rollout of model.v2 in production is shown');
  ok((await card.locator('.badge').textContent()) === 'rolled back', 'its state: rolled back');
  ok((await card.locator('li[aria-current="step"]').textContent()).startsWith('canary 5 %'),
    'the current step is canary 5 %');
  ok((await card.locator('ol.plan li.done').count()) === 1, 'one step done before it');
  ok((await card.textContent()).includes('rolled back to shadow'), 'the reason is shown');
  const hist = fixture.rollouts[0].history;
  for (const m of ['shadow_disagreement', 'success_rate', 'latency_p99']) {
    const pts = hist.filter((p) => p.metric === m);
    const svg = card.locator(`svg.chart[data-metric="${m}"]`);
    const count = async (sel) => svg.locator(sel).count();
    ok(await count('circle.point') === pts.length &&
      await count('circle.fail') === pts.filter((p) => p.result === 'fail').length &&
      await count('circle.nodata') === pts.filter((p) => p.result === 'nodata').length,
    `chart ${m}: a point per analysis, failures and no-data marked`);
  }
  const sr = card.locator('svg.chart[data-metric="success_rate"]');
  ok(await sr.locator('line.threshold-min').count() === 1 && await sr.locator('line.step').count() === 0,
    'success_rate: its min threshold line');
  const sd = card.locator('svg.chart[data-metric="shadow_disagreement"]');
  ok(await sd.locator('line.threshold-max').count() === 1, 'shadow_disagreement: its max threshold line');
  // The failing points lie below the min line (SVG y grows downwards).
  const geo = await sr.evaluate((el) => ({
    line: Number(el.querySelector('line.threshold-min').getAttribute('y1')),
    fails: [...el.querySelectorAll('circle.fail')].map((c) => Number(c.getAttribute('cy'))),
    passes: [...el.querySelectorAll('circle.pass')].map((c) => Number(c.getAttribute('cy'))),
  }));
  ok(geo.fails.every((y) => y > geo.line) && geo.passes.every((y) => y < geo.line),
    'failed values are drawn below the threshold, passing ones above', JSON.stringify(geo));
  ok(await until(async () => (await prod.locator('.rollout-badge').textContent()) === 'rollout rolled back · step 2/5'),
    'the flags table shows model.v2\'s rollout in production', await prod.textContent());
  ok(await page.locator('article.rollout[data-flag="checkout"] .badge').textContent() === 'running',
    'the second rollout (checkout, running) is shown');

  if (screenshot) {
    await page.locator('#message').evaluate((el) => { el.hidden = true; });
    await page.screenshot({ path: screenshot, fullPage: true });
    console.log(`# screenshot: ${screenshot}`);
  }
  ok(problems.length === 0, 'no console errors (CSP violations) or exceptions', problems.join('\n'));

  // The browser enforces the CSP: an inline script is refused.
  const inline = await page.evaluate(() => new Promise((resolve) => {
    document.addEventListener('securitypolicyviolation', (e) => resolve(e.violatedDirective), { once: true });
    const el = document.createElement('script');
    el.textContent = 'window.inlineRan = true';
    document.body.append(el);
    setTimeout(() => resolve(window.inlineRan ? 'ran' : 'no event'), 2000);
  }));
  ok(inline.startsWith('script-src'), 'the CSP blocks an inline script', inline);
} catch (e) {
  ok(false, 'the browser session ran to its end', e.stack);
} finally {
  await browser.close();
}
console.log(`1..${n}`);
process.exit(failed ? 1 : 0);
