// Security case 4.04 (../shared/security-cases.md): redirects are passed back, never followed with
// credentials. Two bound origins — GH (api.github.com, `Authorization: Bearer CANARY_GH_…`) and ANT
// (api.anthropic.com, `x-api-key: CANARY_ANT_…` behind the `tollgate-placeholder` key) — answer 301,
// 302, 303, 307 and 308 with Location `https://evil.test/steal`, `//evil.test/x`,
// `http://<host>:80/x`, `https://<host>.evil.test/` and `https://api.allowed.test/landing` (an
// allowed host with no binding). Checked through the real gateway:
// - intercepted path (CONNECT + TLS), raw sockets: each 3xx reaches the agent with its status,
//   its single Location line byte-identical and its body intact; the bound origin did get the
//   injected credential (so the binding was live); the gateway made no second request anywhere.
// - plain path (absolute-form to the proxy listener), raw sockets: the same for an unbound origin.
// - undici fetch through a ProxyAgent with `redirect: 'manual'`: the 3xx as the origin sent it.
// - undici fetch in its default follow mode: every follow-up goes through the gateway again and is
//   decided afresh — EVIL (and `<host>.evil.test`) → 403 host_not_allowed, `http://<bound host>:80`
//   → 403 credential_insecure, the unbound allowed host gets the request without any canary (or,
//   when the agent's placeholder key rides along, 403 credential_reflected).
// - a POST with a body answered 307/308: the gateway sends the body once, to the origin it was
//   addressed to, and never replays it; when fetch re-sends it, that is a new, fresh decision.
// Every "nothing reached EVIL" is a diff of EVIL's request/connection counters (TCP accepts
// included), and a last test shows those counters do move when something reaches EVIL.
import https from 'node:https';
import type tls from 'node:tls';
import t, { type Test } from 'tap';
import { fetch, ProxyAgent } from 'undici';
import { waitFor } from '../../helpers/cli-process.ts';
import { collect, hasResponses, parseResponses } from '../../helpers/raw-client.ts';
import { API, ECHO, EVIL, SECURITY_ALPHA_RULES, headerPairs, settle, startSecurityFixture, type Snapshot } from '../../helpers/security-fixture.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';
import { startUpstream, type TestUpstream, type UpstreamHandler } from '../../helpers/upstream-server.ts';

const GH = 'api.github.com';
const ANT = 'api.anthropic.com';
const rand = () => Math.random().toString(36).slice(2, 12);
const GH_SECRET = `CANARY_GH_${rand()}`;
const ANT_SECRET = `CANARY_ANT_${rand()}`;
const PLACEHOLDER = 'tollgate-placeholder';
const STATUSES = [301, 302, 303, 307, 308] as const;

/** The Location values of case 4.04 for an origin `host`, plus an allowed host with no binding. */
const locations = (host: string): string[] => [
  `https://${EVIL}/steal`,
  `//${EVIL}/x`,
  `http://${host}:80/x`,
  `https://${host}.evil.test/`,
  `https://${API}/landing`,
];
const redirectBody = (loc: string) => `<a href="${loc}">moved</a>\n`;
/** A request body carrying `mark` (a valid Messages request, as the metering stage reads it on ANT). */
const postBody = (mark: string) => JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 1, messages: [{ role: 'user', content: mark }] });

