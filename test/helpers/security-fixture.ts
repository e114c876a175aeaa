// Test-only fixture for the security suites (test/integration/security): a real gateway, a plain
// ECHO origin for the plain-proxy path, a TLS origin for intercepted tunnels, an EVIL origin that
// must never see a byte, and "routes" that send the same raw bytes either as absolute-form requests
// to the proxy listener or as origin-form requests inside an intercepted CONNECT tunnel.
import { randomBytes } from 'node:crypto';
import type tls from 'node:tls';
import type { Test } from 'tap';
import { startTestGateway, type TestGateway, type TestGatewayOptions } from './gateway-harness.ts';
import { collect, openTunnel, parseResponses, rawSend, tlsOverTunnel, type Collected, type ParsedResponse } from './raw-client.ts';
import { makeTestCa, type TestCa } from './test-pki.ts';
import { startUpstream, type TestUpstream, type UpstreamHandler } from './upstream-server.ts';

export const ECHO = 'echo.allowed.test';
export const API = 'api.allowed.test';
export const EVIL = 'evil.test';
/** A canary that tests put in client-controlled places (e.g. an X-Canary header) besides the token. */
export const CANARY = `CANARY_TOKEN_${randomBytes(6).toString('hex')}`;

/** Team alpha's rules for the security suites (the harness appends `host: "*" → deny`): EVIL is denied. */
export const SECURITY_ALPHA_RULES = [
  `  - { host: ${ECHO}, action: allow }`,
  `  - { host: ${API}, action: allow }`,
].join('\n');

/** Rules for security case 3.05: `host` may be sent GET and POST under /repos/** and never DELETE. */
export function getPostNoDeleteRules(host: string): string {
  return [
    `  - host: ${host}`,
    '    action: allow',
    '    http:',
    '      - { method: [GET, POST], path: "/repos/**", action: allow }',
    '      - { method: DELETE, action: deny }',
  ].join('\n');
}

export interface Snapshot {
  seen: number;
  connections: number;
  tcpConnections: number;
  clientErrors: number;
}

export interface Route {
  name: 'plain' | 'tunnel';
  /** The host the request addresses (and that Host must carry). */
  host: string;
  upstream: TestUpstream;
  /** The request line target for a path: absolute-form on the plain path, origin-form in a tunnel. */
  target(path: string): string;
  /** `Proxy-Authorization` line for the plain path, '' in a tunnel (it went on the CONNECT). */
  auth: string;
  /** A request head start: request line, Host and (plain) Proxy-Authorization. */
  head(method: string, path: string): string;
  /** Sends raw bytes on a fresh connection (plain) or a fresh intercepted tunnel, collects the answer. */
  send(bytes: string | Buffer, opts?: { waitMs?: number; until?: (text: string) => boolean }): Promise<Collected>;
  /** A fresh connection (plain TCP or an intercepted TLS socket) for multi-step tests. */
  open(): Promise<import('node:net').Socket>;
}

export interface SecurityFixture {
  tg: TestGateway;
  /** A real gateway token for team alpha: the secret that must never show up in a log or upstream. */
  token: string;
  /** `Proxy-Authorization: Basic base64(alpha:token)` with CRLF, for plain-path request heads. */
  authLine: string;
  /** The same credential as a header object for openTunnel. */
  connectAuth: Record<string, string>;
  pki: TestCa;
  echo: TestUpstream;
  api: TestUpstream;
  evil: TestUpstream;
  routes: Route[];
  plain: Route;
  tunnel: Route;
  snapshot(up?: TestUpstream): Snapshot;
  /** NOFWD: the upstream saw no new request, no new connection and no bytes its parser refused. */
  assertNothingForwarded(t: Test, up: TestUpstream, before: Snapshot, what?: string): void;
  /** No upstream ever received a request addressed to `path` (e.g. "/smuggled"). */
  assertNeverRequested(t: Test, path: string): void;
  /** CANARY-CLEAN: the canary is absent from the gateway log, exchange events and every upstream. */
  assertCanaryClean(t: Test): void;
  /** An intercepted TLS socket to `host` through a CONNECT carrying the canary credential. */
  intercepted(host?: string, servername?: string): Promise<tls.TLSSocket>;
  /**
   * Sends `bytes` on `route` and asserts the refusal oracles: the first response has one of
   * `statuses`, it is the only final response, the connection is closed (unless `close: false`),
   * the answer does not echo the canary, and neither the route's upstream nor EVIL saw anything.
   */
  expectRefused(t: Test, route: Route, bytes: string | Buffer, opts?: RefusalOptions): Promise<ParsedResponse | undefined>;
  close(): Promise<void>;
}

