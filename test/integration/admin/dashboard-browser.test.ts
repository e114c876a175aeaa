// The dashboard in a real browser (Debian's chromium through playwright-core): SSO sign-in through
// the dev issuer's pick-a-user page, the audit trail with filters and live tail, the cost chart
// (SVG bars with height), budget bars, agent and policy status, sign-out — with no CSP violation
// and no script error. Screenshots go to test-artifacts/dashboard/ (git-ignored).
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import t from 'tap';
import { rawExchange } from '../../helpers/raw-client.ts';
import { startAdminFixture } from './admin-fixture.ts';

const CHROMIUM = '/usr/bin/chromium';
/** The page's document, typed loosely: predicates run in the browser (strings would be refused by the CSP: no eval), and this project compiles without the DOM library. */
interface PageDocument { querySelector(s: string): { textContent: string | null } | null; querySelectorAll(s: string): ArrayLike<{ textContent: string | null }> & Iterable<{ textContent: string | null }> }
if (!existsSync(CHROMIUM)) {
  t.plan(0, `${CHROMIUM} is missing: apt-get install -y chromium`);
  process.exit(0);
}

const ARTIFACTS = path.resolve('test-artifacts/dashboard');
mkdirSync(ARTIFACTS, { recursive: true });

const fx = await startAdminFixture();
const profile = mkdtempSync(path.join(os.tmpdir(), 'tollgate-chromium-'));
const context: BrowserContext = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic'],
  viewport: { width: 1400, height: 1000 },
});
t.teardown(async () => {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
  await fx.close();
});

const page: Page = context.pages()[0] ?? (await context.newPage());
page.setDefaultTimeout(8000);
const problems: string[] = [];
page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(`console: ${m.text()}`); });
page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()} ${r.url()}`); });
const external: string[] = [];
page.on('request', (r) => {
  const u = new URL(r.url());
  if (u.origin !== fx.tg.adminUrl && !r.url().startsWith(fx.dev.issuer) && u.protocol !== 'data:') external.push(r.url());
});
const shot = (name: string) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });

t.test('sign in through SSO lands on the dashboard', async (t) => {
  await page.goto(`${fx.tg.adminUrl}/`);
  t.ok(page.url().startsWith(fx.dev.issuer), `redirected to the identity provider: ${page.url()}`);
  await page.click('button[value="ada@acme.example"]');
  await page.waitForSelector('body[data-ready="true"]');
  t.equal(new URL(page.url()).pathname, '/');
  t.equal(await page.textContent('#who'), 'ada@acme.example');
});

t.test('audit trail: summary, rows, filters', async (t) => {
  await page.waitForSelector('#audit-table table tbody tr');
  const cards = await page.$$eval('#summary .card .label', (els) => els.map((e) => e.textContent));
  t.same(cards, ['requests (24 h)', 'active users', 'active agents', 'denied', 'error rate']);
  t.match(await page.textContent('#denials'), /denied\.example/);
  t.match(await page.textContent('#errors'), /dead\.alpha\.test/);
  t.ok((await page.$$('#audit-table tbody tr')).length >= 6);
  await shot('audit');

  await page.selectOption('#audit-filters select[name=decision]', 'deny');
  await page.waitForFunction(() => [...(globalThis as unknown as { document: PageDocument }).document.querySelectorAll('#audit-table tbody tr')].every((tr) => tr.textContent?.includes('deny')));
  const decisions = await page.$$eval('#audit-table tbody td .badge', (els) => [...new Set(els.map((e) => e.textContent))]);
  t.same(decisions, ['deny'], 'only denied rows');

  await page.selectOption('#audit-filters select[name=decision]', '');
  await page.selectOption('#audit-filters select[name=since]', '30d');
  await page.fill('#audit-filters input[name=team]', 'beta');
  await page.click('#audit-apply');
  await page.waitForFunction(() => (globalThis as unknown as { document: PageDocument }).document.querySelectorAll('#audit-table tbody tr').length === 14);
  const teams = await page.$$eval('#audit-table tbody tr td:nth-child(3)', (els) => [...new Set(els.map((e) => e.textContent))]);
  t.same(teams, ['beta'], 'team filter: the 14 seeded beta rows');
  await shot('audit-filtered');

  await page.fill('#audit-filters input[name=status]', '7xx');
  await page.click('#audit-apply');
  await page.waitForSelector('#banner:not([hidden])');
  t.match(await page.textContent('#banner'), /status/, 'a bad filter shows the API\'s message');
  await page.fill('#audit-filters input[name=status]', '');
  await page.fill('#audit-filters input[name=team]', '');
  await page.selectOption('#audit-filters select[name=since]', '1h');
});

t.test('live tail shows new requests without a reload', async (t) => {
  await page.check('#live-tail');
  const auth = `Basic ${Buffer.from(`alpha:${fx.tg.token}`).toString('base64')}`;
  await rawExchange(fx.tg.proxyPort, `GET http://echo.alpha.test/live-tail-marker HTTP/1.1\r\nHost: echo.alpha.test\r\nProxy-Authorization: ${auth}\r\nConnection: close\r\n\r\n`);
  await page.locator('#audit-table', { hasText: '/live-tail-marker' }).waitFor({ timeout: 10_000 });
  t.ok(await page.$('#audit-table tr.fresh'), 'the new row is highlighted');
  await page.uncheck('#live-tail');
});