// Any origin answers `?r=<status>&l=<index>` with that redirect (Location from locations(its Host)),
// and everything else with the default echo.
const redirecting: UpstreamHandler = (req, res, body) => {
  const url = new URL(req.url ?? '/', 'http://x');
  const status = Number(url.searchParams.get('r'));
  const host = (req.headers.host ?? '').replace(/:\d+$/, '');
  const loc = locations(host)[Number(url.searchParams.get('l'))];
  if (!status || loc === undefined) {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ method: req.method, url: req.url, bodyLength: body.length }));
    return;
  }
  const text = redirectBody(loc);
  res.writeHead(status, { Location: loc, 'Content-Type': 'text/html', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
};

const pki = await makeTestCa();
const gh = await startUpstream({ tls: await pki.issue([GH]), handler: redirecting });
const ant = await startUpstream({ tls: await pki.issue([ANT]), handler: redirecting });
// `<bound host>.evil.test` belongs to the attacker as much as evil.test does: a second EVIL recorder.
const evilSub = await startUpstream({ tls: await pki.issue([`${GH}.${EVIL}`, `${ANT}.${EVIL}`, `${ECHO}.${EVIL}`]) });
t.teardown(() => Promise.all([gh.close(), ant.close(), evilSub.close()]));
const fx = await startSecurityFixture({
  pki,
  echoHandler: redirecting,
  apiHandler: redirecting,
  upstreams: { [GH]: gh.port, [ANT]: ant.port, [`${GH}.${EVIL}`]: evilSub.port, [`${ANT}.${EVIL}`]: evilSub.port, [`${ECHO}.${EVIL}`]: evilSub.port },
  gateway: {
    alphaRules: [SECURITY_ALPHA_RULES, `  - { host: ${GH}, action: allow }`, `  - { host: ${ANT}, action: allow }`].join('\n'),
    alphaCredentials: [
      `  - { host: ${GH}, bearer: { secret: github-token } }`,
      `  - { host: ${ANT}, header: { name: x-api-key, secret: anthropic-key }, require_placeholder: ${PLACEHOLDER} }`,
    ].join('\n'),
    files: { 'secrets/github-token': `${GH_SECRET}\n`, 'secrets/anthropic-key': `${ANT_SECRET}\n` },
  },
});
// http:// targets go absolute-form to the proxy (the plain path), https:// through CONNECT.
const agent = new ProxyAgent({ uri: fx.tg.proxyUrl, requestTls: { ca: fx.tg.caPem }, proxyTunnel: false });
t.teardown(async () => {
  await agent.close();
  await fx.close();
});

/** Everything the agent received, for the final canary scan. */
const agentSaw: string[] = [];
const EVILS: Array<[string, TestUpstream]> = [['EVIL', fx.evil], ['EVIL (*.evil.test)', evilSub]];
const ORIGINS = [gh, ant, fx.echo, fx.api, fx.evil, evilSub];

interface Bound { host: string; up: TestUpstream; path: string; keyHeaders: Record<string, string>; injected: [string, string] }
const BOUND: Bound[] = [
  { host: GH, up: gh, path: '/repos/o/r', keyHeaders: {}, injected: ['authorization', `Bearer ${GH_SECRET}`] },
  { host: ANT, up: ant, path: '/v1/messages', keyHeaders: { 'x-api-key': PLACEHOLDER }, injected: ['x-api-key', ANT_SECRET] },
];

interface Case { status: number; loc: string; l: number }
const matrix = (host: string, statuses: readonly number[] = STATUSES): Case[] => statuses.flatMap((status) => locations(host).map((loc, l) => ({ status, loc, l })));

/** Runs `fn` over `items` with at most `n` at a time (bounded; keeps the file well under 10 s). */
async function pool<T>(items: readonly T[], fn: (item: T) => Promise<void>, n = 5): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}

function evilBefore(): Snapshot[] {
  return EVILS.map(([, up]) => fx.snapshot(up));
}
/** NOFWD at EVIL: no request, no TLS connection, no TCP accept, no refused bytes since `before`. */
async function assertEvilUntouched(t: Test, before: Snapshot[], what: string): Promise<void> {
  await settle(80);
  EVILS.forEach(([name, up], i) => {
    t.same(fx.snapshot(up), before[i], `${what}: ${name} received nothing (requests, connections, TCP accepts)`);
  });
}

/** The Location lines of a raw response head, values exactly as sent after `Location:` + OWS. */
function rawLocations(text: string): string[] {
  const head = text.slice(0, Math.max(0, text.indexOf('\r\n\r\n')));
  return head.split('\r\n').slice(1).filter((l) => /^location:/i.test(l)).map((l) => l.slice(l.indexOf(':') + 1).replace(/^[ \t]+/, ''));
}

