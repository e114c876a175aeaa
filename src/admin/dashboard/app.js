// The dashboard: four views over the admin API. Plain ES modules; every value is rendered as
// text (dom.js), charts are SVG built here (charts.js).
import { get, session, signOut } from './api.js';
import { h, replace, table } from './dom.js';
import { usd, when, pct } from './format.js';
import { OTHER_COLOR, PALETTE, stackedBarChart, usageBar } from './charts.js';

const state = { cursor: null, newest: null, tail: null, rows: [] };

function banner(message) {
  const el = document.getElementById('banner');
  el.textContent = message ?? '';
  el.hidden = !message;
}

async function guarded(fn) {
  try {
    await fn();
  } catch (err) {
    if (err?.status !== 401) banner(`Could not load: ${err?.message ?? err}`);
  }
}

// ---------------------------------------------------------------- audit

function auditParams(form) {
  const f = new FormData(form);
  const p = {};
  for (const [k, v] of f) if (typeof v === 'string' && v.trim() !== '') p[k] = v.trim();
  return p;
}

const AUDIT_COLUMNS = [
  { label: 'time', value: (r) => when(r.time) },
  { label: 'who', value: (r) => r.agent ?? r.subject ?? '–' },
  { label: 'team', value: (r) => r.team },
  { label: 'method', value: (r) => r.method },
  { label: 'target', value: (r) => (r.kind === 'tunnel' ? `${r.host}:${r.port ?? ''}` : `${r.host}${r.path ?? ''}`), title: (r) => `${r.scheme}://${r.host}${r.path ?? ''}` },
  { label: 'decision', value: (r) => h('span', { class: `badge ${r.decision}` }, r.decision) },
  { label: 'status', value: (r) => r.status ?? (r.state === 'open' ? 'open' : '–'), num: true },
  { label: 'ms', value: (r) => r.duration_ms, num: true },
  { label: 'rule', value: (r) => r.rule },
  { label: 'reason', value: (r) => r.reason, title: (r) => r.error ?? '' },
  { label: 'cost', value: (r) => (r.cost_micros === null ? '–' : usd(r.cost_micros)), num: true },
];

function renderAudit() {
  const rows = state.rows.map((r) => ({ ...r, __class: r.__new ? 'fresh' : undefined }));
  replace('audit-table', table(AUDIT_COLUMNS, rows, 'No audit rows match these filters.'));
  document.getElementById('audit-more').hidden = !state.cursor;
}

async function loadAudit() {
  const form = document.getElementById('audit-filters');
  const page = await get('audit', { ...auditParams(form), limit: 100 });
  state.rows = page.rows;
  state.cursor = page.next_cursor;
  state.newest = page.rows[0]?.time ?? null;
  renderAudit();
}

async function moreAudit() {
  const form = document.getElementById('audit-filters');
  const page = await get('audit', { ...auditParams(form), limit: 100, cursor: state.cursor });
  state.rows = [...state.rows, ...page.rows];
  state.cursor = page.next_cursor;
  renderAudit();
}

/** Live tail: every 3 s, rows at or after the newest shown; ids already shown are skipped. */
async function tailAudit() {
  const form = document.getElementById('audit-filters');
  const params = auditParams(form);
  if (state.newest) params.since = String(Date.parse(state.newest));
  const page = await get('audit', { ...params, limit: 200 });
  const seen = new Set(state.rows.map((r) => r.id));
  const fresh = page.rows.filter((r) => !seen.has(r.id)).map((r) => ({ ...r, __new: true }));
  for (const r of state.rows) delete r.__new;
  if (fresh.length) {
    state.rows = [...fresh, ...state.rows].slice(0, 1000);
    state.newest = state.rows[0]?.time ?? state.newest;
  }
  renderAudit();
}

function setTail(on) {
  clearInterval(state.tail);
  state.tail = on ? setInterval(() => guarded(tailAudit), 3000) : null;
}

