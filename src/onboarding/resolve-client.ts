// Owns: what a CLI verb acting as the signed-in user (`env`, `run`, `setup`) needs — the proxy
// URL with the user's token and scope, and the CA bundle file — from the login store, the options
// and the gateway's CA certificate.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { TollgateError } from '../errors.ts';
import { loginStoreDir, readLogin, type LoginRecord } from '../identity/login-store.ts';
import { loadGatewayConfig } from '../config/gateway-config.ts';
import { proxyUrlFor, scopeName } from '../sandbox/proxy-environment.ts';
import { writeCaBundle } from '../sandbox/write-ca-bundle.ts';

export interface ClientOptions {
  team?: string | undefined;
  project?: string | undefined;
  /** Tollgate's CA certificate (PEM); else TOLLGATE_CA_FILE, <login store dir>/ca.pem, the CA of --config. */
  caFile?: string | undefined;
  /** tollgate.yaml, when this machine runs the gateway (its `ca.cert` is used). */
  configFile?: string | undefined;
  env?: NodeJS.ProcessEnv;
}

export interface ClientContext {
  login: LoginRecord;
  scope: string | undefined;
  proxy: { host: string; port: number };
  proxyUrl: string;
  caFile: string;
  caBundlePath: string;
}

/** Where the proxy is when the login names none (TOLLGATE_TOKEN without TOLLGATE_PROXY). */
export const DEFAULT_PROXY = '127.0.0.1:3128';

/** `host:port` or `http://host:port` → host and port (3128 when absent). PURE. */
export function parseProxyAddress(text: string): { host: string; port: number } {
  const withScheme = /^[a-z]+:\/\//i.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new TollgateError('TOLLGATE_ERR_USAGE', `the proxy address ${JSON.stringify(text)} is not host:port`);
  }
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port: url.port === '' ? 3128 : Number(url.port) };
}

/** The scope for the proxy user name: --team[.--project], or the only team of the login. PURE. */
export function chooseScope(login: Pick<LoginRecord, 'teams'>, team: string | undefined, project: string | undefined): string | undefined {
  if (team !== undefined && login.teams.length > 0 && !login.teams.includes(team)) {
    throw new TollgateError('TOLLGATE_ERR_USAGE', `you are not a member of team ${team}; your teams: ${login.teams.join(', ')}`);
  }
  const t = team ?? (login.teams.length === 1 ? login.teams[0] : undefined);
  if (project !== undefined && t === undefined) {
    throw new TollgateError('TOLLGATE_ERR_USAGE', `--project needs --team (you belong to ${login.teams.join(', ') || 'no team'})`);
  }
  return scopeName(t, project);
}

function findCaFile(opts: ClientOptions, env: NodeJS.ProcessEnv): string {
  const tried: string[] = [];
  const candidates: Array<string | undefined> = [opts.caFile, env['TOLLGATE_CA_FILE'], path.join(loginStoreDir(env), 'ca.pem')];
  for (const c of candidates) {
    if (c === undefined || c === '') continue;
    if (existsSync(c)) return c;
    tried.push(c);
  }
  const configFile = opts.configFile ?? env['TOLLGATE_CONFIG'] ?? 'tollgate.yaml';
  if (existsSync(configFile)) {
    const cert = loadGatewayConfig(configFile, env).ca.cert;
    if (existsSync(cert)) return cert;
    tried.push(cert);
  }
  throw new TollgateError('TOLLGATE_ERR_USAGE',
    `cannot find the gateway's CA certificate (looked at ${tried.join(', ') || 'nothing'}). ` +
    `Pass --ca-file FILE or set TOLLGATE_CA_FILE (get the file with \`tollgate ca export > ca.pem\` on the gateway).`);
}

export function resolveClient(opts: ClientOptions = {}): ClientContext {
  const env = opts.env ?? process.env;
  const login = readLogin(env);
  if (!login) throw new TollgateError('TOLLGATE_ERR_USAGE', 'not signed in: run `tollgate login https://<gateway>` (or set TOLLGATE_TOKEN)');
  const expires = login.expiresAt === '' ? NaN : Date.parse(login.expiresAt);
  if (Number.isFinite(expires) && expires <= Date.now()) {
    throw new TollgateError('TOLLGATE_ERR_USAGE', `your gateway token expired at ${login.expiresAt}: run \`tollgate login\` again`);
  }
  const scope = chooseScope(login, opts.team, opts.project);
  const proxy = parseProxyAddress(login.proxy === '' ? DEFAULT_PROXY : login.proxy);
  const caFile = findCaFile(opts, env);
  const caBundlePath = writeCaBundle(path.join(loginStoreDir(env), 'ca-bundle.pem'), readFileSync(caFile, 'utf8'));
  return { login, scope, proxy, proxyUrl: proxyUrlFor({ ...proxy, token: login.token, scope }), caFile, caBundlePath };
}