/** Sends each request on one intercepted keep-alive tunnel to `host` (reopened if the gateway closed it). */
async function overTunnel(host: string, requests: string[]): Promise<string[]> {
  const out: string[] = [];
  let sock: tls.TLSSocket | undefined;
  try {
    for (const bytes of requests) {
      if (!sock || sock.destroyed || !sock.writable) sock = await fx.intercepted(host);
      const r = await collect(sock, bytes, { waitMs: 3000, until: hasResponses(1) });
      out.push(r.text);
      agentSaw.push(r.text);
    }
  } finally {
    sock?.destroy();
  }
  return out;
}

const extra = (h: Record<string, string>) => Object.entries(h).map(([k, v]) => `${k}: ${v}\r\n`).join('');
const values = (rawHeaders: string[], name: string) => headerPairs(rawHeaders).filter(([n]) => n === name).map(([, v]) => v);
const sorted = (xs: string[]) => [...xs].sort();
const allOrigins = (): Map<TestUpstream, number> => new Map(ORIGINS.map((u) => [u, u.seen.length]));

/** Since `counts`: `at` received exactly `urls` (any order, once each) and every other origin nothing. */
function assertOnlyThese(t: Test, counts: Map<TestUpstream, number>, at: TestUpstream, urls: string[], what: string): void {
  t.same(sorted(at.seen.slice(counts.get(at)).map((s) => s.url)), sorted(urls), `${what}: the origin received exactly the agent's requests, once each, and no followed Location`);
  for (const [up, n] of counts) {
    if (up !== at) t.same(up.seen.slice(n).map((s) => `${s.method} ${s.url}`), [], `${what}: no other origin received a request`);
  }
}

/** Checks one relayed 3xx as a raw client read it. */
function assertRelayed(t: Test, text: string, c: Case): void {
  const res = parseResponses(text)[0];
  t.equal(res?.status, c.status, `${c.status} → ${c.loc}: the status is the origin's`);
  t.same(rawLocations(text), [c.loc], `${c.status} → ${c.loc}: one Location line, byte-identical`);
  t.equal(res?.body, redirectBody(c.loc), `${c.status} → ${c.loc}: the body is the origin's`);
}

for (const b of BOUND) {
  t.test(`intercepted ${b.host}: every 3xx is relayed unchanged and not followed`, async (t) => {
    const evil = evilBefore();
    const counts = allOrigins();
    const pathOf = (c: Case) => `${b.path}?r=${c.status}&l=${c.l}&via=raw`;
    // One keep-alive tunnel per status, the five statuses side by side.
    await Promise.all(STATUSES.map(async (status) => {
      const cases = matrix(b.host, [status]);
      const answers = await overTunnel(b.host, cases.map((c) => `GET ${pathOf(c)} HTTP/1.1\r\nHost: ${b.host}\r\n${extra(b.keyHeaders)}\r\n`));
      cases.forEach((c, i) => assertRelayed(t, answers[i] ?? '', c));
    }));
    const cases = matrix(b.host);
    const got = b.up.seen.slice(counts.get(b.up));
    t.ok(cases.every((c) => got.some((s) => s.url === pathOf(c) && values(s.rawHeaders, b.injected[0]).join('\n') === b.injected[1])), `the binding was live: every request reached ${b.host} with exactly one injected ${b.injected[0]}`);
    await assertEvilUntouched(t, evil, b.host);
    assertOnlyThese(t, counts, b.up, cases.map(pathOf), b.host);
  });
}

t.test('plain path (an unbound origin over http): every 3xx is relayed unchanged and not followed', async (t) => {
  const evil = evilBefore();
  const counts = allOrigins();
  const cases = matrix(ECHO);
  const pathOf = (c: Case) => `/p?r=${c.status}&l=${c.l}&via=plain`;
  await pool(cases, async (c) => {
    const r = await fx.plain.send(`${fx.plain.head('GET', pathOf(c))}Connection: close\r\n\r\n`, { waitMs: 3000, until: hasResponses(1) });
    agentSaw.push(r.text);
    assertRelayed(t, r.text, c);
  });
  await assertEvilUntouched(t, evil, 'plain');
  assertOnlyThese(t, counts, fx.echo, cases.map(pathOf), ECHO);
});

