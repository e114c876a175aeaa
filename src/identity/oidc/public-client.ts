// Owns: the two ways `tollgate login` (a public OAuth client, no secret) obtains an ID token:
// - runCodeFlow: authorization code + PKCE S256 with a loopback redirect (RFC 8252 §7.3):
//   a one-shot listener on http://127.0.0.1:<random port>/callback; the browser is opened (or the
//   URL printed); `state` and the RFC 9207 `iss` are checked before the code is redeemed;
// - runDeviceFlow: the device authorization grant (RFC 8628): print the verification URI and
//   user code, poll the token endpoint every `interval` seconds, slow down by 5 s when told to,
//   stop at `expired_token`, `access_denied` or `expires_in`.
// The nonce comes from the gateway; the gateway, not the CLI, verifies the ID token.
import http from 'node:http';
import type net from 'node:net';
import type { OidcMetadata } from './discovery.ts';
import { fetchJson, isRecord, type FetchLike } from './fetch-json.ts';
import { OidcError } from './oidc-error.ts';
import { createAuthorizationSecrets } from './pkce.ts';

export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

export interface PublicClientInput {
  metadata: OidcMetadata;
  clientId: string;
  scopes: readonly string[];
  nonce: string;
  print: (line: string) => void;
  fetch?: FetchLike;
}

async function tokenRequest(input: PublicClientInput, form: Record<string, string>) {
  return fetchJson(input.metadata.tokenEndpoint, {
    method: 'POST', form: { ...form, client_id: input.clientId }, acceptErrorStatus: true, timeoutMs: 15_000,
    ...(input.fetch ? { fetch: input.fetch } : {}),
  });
}

function idTokenFrom(body: unknown, issuer: string): string {
  const t = isRecord(body) ? body['id_token'] : undefined;
  if (typeof t !== 'string') throw new OidcError('idp_misconfigured', `${issuer} returned no ID token; is the openid scope allowed for this client?`);
  return t;
}

const DONE_PAGE = '<!doctype html><meta charset="utf-8"><title>Tollgate</title><body style="font-family:sans-serif;margin:3em">' +
  '<h1>Signed in</h1><p>You can close this tab and return to your terminal.</p></body>';

export interface CodeFlowInput extends PublicClientInput {
  /** Opens the URL in a browser; resolves false when it could not. */
  openUrl: (url: string) => Promise<boolean>;
  /** Loopback port; 0 (default) picks a free one. */
  port?: number;
  /** How long to wait for the browser. Default 5 minutes. */
  timeoutMs?: number;
}

export async function runCodeFlow(input: CodeFlowInput): Promise<string> {
  if (!input.metadata.codeChallengeMethods.includes('S256') && input.metadata.codeChallengeMethods.length > 0) {
    throw new OidcError('idp_misconfigured', `${input.metadata.issuer} does not support PKCE S256.`);
  }
  const secrets = createAuthorizationSecrets();
  let settle: { resolve: (code: string) => void; reject: (e: Error) => void } | undefined;
  const got = new Promise<string>((resolve, reject) => {
    settle = { resolve, reject };
  });
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method !== 'GET' || url.pathname !== '/callback') {
      res.writeHead(404).end();
      return;
    }
    const q = url.searchParams;
    if (q.get('state') !== secrets.state) {
      res.writeHead(400, { 'Content-Type': 'text/plain' }).end('This sign-in answer does not belong to the running `tollgate login`.');
      return;
    }
    const page = (status: number, text: string) => res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'close' }).end(text);
    if (q.get('iss') !== null && q.get('iss') !== input.metadata.issuer) {
      page(400, 'Sign-in failed: the answer came from another identity provider.');
      settle?.reject(new OidcError('bad_request', 'The sign-in answer came from another identity provider (issuer mix-up).'));
      return;
    }
    const error = q.get('error');
    const code = q.get('code');
    if (error !== null || code === null) {
      page(400, 'Sign-in failed; see your terminal.');
      const desc = q.get('error_description');
      settle?.reject(new OidcError('bad_request', `The identity provider refused the sign-in: ${error ?? 'no code'}${desc ? ` (${desc.slice(0, 200)})` : ''}.`));
      return;
    }
    page(200, DONE_PAGE);
    settle?.resolve(code);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: input.port ?? 0 }, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  const redirectUri = `http://127.0.0.1:${port}/callback`;
  const url = new URL(input.metadata.authorizationEndpoint);
  for (const [k, v] of Object.entries({
    response_type: 'code', client_id: input.clientId, redirect_uri: redirectUri, scope: input.scopes.join(' '),
    state: secrets.state, nonce: input.nonce, code_challenge: secrets.codeChallenge, code_challenge_method: 'S256',
  })) url.searchParams.set(k, v);
  const timeoutMs = input.timeoutMs ?? 300_000;
  const timer = setTimeout(() => settle?.reject(new OidcError('bad_request', `No sign-in within ${Math.round(timeoutMs / 1000)} s; run \`tollgate login\` again.`)), timeoutMs);
  try {
    input.print(`Opening your browser to sign in. If it does not open, visit:\n\n  ${url.href}\n`);
    const opened = await input.openUrl(url.href).catch(() => false);
    if (!opened) input.print('(No browser could be opened; copy the URL above into a browser on this machine.)');
    const code = await got;
    const r = await tokenRequest(input, { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: secrets.codeVerifier });
    if (r.status !== 200) {
      const e = isRecord(r.body) ? r.body : {};
      throw new OidcError('bad_request', `The identity provider refused the sign-in code: ${String(e['error'] ?? r.status)}${e['error_description'] ? ` (${String(e['error_description'])})` : ''}.`);
    }
    return idTokenFrom(r.body, input.metadata.issuer);
  } finally {
    clearTimeout(timer);
    server.close();
    server.closeAllConnections();
  }
}

