// Owns: `tollgate login` and `tollgate logout` as library calls. Login asks the gateway which
// issuers it trusts (and for a nonce), runs the code + PKCE flow or the device flow against the
// issuer, hands the ID token to the gateway, and stores the gateway token it gets back.
// Logout revokes the stored token at the gateway (best effort) and forgets it.
import { TollgateError } from '../errors.ts';
import { fetchDiscovery } from './oidc/discovery.ts';
import { fetchJson, isRecord, type FetchLike } from './oidc/fetch-json.ts';
import { OidcError } from './oidc/oidc-error.ts';
import { runCodeFlow, runDeviceFlow } from './oidc/public-client.ts';
import { clearLogin, readLogin, writeLogin, writeLoginCa, type LoginRecord } from './login-store.ts';

export interface LoginOptions {
  gatewayUrl: string;
  device?: boolean;
  /** Issuer name when the gateway trusts several. */
  issuer?: string;
  openUrl: (url: string) => Promise<boolean>;
  print: (line: string) => void;
  port?: number;
  fetch?: FetchLike;
  env?: NodeJS.ProcessEnv;
  sleep?: (ms: number) => Promise<void>;
}

export interface LoginOutcome {
  login: LoginRecord;
  file: string;
  admin: boolean;
}

interface GatewayIssuer { name: string; issuer: string; client_id: string; scopes: string[] }

function requestError(err: unknown): TollgateError {
  if (err instanceof TollgateError) return err;
  if (err instanceof OidcError) return new TollgateError('TOLLGATE_ERR_REQUEST', err.message, { ...(err.detail === undefined ? {} : { detail: err.detail }), cause: err });
  return new TollgateError('TOLLGATE_ERR_REQUEST', String(err), { cause: err });
}

export function normaliseGatewayUrl(text: string): string {
  let u: URL;
  try {
    u = new URL(/^https?:\/\//i.test(text) ? text : `http://${text}`);
  } catch {
    throw new TollgateError('TOLLGATE_ERR_USAGE', `${JSON.stringify(text)} is not a gateway URL (e.g. https://tollgate.example.com:9090)`);
  }
  if (u.username || u.password || u.search || u.hash) throw new TollgateError('TOLLGATE_ERR_USAGE', 'the gateway URL takes no credentials, query or fragment');
  return u.origin + u.pathname.replace(/\/+$/, '');
}

export async function loginToGateway(opts: LoginOptions): Promise<LoginOutcome> {
  const gateway = normaliseGatewayUrl(opts.gatewayUrl);
  const f = opts.fetch ? { fetch: opts.fetch } : {};
  try {
    const cfg = await fetchJson(`${gateway}/api/v1/auth/config`, { timeoutMs: 10_000, ...f }).catch((err: unknown) => {
      throw new OidcError('idp_unavailable', `The gateway at ${gateway} cannot be reached or is not a Tollgate gateway (${err instanceof OidcError ? err.message : String(err)}).`);
    });
    const body = isRecord(cfg.body) ? cfg.body : {};
    const issuers = (Array.isArray(body['issuers']) ? body['issuers'] : []) as GatewayIssuer[];
    const nonce = body['nonce'];
    if (typeof nonce !== 'string') throw new OidcError('bad_request', `${gateway} did not answer like a Tollgate gateway (no sign-in nonce).`);
    if (issuers.length === 0) throw new OidcError('bad_request', `${gateway} has no single sign-on configured (sso.issuers in tollgate.yaml).`);
    const chosen = opts.issuer === undefined ? (issuers.length === 1 ? issuers[0] : undefined) : issuers.find((i) => i.name === opts.issuer);
    if (!chosen) {
      throw new TollgateError('TOLLGATE_ERR_USAGE', `${opts.issuer === undefined ? 'this gateway trusts several issuers' : `no issuer ${JSON.stringify(opts.issuer)}`}; use --issuer with one of: ${issuers.map((i) => i.name).join(', ')}`);
    }
    const metadata = await fetchDiscovery(chosen.issuer, { timeoutMs: 10_000, ...f });
    const base = { metadata, clientId: chosen.client_id, scopes: chosen.scopes, nonce, print: opts.print, ...f };
    const idToken = opts.device
      ? await runDeviceFlow({ ...base, ...(opts.sleep ? { sleep: opts.sleep } : {}) })
      : await runCodeFlow({ ...base, openUrl: opts.openUrl, ...(opts.port === undefined ? {} : { port: opts.port }) });
    const r = await fetchJson(`${gateway}/api/v1/auth/token`, {
      method: 'POST', acceptErrorStatus: true, timeoutMs: 20_000, ...f,
      json: { issuer: chosen.name, id_token: idToken, nonce, flow: opts.device ? 'device' : 'code' },
    });
    const out = isRecord(r.body) ? r.body : {};
    if (r.status !== 200) {
      const e = isRecord(out['error']) ? out['error'] : {};
      throw new TollgateError('TOLLGATE_ERR_REQUEST', `the gateway refused the sign-in: ${String(e['message'] ?? `HTTP ${r.status}`)}`, { detail: String(e['code'] ?? '') });
    }
    const token = out['token'];
    if (typeof token !== 'string') throw new OidcError('bad_request', 'The gateway answered without a token.');
    const login: LoginRecord = {
      gateway, proxy: typeof out['proxy'] === 'string' ? out['proxy'] : '', token,
      teams: Array.isArray(out['teams']) ? out['teams'].filter((t): t is string => typeof t === 'string') : [],
      expiresAt: typeof out['expires_at'] === 'string' ? out['expires_at'] : '',
      ...(typeof out['user'] === 'string' ? { user: out['user'] } : {}),
    };
    const file = writeLogin(login, opts.env);
    if (typeof out['ca_pem'] === 'string') writeLoginCa(out['ca_pem'], opts.env);
    return { login, file, admin: out['admin'] === true };
  } catch (err) {
    throw requestError(err);
  }
}

/** Revokes the stored token at its gateway (best effort, 5 s) and forgets it. */
export async function logoutFromGateway(opts: { env?: NodeJS.ProcessEnv; fetch?: FetchLike } = {}): Promise<{ hadLogin: boolean; revoked: boolean }> {
  const env = { ...(opts.env ?? process.env), TOLLGATE_TOKEN: '' };
  const login = readLogin(env);
  if (!login) return { hadLogin: false, revoked: false };
  let revoked = false;
  if (login.gateway) {
    try {
      const r = await fetchJson(`${login.gateway}/api/v1/auth/revoke`, {
        method: 'POST', acceptErrorStatus: true, timeoutMs: 5000, headers: { authorization: `Bearer ${login.token}` }, ...(opts.fetch ? { fetch: opts.fetch } : {}),
      });
      revoked = r.status === 200;
    } catch {
      revoked = false;
    }
  }
  clearLogin(env);
  return { hadLogin: true, revoked };
}