async function loadSummary() {
  const s = await get('audit/summary', { window: '24h' });
  const card = (label, value, detail) => h('div', { class: 'card' }, h('div', { class: 'value' }, value), h('div', { class: 'label' }, label), detail ? h('div', { class: 'detail' }, detail) : null);
  replace('summary',
    card('requests (24 h)', s.requests.toLocaleString('en-US')),
    card('active users', s.active_users.length, s.active_users.slice(0, 3).map((u) => u.user).join(', ')),
    card('active agents', s.active_agents.length, s.active_agents.slice(0, 3).map((a) => a.agent).join(', ')),
    card('denied', s.denials.reduce((a, d) => a + d.requests, 0)),
    card('error rate', pct(s.errors.rate), `${s.errors.errors} of ${s.errors.total}`));
  replace('denials', table([
    { label: 'rule', value: (d) => d.rule ?? '–' }, { label: 'reason', value: (d) => d.reason ?? '–' },
    { label: 'host', value: (d) => d.host }, { label: 'requests', value: (d) => d.requests, num: true }, { label: 'who', value: (d) => d.subjects, num: true },
  ], s.denials, 'No denials.'));
  replace('errors', table([
    { label: 'host', value: (e) => e.host }, { label: 'requests', value: (e) => e.requests, num: true },
    { label: 'errors', value: (e) => e.errors, num: true }, { label: 'rate', value: (e) => pct(e.rate), num: true },
  ], s.errors.by_host, 'No errors.'));
}

// ---------------------------------------------------------------- costs

const MAX_SERIES = 8;

async function loadChart() {
  const form = document.getElementById('cost-controls');
  const by = form.elements.stack.value;
  const days = form.elements.days.value;
  const t = await get('costs/trend', { by, days });
  const top = t.series.slice(0, MAX_SERIES).map((sr, i) => ({ label: sr.key ?? '(none)', color: PALETTE[i % PALETTE.length], values: sr.daily_micros }));
  const rest = t.series.slice(MAX_SERIES);
  if (rest.length) top.push({ label: `other (${rest.length})`, color: OTHER_COLOR, values: t.days.map((_, i) => rest.reduce((a, sr) => a + (sr.daily_micros[i] ?? 0), 0)) });
  replace('cost-chart', stackedBarChart(t.days, top));
  replace('cost-legend', ...top.map((sr) => h('span', { class: 'key' }, h('span', { class: `swatch c${PALETTE.indexOf(sr.color)}` }), sr.label)));
  replace('trend-by', by);
  replace('trend-table', table([
    { label: by, value: (sr) => sr.key ?? '(none)' },
    { label: `spend (${t.days.length} d)`, value: (sr) => usd(sr.total_micros), num: true },
    { label: 'last 7 d', value: (sr) => usd(sr.trend.last7_micros), num: true },
    { label: 'previous 7 d', value: (sr) => usd(sr.trend.prev7_micros), num: true },
    { label: 'change', value: (sr) => (sr.trend.change_ratio === null ? 'new' : pct(sr.trend.change_ratio - 1)), num: true },
    { label: 'today', value: (sr) => usd(sr.trend.today_micros), num: true },
    { label: 'trend', value: (sr) => h('span', { class: `badge trend-${sr.trend.label}` }, sr.trend.label + (sr.trend.spike_on ? ` (${sr.trend.spike_on})` : '')) },
  ], t.series, 'No metered spend in this window.'));
}

async function loadGroups() {
  const form = document.getElementById('group-controls');
  const c = await get('costs', { by: form.elements.by.value, since: form.elements.since.value });
  replace('group-table', table([
    { label: c.by, value: (g) => g.key ?? '(none)' },
    { label: 'spend', value: (g) => usd(g.cost_micros), num: true },
    { label: 'requests', value: (g) => g.requests, num: true },
    { label: 'input tok', value: (g) => g.input_tokens.toLocaleString('en-US'), num: true },
    { label: 'output tok', value: (g) => g.output_tokens.toLocaleString('en-US'), num: true },
    { label: 'cache read', value: (g) => g.cache_read_tokens.toLocaleString('en-US'), num: true },
    { label: 'estimated', value: (g) => g.estimated_requests, num: true },
  ], c.groups, 'No metered spend in this window.'));
}

// ---------------------------------------------------------------- budgets and status