t.test('cost explorer: stacked bars per day, trend labels, grouped spend', async (t) => {
  await page.click('button[data-tab=costs]');
  await page.waitForSelector('#cost-chart svg rect.bar');
  const heights = await page.$$eval('#cost-chart svg rect.bar', (els) => els.map((e) => Number(e.getAttribute('height'))));
  t.ok(heights.length >= 15, `${heights.length} bar segments`);
  t.ok(heights.every((h) => h > 0), 'every segment has a height');
  const box = await page.$eval('#cost-chart svg rect.bar', (e) => e.getBoundingClientRect().height);
  t.ok(box > 0, 'rendered with a height on screen');
  const keys = await page.$$eval('#cost-chart svg rect.bar', (els) => [...new Set(els.map((e) => e.getAttribute('data-key')))].sort());
  t.same(keys, ['alpha', 'beta']);
  t.match(await page.textContent('#trend-table'), /spiking/);
  t.match(await page.textContent('#trend-table'), /growing/);
  t.match(await page.textContent('#group-table'), /claude-haiku-4-5/);
  await shot('costs-by-team');

  await page.selectOption('#cost-controls select[name=stack]', 'model');
  await page.locator('#cost-legend', { hasText: 'gpt-4o-mini' }).waitFor();
  const models = await page.$$eval('#cost-chart svg rect.bar', (els) => new Set(els.map((e) => e.getAttribute('data-key'))).size);
  t.ok(models >= 3, 'stacked by model');
  await page.selectOption('#group-controls select[name=by]', 'agent');
  await page.waitForFunction(() => (globalThis as unknown as { document: PageDocument }).document.querySelector('#group-table th')?.textContent === 'agent');
  t.match(await page.textContent('#group-table'), /alpha-bot/);
  await shot('costs-by-model');
});

t.test('budgets and status', async (t) => {
  await page.click('button[data-tab=budgets]');
  await page.waitForSelector('#budget-bars .budget svg.usage');
  const scopes = await page.$$eval('#budget-bars .budget-head strong', (els) => els.map((e) => e.textContent));
  t.same([...scopes].sort(), ['agent:alpha-bot', 'org', 'team:alpha', 'team:beta']);
  const spent = await page.$$eval('#budget-bars svg.usage rect.spent', (els) => els.map((e) => Number(e.getAttribute('width'))));
  t.ok(spent.some((w) => w > 0), 'some spend is drawn');
  await shot('budgets');

  await page.click('button[data-tab=status]');
  await page.waitForSelector('#policy-status dl');
  t.match(await page.textContent('#policy-status'), /in force/);
  t.match(await page.textContent('#agent-status'), /No agent supervisor/);
  await shot('status');
});

t.test('no CSP violation, no script error, nothing fetched from elsewhere', async (t) => {
  t.same(problems.filter((p) => !/^HTTP 400 .*\/api\/v1\/audit\?.*status=7xx/.test(p)), [], 'only the 400 the filter test provoked');
  t.same(external, []);
});

t.test('sign out returns to the sign-in', async (t) => {
  await page.click('button[data-tab=audit]');
  await page.click('#signout');
  await page.waitForSelector('#signin-again');
  await shot('signed-out');
  const res = await page.request.get(`${fx.tg.adminUrl}/api/v1/policy`);
  t.equal(res.status(), 401, 'the session is gone');
  const again = await page.request.get(`${fx.tg.adminUrl}/`, { maxRedirects: 0 });
  t.equal(again.status(), 303, 'the dashboard sends the browser to sign in again');
});