for (const b of BOUND) {
  t.test(`fetch redirect: 'manual' to ${b.host}: the agent reads the origin's 3xx`, async (t) => {
    const evil = evilBefore();
    const counts = allOrigins();
    const cases = matrix(b.host);
    const pathOf = (c: Case) => `${b.path}?r=${c.status}&l=${c.l}&via=manual`;
    await pool(cases, async (c) => {
      const res = await fetch(`https://${b.host}${pathOf(c)}`, { dispatcher: agent, redirect: 'manual', headers: b.keyHeaders });
      const body = await res.text();
      agentSaw.push(body, JSON.stringify([...res.headers]));
      t.equal(res.status, c.status, `${c.status} → ${c.loc}: status`);
      t.equal(res.headers.get('location'), c.loc, `${c.status} → ${c.loc}: Location`);
      t.equal(body, redirectBody(c.loc), `${c.status} → ${c.loc}: body`);
    });
    await assertEvilUntouched(t, evil, `${b.host} manual`);
    assertOnlyThese(t, counts, b.up, cases.map(pathOf), `${b.host} manual`);
  });
}

interface FollowOutcome { status: number; reason?: string; host: string; path: string }
/** What the follow-up to locations(host)[l] must get, decided afresh (`key`: the agent sends the placeholder). */
function expected(host: string, l: number, key: boolean): FollowOutcome {
  switch (l) {
    case 0: return { status: 403, reason: 'host_not_allowed', host: EVIL, path: '/steal' };
    case 1: return { status: 403, reason: 'host_not_allowed', host: EVIL, path: '/x' };
    // http://<bound host>:80/x: the canary is never sent in clear text.
    case 2: return host === ECHO ? { status: 200, host, path: '/x' } : { status: 403, reason: 'credential_insecure', host, path: '/x' };
    case 3: return { status: 403, reason: 'host_not_allowed', host: `${host}.${EVIL}`, path: '/' };
    // An allowed host without a binding. Cross-origin, fetch drops Authorization but keeps x-api-key,
    // so the agent's placeholder rides along and is refused there.
    default: return key ? { status: 403, reason: 'credential_reflected', host: API, path: '/landing' } : { status: 200, host: API, path: '/landing' };
  }
}

/**
 * The gateway logged each follow-up as an exchange of its own, with the outcome `expected` says:
 * counts the exchange events since `from` per (host, path, status, reason).
 */
async function assertDecidedAfresh(t: Test, from: number, wanted: FollowOutcome[], what: string): Promise<void> {
  const key = (e: { host?: unknown; path?: unknown; status?: unknown; reason?: unknown }) => `${String(e.host)}${String(e.path)} → ${String(e.status)} ${e.status === 200 ? 'allow' : String(e.reason)}`;
  const want = new Map<string, number>();
  for (const w of wanted) want.set(key(w), (want.get(key(w)) ?? 0) + 1);
  const count = () => {
    const got = new Map<string, number>();
    for (const e of fx.tg.exchanges().slice(from)) {
      if (e['kind'] !== 'request' || (e['status'] === 200 && e['decision'] !== 'allow')) continue;
      const k = key(e);
      if (want.has(k)) got.set(k, (got.get(k) ?? 0) + 1);
    }
    return got;
  };
  await waitFor(() => [...want].every(([k, n]) => (count().get(k) ?? 0) >= n), 2000);
  t.same(Object.fromEntries(count()), Object.fromEntries(want), `${what}: each follow-up is an exchange of its own, decided afresh (host, path → status, reason)`);
}