async function loadBudgets() {
  const b = await get('budgets');
  if (b.budgets.length === 0) { replace('budget-bars', h('p', { class: 'empty' }, 'org.yaml sets no budgets.')); return; }
  replace('budget-bars', ...b.budgets.map((x) => h('div', { class: `budget${x.exhausted ? ' exhausted' : ''}` },
    h('div', { class: 'budget-head' }, h('strong', {}, x.scope), ` · ${x.window === 'month' ? 'monthly' : 'daily'} · `,
      `${usd(x.spent_micros)} spent`, x.reserved_micros ? ` + ${usd(x.reserved_micros)} in flight` : '', ` of ${usd(x.limit_micros)} (${pct(x.used_ratio)})`,
      x.exhausted ? h('span', { class: 'badge deny' }, 'exhausted') : '', h('span', { class: 'resets' }, `resets ${when(x.resets_at)}`)),
    usageBar(x.spent_micros, x.reserved_micros, x.limit_micros, x.exhausted))));
}

async function loadStatus() {
  const [p, a] = await Promise.all([get('policy'), get('agents')]);
  replace('policy-status', h('dl', { class: 'facts' },
    h('dt', {}, 'state'), h('dd', {}, h('span', { class: `badge ${p.ok ? 'allow' : 'deny'}` }, p.ok ? 'in force' : 'last reload rejected')),
    h('dt', {}, 'generation'), h('dd', {}, String(p.generation)),
    h('dt', {}, 'loaded at'), h('dd', {}, when(p.loaded_at)),
    h('dt', {}, 'warnings'), h('dd', {}, String(p.warnings)),
    h('dt', {}, 'last rejected reload'), h('dd', {}, p.last_rejected ? `${when(p.last_rejected.at)}: ${p.last_rejected.error ?? ''}` : 'none')));
  const head = a.supervisor === 'absent' ? 'No agent supervisor has run on this gateway (start one with `tollgate agents`).'
    : `Supervisor ${a.supervisor_running ? 'running' : 'stopped'}, status written ${when(a.updated_at)}.`;
  replace('agent-status', h('p', {}, head), table([
    { label: 'agent', value: (x) => x.key }, { label: 'team', value: (x) => x.team }, { label: 'state', value: (x) => h('span', { class: `badge state-${x.state}` }, x.state) },
    { label: 'schedule', value: (x) => x.schedule }, { label: 'last heartbeat', value: (x) => when(x.last_heartbeat_at) },
    { label: 'restarts', value: (x) => x.restarts, num: true }, { label: 'next run', value: (x) => when(x.next_run_at) },
    { label: 'stopped', value: (x) => (x.stopped ? `${x.stopped.code}: ${x.stopped.reason}` : '–') },
  ], a.agents, 'No managed agents.'));
}

// ---------------------------------------------------------------- wiring

const LOADERS = {
  audit: () => Promise.all([loadSummary(), loadAudit()]),
  costs: () => Promise.all([loadChart(), loadGroups()]),
  budgets: loadBudgets,
  status: loadStatus,
};

function show(tab) {
  for (const b of document.querySelectorAll('#tabs .tab')) b.classList.toggle('active', b.dataset.tab === tab);
  for (const v of document.querySelectorAll('.view')) v.hidden = v.id !== `view-${tab}`;
  banner('');
  void guarded(LOADERS[tab]);
}

async function start() {
  const me = await session();
  replace('who', me.email);
  document.getElementById('signout').addEventListener('click', () => void guarded(async () => {
    if (!(await signOut())) throw new Error('sign-out failed');
    setTail(false);
    document.body.replaceChildren(h('main', { class: 'signed-out' }, h('h1', {}, 'Signed out'),
      h('p', {}, 'Your Tollgate session has ended. '), h('p', {}, h('a', { href: '/auth/login?return_to=%2F', id: 'signin-again' }, 'Sign in again'))));
  }));
  for (const b of document.querySelectorAll('#tabs .tab')) b.addEventListener('click', () => show(b.dataset.tab));
  document.getElementById('audit-filters').addEventListener('submit', (e) => { e.preventDefault(); void guarded(loadAudit); });
  for (const el of document.querySelectorAll('#audit-filters select')) el.addEventListener('change', () => void guarded(loadAudit));
  document.getElementById('audit-more').addEventListener('click', () => void guarded(moreAudit));
  document.getElementById('live-tail').addEventListener('change', (e) => setTail(e.target.checked));
  document.getElementById('cost-controls').addEventListener('change', () => void guarded(loadChart));
  document.getElementById('group-controls').addEventListener('change', () => void guarded(loadGroups));
  show('audit');
  document.body.dataset.ready = 'true';
}

void guarded(start);