export interface DeviceFlowInput extends PublicClientInput {
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

export async function runDeviceFlow(input: DeviceFlowInput): Promise<string> {
  const endpoint = input.metadata.deviceAuthorizationEndpoint;
  if (endpoint === undefined) {
    throw new OidcError('idp_misconfigured', `${input.metadata.issuer} does not offer the device flow; run \`tollgate login\` without --device.`);
  }
  const sleep = input.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const now = input.now ?? Date.now;
  const start = await fetchJson(endpoint, {
    method: 'POST', form: { client_id: input.clientId, scope: input.scopes.join(' '), nonce: input.nonce }, acceptErrorStatus: true, timeoutMs: 15_000,
    ...(input.fetch ? { fetch: input.fetch } : {}),
  });
  const b = isRecord(start.body) ? start.body : {};
  if (start.status !== 200) throw new OidcError('bad_request', `The identity provider refused the device sign-in: ${String(b['error'] ?? start.status)}.`);
  const deviceCode = b['device_code'];
  const userCode = b['user_code'];
  const verificationUri = b['verification_uri'] ?? b['verification_url'];
  if (typeof deviceCode !== 'string' || typeof userCode !== 'string' || typeof verificationUri !== 'string') {
    throw new OidcError('idp_misconfigured', 'The device authorization answer lacks device_code, user_code or verification_uri.');
  }
  const complete = typeof b['verification_uri_complete'] === 'string' ? b['verification_uri_complete'] : undefined;
  const expiresIn = typeof b['expires_in'] === 'number' && b['expires_in'] > 0 ? b['expires_in'] : 600;
  let intervalS = typeof b['interval'] === 'number' && b['interval'] > 0 ? b['interval'] : 5;
  input.print(`To sign in, visit ${verificationUri} and enter the code ${userCode}` + (complete ? `\n(or open ${complete})` : '') + '\nWaiting…');
  const deadline = now() + expiresIn * 1000;
  for (;;) {
    await sleep(intervalS * 1000);
    if (now() >= deadline) throw new OidcError('bad_request', 'The device code expired before the sign-in finished; run `tollgate login --device` again.');
    const r = await tokenRequest(input, { grant_type: DEVICE_CODE_GRANT, device_code: deviceCode });
    if (r.status === 200) return idTokenFrom(r.body, input.metadata.issuer);
    const error = isRecord(r.body) ? r.body['error'] : undefined;
    if (error === 'authorization_pending') continue;
    if (error === 'slow_down') {
      intervalS += 5;
      continue;
    }
    if (error === 'expired_token') throw new OidcError('bad_request', 'The device code expired before the sign-in finished; run `tollgate login --device` again.');
    if (error === 'access_denied') throw new OidcError('bad_request', 'The sign-in was declined.');
    throw new OidcError('bad_request', `The identity provider refused the device sign-in: ${String(error ?? r.status)}.`);
  }
}