for (const b of BOUND) {
  t.test(`fetch following ${b.host}'s redirects: each follow-up is decided afresh, no canary leaves`, async (t) => {
    const evil = evilBefore();
    const counts = allOrigins();
    const from = fx.tg.exchanges().length;
    const cases = matrix(b.host);
    const pathOf = (c: Case) => `${b.path}?r=${c.status}&l=${c.l}&via=follow`;
    const key = b.keyHeaders['x-api-key'] !== undefined;
    await pool(cases, async (c) => {
      const exp = expected(b.host, c.l, key);
      const res = await fetch(`https://${b.host}${pathOf(c)}`, { dispatcher: agent, headers: b.keyHeaders });
      agentSaw.push(await res.text(), JSON.stringify([...res.headers]));
      t.ok(res.redirected, `${c.status} → ${c.loc}: fetch followed (the gateway passed the 3xx back)`);
      t.equal(res.status, exp.status, `${c.status} → ${c.loc}: the follow-up got ${exp.status}`);
      if (exp.reason) t.equal(res.headers.get('x-tollgate-reason'), exp.reason, `${c.status} → ${c.loc}: ${exp.reason}`);
    });
    await assertEvilUntouched(t, evil, `${b.host} follow`);
    await assertDecidedAfresh(t, from, cases.map((c) => expected(b.host, c.l, key)), b.host);
    t.same(sorted(b.up.seen.slice(counts.get(b.up)).map((s) => s.url)), sorted(cases.map(pathOf)), `${b.host} received only the agent's first requests (nothing at :80/x, no replay)`);
    const landed = fx.api.seen.slice(counts.get(fx.api));
    t.equal(landed.length, key ? 0 : STATUSES.length, 'the unbound allowed host received exactly the followed requests the policy allows afresh');
    for (const s of landed) {
      t.same([...values(s.rawHeaders, 'authorization'), ...values(s.rawHeaders, 'x-api-key')], [], `${s.method} ${s.url}: no credential header at the unbound host`);
      t.notOk(JSON.stringify(s.rawHeaders).includes(GH_SECRET) || JSON.stringify(s.rawHeaders).includes(ANT_SECRET), `${s.method} ${s.url}: no canary at the unbound host`);
    }
    t.equal(fx.echo.seen.length, counts.get(fx.echo), 'ECHO received nothing');
  });
}

for (const b of BOUND) {
  t.test(`POST with a body to ${b.host} answered 307/308: the body goes once, to ${b.host} only`, async (t) => {
    const evil = evilBefore();
    const counts = allOrigins();
    const cases = matrix(b.host, [307, 308]).map((c) => ({ ...c, mark: `BODY_${rand()}` }));
    const pathOf = (c: Case) => `${b.path}?r=${c.status}&l=${c.l}&via=post`;
    // Raw, not followed: the gateway must not resend the body anywhere.
    await pool(cases, async (c) => {
      const body = postBody(c.mark);
      const [text = ''] = await overTunnel(b.host, [`POST ${pathOf(c)} HTTP/1.1\r\nHost: ${b.host}\r\n${extra(b.keyHeaders)}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`]);
      assertRelayed(t, text, c);
    });
    await assertEvilUntouched(t, evil, `${b.host} POST`);
    assertOnlyThese(t, counts, b.up, cases.map(pathOf), `${b.host} POST`);
    for (const c of cases) {
      const at = ORIGINS.flatMap((up) => up.seen.filter((s) => s.body.includes(c.mark)).map(() => up));
      t.ok(at.length === 1 && at[0] === b.up, `${c.status} → ${c.loc}: the body reached ${b.host} once and nowhere else`);
    }
  });

  t.test(`fetch re-sending a POST after ${b.host}'s 307/308: a fresh decision, EVIL gets nothing`, async (t) => {
    const evil = evilBefore();
    const counts = allOrigins();
    const from = fx.tg.exchanges().length;
    const key = b.keyHeaders['x-api-key'] !== undefined;
    const cases = matrix(b.host, [307, 308]).map((c) => ({ ...c, mark: `BODY_${rand()}` }));
    await pool(cases, async (c) => {
      const exp = expected(b.host, c.l, key);
      const res = await fetch(`https://${b.host}${b.path}?r=${c.status}&l=${c.l}&via=post-follow`, {
        method: 'POST', dispatcher: agent, body: postBody(c.mark),
        headers: { ...b.keyHeaders, 'content-type': 'application/json' },
      });
      agentSaw.push(await res.text(), JSON.stringify([...res.headers]));
      t.equal(res.status, exp.status, `${c.status} → ${c.loc}: the re-sent POST got ${exp.status}`);
      if (exp.reason) t.equal(res.headers.get('x-tollgate-reason'), exp.reason, `${c.status} → ${c.loc}: ${exp.reason}`);
    });
    await assertEvilUntouched(t, evil, `${b.host} POST follow`);
    await assertDecidedAfresh(t, from, cases.map((c) => expected(b.host, c.l, key)), `${b.host} POST`);
    for (const c of cases) {
      t.equal(b.up.seen.slice(counts.get(b.up)).filter((s) => s.body.includes(c.mark)).length, 1, `${c.status} → ${c.loc}: ${b.host} got the body once`);
      const landed = fx.api.seen.slice(counts.get(fx.api)).filter((s) => s.body.includes(c.mark));
      t.equal(landed.length, expected(b.host, c.l, key).status === 200 ? 1 : 0, `${c.status} → ${c.loc}: the unbound host got the client's re-sent body only where the policy allows it afresh`);
      for (const s of landed) t.notOk(headerPairs(s.rawHeaders).some(([n, v]) => n === 'authorization' || n === 'x-api-key' || v.includes(GH_SECRET) || v.includes(ANT_SECRET)), 'and no credential with it');
    }
  });
}

