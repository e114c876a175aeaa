// Test-only: a real Tollgate started in-process on loopback (ephemeral ports, a temp data dir,
// its own CA), with log lines captured for assertions.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { databasePath, loadGatewayConfig } from '../../src/config/gateway-config.ts';
import { tokenIssue } from '../../src/identity/token-commands.ts';
import { assembleGateway, type RunningGateway } from '../../src/main.ts';
import { createLogger } from '../../src/observability/logger.ts';

/** The org of the SSO tests: IdP groups `alpha-people`, `beta-people` map to the teams; `admins` are admins. */
export const SSO_TEST_ORG_YAML = [
  'organization: Test Org',
  'admins: { idp_groups: [admins] }',
  'teams:',
  '  alpha: { name: Alpha, idp_groups: [alpha-people], policy: policies/alpha.yaml }',
  '  beta: { name: Beta, idp_groups: [beta-people], policy: policies/beta.yaml }',
  'agents:',
  '  alpha-bot: { name: Alpha Bot, team: alpha }',
  '  beta-bot: { name: Beta Bot, team: beta }',
  '',
].join('\n');

export interface TestGateway {
  gw: RunningGateway;
  dir: string;
  /** http://alpha:<token>@127.0.0.1:<port> — what HTTPS_PROXY would hold. */
  proxyUrl: string;
  /** The proxy without credentials. */
  proxyBase: string;
  /** Token of the team-alpha test agent (agent `alpha-bot`) and of the team-beta agent. */
  token: string;
  tokenB: string;
  /** `Proxy-Authorization` value for `token`. */
  proxyAuth: string;
  proxyPort: number;
  adminUrl: string;
  caPem: string;
  caFile: string;
  logs: Array<Record<string, unknown>>;
  /** Raw log text, for canary scans. */
  logText: () => string;
  exchanges: () => Array<Record<string, unknown>>;
  /** Stops the gateway (drain deadline `deadlineMs`, default 500) and removes its directory. */
  stop(deadlineMs?: number): Promise<void>;
}

export interface TestGatewayOptions {
  /** hostname → 127.0.0.1:port */
  upstreams?: Record<string, number | string>;
  upstreamCaPem?: string;
  /** Extra top-level YAML appended to tollgate.yaml. */
  extraYaml?: string;
  /** Files to write into the config dir: relative path → content (org.yaml, policies/*.yaml, secrets/*).
   *  Defaults: an org with teams alpha and beta, and policies allowing every `upstreams:` host for alpha
   *  (and `echo.allowed.test` for beta). */
  files?: Record<string, string>;
  /** Rules for team alpha (YAML list items, indented by the caller), replacing the default allow-all-upstreams. */
  alphaRules?: string;
  /** Credentials block for team alpha (YAML list items). */
  alphaCredentials?: string;
  env?: Record<string, string>;
  /** Overrides for the harness's `timeouts:` line (the harness writes that key; never repeat it in extraYaml). */
  timeouts?: Partial<Record<'connect_ms' | 'first_byte_ms' | 'idle_ms' | 'headers_ms' | 'shutdown_ms', number>>;
  /** The `sso:` section of tollgate.yaml, as its YAML keys (e.g. { issuers: [{ name, issuer, client_id }] }). */
  sso?: Record<string, unknown>;
  /** Start in dev mode (embedded OIDC issuer with the Acme demo users). */
  dev?: boolean;
}

const DEFAULT_TIMEOUTS = { connect_ms: 2000, first_byte_ms: 3000, idle_ms: 5000, headers_ms: 3000, shutdown_ms: 2000 };