export interface RefusalOptions {
  statuses?: number[];
  /** Expect the connection to be closed (default true). */
  close?: boolean;
  waitMs?: number;
  /** How long to wait for stray forwards before asserting NOFWD (default 60 ms; 300 ms when `todo.nofwd`). */
  settleMs?: number;
  /** Known bugs: mark that one oracle as TODO (with the bug in one line) instead of failing. */
  todo?: Partial<Record<'status' | 'single' | 'close' | 'nofwd', string>>;
}

/** Lets anything the gateway might still be forwarding arrive before NOFWD is asserted. */
export const settle = (ms = 60): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface SecurityFixtureOptions {
  gateway?: Omit<TestGatewayOptions, 'upstreams' | 'upstreamCaPem'>;
  echoHandler?: UpstreamHandler;
  apiHandler?: UpstreamHandler;
  /** More hostname → port mappings. */
  upstreams?: Record<string, number | string>;
  /** Names for the API origin's certificate (default: API). */
  apiNames?: string[];
  pki?: TestCa;
}

export async function startSecurityFixture(opts: SecurityFixtureOptions = {}): Promise<SecurityFixture> {
  const pki = opts.pki ?? (await makeTestCa());
  const apiPair = await pki.issue(opts.apiNames ?? [API]);
  const evilPair = await pki.issue([EVIL]);
  const echo = await startUpstream(opts.echoHandler ? { handler: opts.echoHandler } : {});
  const api = await startUpstream({ tls: apiPair, ...(opts.apiHandler ? { handler: opts.apiHandler } : {}) });
  const evil = await startUpstream({ tls: evilPair });
  const tg = await startTestGateway({
    ...opts.gateway,
    alphaRules: opts.gateway?.alphaRules ?? SECURITY_ALPHA_RULES,
    upstreams: { [ECHO]: echo.port, [API]: api.port, [EVIL]: evil.port, ...opts.upstreams },
    upstreamCaPem: pki.caPem,
  });
  const token = tg.token;
  const authValue = tg.proxyAuth;
  const authLine = `Proxy-Authorization: ${authValue}\r\n`;
  const connectAuth = { 'Proxy-Authorization': authValue };
  const secrets = [token, tg.tokenB, authValue.slice(6), CANARY];
  const leaks = (s: string) => secrets.some((x) => s.includes(x));

  async function intercepted(host = API, servername: string | undefined = host): Promise<tls.TLSSocket> {
    const sock = await openTunnel(tg.proxyPort, `${host}:443`, connectAuth);
    return tlsOverTunnel(sock, tg.caPem, servername);
  }

  const plain: Route = {
    name: 'plain',
    host: ECHO,
    upstream: echo,
    target: (p) => `http://${ECHO}${p}`,
    auth: authLine,
    head: (m, p) => `${m} http://${ECHO}${p} HTTP/1.1\r\nHost: ${ECHO}\r\n${authLine}`,
    send: (bytes, o = {}) => rawSend(tg.proxyPort, bytes, o),
    async open() {
      const { connect } = await import('node:net');
      const s = connect({ host: '127.0.0.1', port: tg.proxyPort });
      s.on('error', () => undefined);
      await new Promise<void>((r, j) => { s.once('connect', r); s.once('error', j); });
      return s;
    },
  };
  const tunnel: Route = {
    name: 'tunnel',
    host: API,
    upstream: api,
    target: (p) => p,
    auth: '',
    head: (m, p) => `${m} ${p} HTTP/1.1\r\nHost: ${API}\r\n`,
    async send(bytes, o = {}) {
      const s = await intercepted();
      try {
        return await collect(s, bytes, o);
      } finally {
        s.destroy();
      }
    },
    open: () => intercepted(),
  };

  const snapshot = (up: TestUpstream = echo): Snapshot => ({
    seen: up.seen.length, connections: up.connections, tcpConnections: up.tcpConnections, clientErrors: up.clientErrors,
  });

  const fx: SecurityFixture = {
    tg, token, authLine, connectAuth, pki, echo, api, evil, plain, tunnel, routes: [plain, tunnel],
    snapshot,
    assertNothingForwarded(t, up, before, what = 'the upstream') {
      const now = snapshot(up);
      t.same(up.seen.slice(before.seen).map((r) => `${r.method} ${r.url}`), [], `NOFWD: ${what} received no request`);
      t.equal(now.connections, before.connections, `NOFWD: ${what} accepted no new connection`);
      t.equal(now.clientErrors, before.clientErrors, `NOFWD: ${what} parsed no malformed bytes`);
    },
    assertNeverRequested(t, path) {
      for (const up of [echo, api, evil]) {
        t.notOk(up.seen.some((r) => r.url.includes(path) || r.body.includes(path)), `no upstream ever saw ${path}`);
      }
    },
    assertCanaryClean(t) {
      t.notOk(leaks(tg.logText()), 'CANARY-CLEAN: the token is not in the gateway log');
      t.notOk(leaks(JSON.stringify(tg.exchanges())), 'CANARY-CLEAN: the token is not in the exchange events');
      for (const up of [echo, api, evil]) {
        const leaked = up.seen.some((r) => r.rawHeaders.some((h) => leaks(h)) || leaks(r.body.toString('latin1')) || leaks(r.url));
        t.notOk(leaked, 'CANARY-CLEAN: upstream request log');
      }
    },
    intercepted,
    async expectRefused(t, route, bytes, o = {}) {
      const statuses = o.statuses ?? [400];
      const todo = (k: keyof NonNullable<RefusalOptions['todo']>) => (o.todo?.[k] ? { todo: o.todo[k] } : {});
      const before = snapshot(route.upstream);
      const beforeEvil = snapshot(evil);
      const r = await route.send(bytes, { waitMs: o.waitMs ?? 1500 });
      const responses = parseResponses(r.text);
      const finals = responses.filter((x) => x.status >= 200);
      const first = finals[0];
      t.ok(first !== undefined && statuses.includes(first.status), `status ${first?.status ?? JSON.stringify(r.text.slice(0, 80))} is one of ${statuses.join('/')}`, todo('status'));
      t.ok(!responses.some((x) => x.status === 100), 'no 100 Continue before a refusal');
      t.equal(finals.length, 1, 'exactly one response (nothing after the refusal was processed)', todo('single'));
      if (o.close ?? true) t.ok(r.closed, 'the gateway closed the connection', todo('close'));
      t.notOk(leaks(r.text), 'the refusal does not echo the proxy credential');
      // Where a forward is a known bug, let it land here rather than in the next case's window.
      await settle(o.settleMs ?? (o.todo?.nofwd ? 300 : 60));
      if (o.todo?.nofwd) {
        const now = snapshot(route.upstream);
        t.same(now, before, 'NOFWD: the upstream saw nothing', { todo: o.todo.nofwd });
      } else {
        fx.assertNothingForwarded(t, route.upstream, before, route.name === 'plain' ? 'ECHO' : 'API');
      }
      fx.assertNothingForwarded(t, evil, beforeEvil, 'EVIL');
      t.equal(evil.tcpConnections, beforeEvil.tcpConnections, 'NOFWD: EVIL accepted no TCP connection');
      return first;
    },
    async close() {
      await tg.stop();
      await Promise.all([echo.close(), api.close(), evil.close()]);
    },
  };
  return fx;
}

/** Every `Name: value` pair a recorded request carried, lower-cased names. */
export function headerPairs(rawHeaders: readonly string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) out.push([(rawHeaders[i] as string).toLowerCase(), rawHeaders[i + 1] as string]);
  return out;
}