t.test('fetch following plain-path redirects: decided afresh, nothing reaches EVIL', async (t) => {
  const evil = evilBefore();
  const counts = allOrigins();
  const from = fx.tg.exchanges().length;
  const cases = matrix(ECHO);
  await pool(cases, async (c) => {
    const exp = expected(ECHO, c.l, false);
    const res = await fetch(`http://${ECHO}/p?r=${c.status}&l=${c.l}&via=plain-follow`, { dispatcher: agent });
    agentSaw.push(await res.text(), JSON.stringify([...res.headers]));
    t.ok(res.redirected, `${c.status} → ${c.loc}: fetch followed`);
    t.equal(res.status, exp.status, `${c.status} → ${c.loc}: ${exp.status}`);
    if (exp.reason) t.equal(res.headers.get('x-tollgate-reason'), exp.reason, `${c.status} → ${c.loc}: ${exp.reason}`);
  });
  await assertEvilUntouched(t, evil, 'plain follow');
  await assertDecidedAfresh(t, from, cases.map((c) => expected(ECHO, c.l, false)), 'plain');
  const followed = fx.echo.seen.slice(counts.get(fx.echo)).filter((s) => s.url === '/x');
  t.equal(followed.length, STATUSES.length, 'ECHO got the agent\'s own follow-ups to http://echo.allowed.test:80/x, one per status');
  t.notOk(followed.some((s) => headerPairs(s.rawHeaders).some(([n]) => n === 'authorization' || n === 'x-api-key')), 'with no credential');
});

t.test('control: the EVIL recorders do count what reaches them', async (t) => {
  const before = evilBefore();
  await new Promise<void>((resolve, reject) => {
    https.get({ host: '127.0.0.1', port: fx.evil.port, path: '/control', ca: pki.caPem, servername: EVIL, agent: false }, (res) => { res.resume(); res.on('end', resolve); }).on('error', reject);
  });
  await settle(20);
  t.equal(fx.evil.seen.length, (before[0]?.seen ?? 0) + 1, 'a direct request is recorded');
  t.not(fx.snapshot(fx.evil).tcpConnections, before[0]?.tcpConnections, 'and its TCP accept counted');
});

t.test('CANARY-CLEAN', async (t) => {
  fx.assertCanaryClean(t);
  const log = fx.tg.logText();
  t.notOk(log.includes(GH_SECRET) || log.includes(ANT_SECRET), 'no bound secret in the gateway log');
  t.notOk(agentSaw.some((s) => s.includes(GH_SECRET) || s.includes(ANT_SECRET)), 'no bound secret in anything the agent received');
  const leaks = (ups: TestUpstream[], secret: string) => ups.some((up) => up.seen.some((s) => s.rawHeaders.some((h) => h.includes(secret)) || s.url.includes(secret) || s.body.includes(secret)));
  t.notOk(leaks([ant, fx.echo, fx.api, fx.evil, evilSub], GH_SECRET), `CANARY_GH only ever at ${GH}`);
  t.notOk(leaks([gh, fx.echo, fx.api, fx.evil, evilSub], ANT_SECRET), `CANARY_ANT only ever at ${ANT}`);
  t.ok(leaks([gh], GH_SECRET) && leaks([ant], ANT_SECRET), 'each secret was injected at its own origin (the scan can see it)');
});