export async function startTestGateway(opts: TestGatewayOptions = {}): Promise<TestGateway> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-test-'));
  mkdirSync(path.join(dir, 'policies'), { recursive: true });
  const lines: string[] = [];
  if (opts.upstreamCaPem) writeFileSync(path.join(dir, 'upstream-ca.pem'), opts.upstreamCaPem);
  const hosts = Object.keys(opts.upstreams ?? {});
  const defaults: Record<string, string> = {
    'org.yaml': [
      'organization: Test Org',
      'teams:',
      '  alpha: { name: Alpha, idp_groups: [alpha], policy: policies/alpha.yaml }',
      '  beta: { name: Beta, idp_groups: [beta], policy: policies/beta.yaml }',
      'agents:',
      '  alpha-bot: { name: Alpha Bot, team: alpha }',
      '  beta-bot: { name: Beta Bot, team: beta }',
      '',
    ].join('\n'),
    'policies/alpha.yaml': [
      'team: alpha',
      'rules:',
      opts.alphaRules ?? hosts.map((h) => `  - { host: "${h}", action: allow, ports: [80, 443, 8443] }`).join('\n'),
      '  - { host: "*", action: deny }',
      opts.alphaCredentials ? `credentials:\n${opts.alphaCredentials}` : '',
      '',
    ].join('\n'),
    'policies/beta.yaml': ['team: beta', 'rules:', '  - { host: echo.allowed.test, action: allow }', '  - { host: "*", action: deny }', ''].join('\n'),
  };
  for (const [rel, content] of Object.entries({ ...defaults, ...(opts.files ?? {}) })) {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), content);
  }
  const upstreams = Object.entries(opts.upstreams ?? {})
    .map(([h, p]) => `  ${h}: ${typeof p === 'number' ? `127.0.0.1:${p}` : p}`)
    .join('\n');
  const yaml = [
    'listen: { proxy: 127.0.0.1:0, admin: 127.0.0.1:0 }',
    'data_dir: ./data',
    'ca: { cert: ./certs/ca.pem, key: ./certs/ca.key }',
    upstreams ? `upstreams:\n${upstreams}` : '',
    opts.upstreamCaPem ? 'tls: { upstream_ca: [./upstream-ca.pem] }' : '',
    `timeouts: { ${Object.entries({ ...DEFAULT_TIMEOUTS, ...opts.timeouts }).map(([k, v]) => `${k}: ${v}`).join(', ')} }`,
    opts.extraYaml ?? '',
    opts.sso ? `sso: ${JSON.stringify(opts.sso)}` : '',
  ].filter(Boolean).join('\n');
  writeFileSync(path.join(dir, 'tollgate.yaml'), yaml + '\n');
  const config = loadGatewayConfig(path.join(dir, 'tollgate.yaml'), { ...process.env, ...opts.env });
  const logs: Array<Record<string, unknown>> = [];
  const logger = createLogger({
    level: 'debug',
    write: (line) => {
      lines.push(line);
      logs.push(JSON.parse(line) as Record<string, unknown>);
    },
  });
  const gw = await assembleGateway(config, logger, { dev: opts.dev === true });
  const issue = async (agent: string, team: string) => {
    let out = '';
    await tokenIssue({ dbFile: databasePath(config), agent, team, ttl: '1h', write: (s) => { out += s; } });
    return out.trim();
  };
  const token = await issue('alpha-bot', 'alpha');
  const tokenB = await issue('beta-bot', 'beta');
  let stopped = false;
  return {
    gw,
    dir,
    proxyUrl: `http://alpha:${token}@127.0.0.1:${gw.proxy.port}`,
    proxyBase: `http://127.0.0.1:${gw.proxy.port}`,
    token,
    tokenB,
    proxyAuth: `Basic ${Buffer.from(`alpha:${token}`).toString('base64')}`,
    proxyPort: gw.proxy.port,
    adminUrl: `http://127.0.0.1:${gw.admin.port}`,
    caPem: gw.ca.certPem,
    caFile: config.ca.cert,
    logs,
    logText: () => lines.join(''),
    exchanges: () => logs.filter((l) => l['msg'] === 'exchange'),
    async stop(deadlineMs = 500) {
      if (stopped) return;
      stopped = true;
      await gw.stop(deadlineMs);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
