// Owns: the sign-in routes of the admin listener.
//   GET  /api/v1/auth/config    unauthenticated: issuers the CLI may use, and a fresh gateway nonce
//   POST /api/v1/auth/token     the CLI's ID token → a gateway token { token, teams, expires_at, proxy, ca_pem }
//   POST /api/v1/auth/revoke    Bearer <gateway token>: revokes that token (`tollgate logout`)
//   GET  /auth/login            browser sign-in: → the IdP (authorization code + PKCE S256)
//   GET  /auth/callback         ← the IdP: verify, create the session cookie, back to return_to
//   GET  /auth/session          the signed-in person and the CSRF token the dashboard sends back
//   POST /auth/logout           ends the session
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createAuthFailureLimiter, type AuthFailureLimiter } from '../identity/auth-failure-limiter.ts';
import { scopesFor } from '../identity/oidc/issuer-presets.ts';
import type { LoginNonces } from '../identity/oidc/login-nonce.ts';
import type { IssuerRegistry } from '../identity/oidc/oidc-issuer.ts';
import { OidcError } from '../identity/oidc/oidc-error.ts';
import { createAuthorizationSecrets } from '../identity/oidc/pkce.ts';
import type { SsoAuditHook, SsoLogin } from '../identity/sso-login.ts';
import { tokenRevokedEvent } from '../identity/token-events.ts';
import type { TokenService } from '../identity/token-service.ts';
import { isAdminGroup } from '../config/org-config.ts';
import type { Logger } from '../observability/logger.ts';
import type { OrgConfig } from '../policy/types.ts';
import type { AdminRoute } from './admin-server.ts';
import {
  CSRF_HEADER, SECURE_SESSION_COOKIE, SESSION_COOKIE, isTlsRequest, parseCookies, requestOrigin, sessionIdFrom,
} from './admin-auth.ts';
import type { AdminSessions } from './admin-sessions.ts';
import { expiryNow } from '../identity/expiry-clock.ts';

export interface AuthRoutesDeps {
  issuers: IssuerRegistry;
  login: SsoLogin;
  sessions: AdminSessions;
  tokens: TokenService;
  nonces: LoginNonces;
  org: () => OrgConfig;
  logger: Logger;
  /** The proxy listener's address (known once it listens). */
  proxyAddress: () => { host: string; port: number } | undefined;
  /** The interception CA certificate (PEM), handed to the CLI so clients can trust it. */
  caPem?: () => string | undefined;
  publicUrl?: string | undefined;
  proxyUrl?: string | undefined;
  /** Issuer names that support the device flow are found from discovery; this lists the CLI hints. */
  now?: () => number;
  limiter?: AuthFailureLimiter;
  /** Records a sign-out (`tollgate logout` revoking its token) in the audit trail. */
  audit?: SsoAuditHook;
}

const LOGIN_COOKIE = 'tollgate_login';
const MAX_BODY = 64 * 1024;

function sendJson(res: ServerResponse, status: number, body: unknown, extra: Record<string, string | string[]> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff', ...extra,
  });
  res.end(text);
}

function sendError(res: ServerResponse, status: number, code: string, message: string, extra: Record<string, string> = {}): void {
  sendJson(res, status, { error: { code, message } }, extra);
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function sendPage(res: ServerResponse, status: number, title: string, bodyHtml: string, extra: Record<string, string | string[]> = {}): void {
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>` +
    `<body style="font-family:sans-serif;max-width:40em;margin:3em auto"><h1>${escapeHtml(title)}</h1>${bodyHtml}</body></html>`;
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(html), 'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff', 'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    'Referrer-Policy': 'no-referrer', 'X-Frame-Options': 'DENY', ...extra,
  });
  res.end(html);
}

function redirect(res: ServerResponse, location: string, cookies: string[] = []): void {
  res.writeHead(303, { Location: location, 'Cache-Control': 'no-store', 'Content-Length': 0, 'Referrer-Policy': 'no-referrer', ...(cookies.length ? { 'Set-Cookie': cookies } : {}) });
  res.end();
}

async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json') throw new OidcError('bad_request', 'Send the request body as application/json.');
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > MAX_BODY) throw new OidcError('bad_request', 'The request body is too large.');
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new OidcError('bad_request', 'The request body is not JSON.');
  }
}

function query(req: IncomingMessage): URLSearchParams {
  return new URL(req.url ?? '/', 'http://admin.invalid').searchParams;
}

/** Only same-site relative paths: "/x", never "//host" or "/\\host". */
function safeReturnTo(v: string | null): string {
  return v !== null && /^\/(?![/\\])[\x21-\x7e]{0,512}$/.test(v) ? v : '/';
}

function cookie(name: string, value: string, attrs: { maxAgeS: number; path: string; secure: boolean }): string {
  return `${name}=${value}; Path=${attrs.path}; Max-Age=${attrs.maxAgeS}; HttpOnly; SameSite=Lax${attrs.secure ? '; Secure' : ''}`;
}

export function proxyUrlFor(req: IncomingMessage, proxy: { host: string; port: number } | undefined, configured: string | undefined): string {
  if (configured !== undefined) return configured;
  if (!proxy) return '';
  let host = proxy.host;
  if (host === '0.0.0.0' || host === '::') {
    const h = (req.headers.host ?? '127.0.0.1').toLowerCase();
    host = h.startsWith('[') ? h.slice(0, h.indexOf(']') + 1) : (h.split(':')[0] ?? '127.0.0.1');
  } else if (host.includes(':')) {
    host = `[${host}]`;
  }
  return `http://${host}:${proxy.port}`;
}

export function createAuthRoutes(deps: AuthRoutesDeps): AdminRoute[] {
  const now = deps.now ?? expiryNow;
  const limiter = deps.limiter ?? createAuthFailureLimiter({ maxFailures: 30 });
  const source = (req: IncomingMessage) => req.socket.remoteAddress ?? 'unknown';
  /** A dashboard sign-in or sign-out event (never fails the request it records). */
  const record = (type: 'admin_signed_in' | 'admin_sign_in_refused' | 'admin_signed_out', actor: string, detail: Record<string, unknown>) => {
    try {
      deps.audit?.({ type, actor, detail });
    } catch (err) {
      deps.logger.error('cannot write the audit event', { type, error: String(err) });
    }
  };
  const secure = (req: IncomingMessage) => isTlsRequest(req) || (deps.publicUrl?.startsWith('https:') ?? false);

  const config: AdminRoute = {
    method: 'GET',
    path: '/api/v1/auth/config',
    async handle(_req, res) {
      const { nonce, expiresAt } = deps.nonces.mint(now());
      const issuers = deps.issuers.list().map((i) => ({
        name: i.settings.name, issuer: i.settings.issuer, client_id: i.settings.clientId, scopes: scopesFor(i.settings), preset: i.settings.preset,
      }));
      sendJson(res, 200, { issuers, nonce, nonce_expires_at: new Date(expiresAt).toISOString() });
    },
  };

  const token: AdminRoute = {
    method: 'POST',
    path: '/api/v1/auth/token',
    async handle(req, res) {
      const from = source(req);
      const verdict = limiter.check(from, now());
      if (!verdict.allowed) {
        sendError(res, 429, 'rate_limited', 'Too many failed sign-ins from this address; wait a minute.', { 'Retry-After': String(Math.ceil(verdict.retryAfterMs / 1000)) });
        return;
      }
      try {
        const body = await readJsonBody(req);
        const b = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
        const idToken = b['id_token'];
        const issuer = b['issuer'] ?? deps.issuers.list()[0]?.settings.name;
        const nonce = b['nonce'];
        const flow = b['flow'] ?? 'code';
        if (typeof idToken !== 'string' || typeof issuer !== 'string' || (nonce !== undefined && typeof nonce !== 'string') || (flow !== 'code' && flow !== 'device')) {
          throw new OidcError('bad_request', 'Send { "issuer": NAME, "id_token": JWT, "nonce": NONCE, "flow": "code" | "device" }.');
        }
        const r = await deps.login.exchange({ issuer, idToken, nonce, flow, source: from });
        sendJson(res, 200, {
          token: r.token, token_id: r.record.id, user: r.user.email, teams: r.user.teams, admin: r.user.admin,
          expires_at: new Date(r.record.expiresAt).toISOString(), proxy: proxyUrlFor(req, deps.proxyAddress(), deps.proxyUrl),
          ...(deps.caPem?.() === undefined ? {} : { ca_pem: deps.caPem() }),
        });
      } catch (err) {
        const e = err instanceof OidcError ? err : new OidcError('idp_unavailable', 'The sign-in failed inside the gateway.', { detail: String(err) });
        if (e.status === 401 || e.status === 400) limiter.recordFailure(from, now());
        sendError(res, e.status, e.code, e.message);
      }
    },
  };

  const revoke: AdminRoute = {
    method: 'POST',
    path: '/api/v1/auth/revoke',
    async handle(req, res) {
      const m = /^Bearer[ ]+(\S{1,200})$/i.exec(req.headers.authorization ?? '');
      const v = m?.[1] === undefined ? undefined : await deps.tokens.verifyToken(m[1], now());
      if (!v?.ok) {
        sendError(res, 401, 'auth_invalid', 'Send Authorization: Bearer <the gateway token to revoke>.', { 'WWW-Authenticate': 'Bearer realm="tollgate"' });
        return;
      }
      await deps.tokens.revoke({ id: v.record.id }, now());
      deps.logger.info('sso_logout', { event: 'token_revoked', token_id: v.record.id, subject: v.record.subject, source: source(req) });
      try {
        deps.audit?.(tokenRevokedEvent({ id: v.record.id }, [v.record], `${v.record.kind}:${v.record.subject}`, 'logout'));
      } catch (err) {
        deps.logger.error('cannot write the sign-out audit event', { token_id: v.record.id, error: String(err) });
      }
      sendJson(res, 200, { revoked: v.record.id });
    },
  };

  const login: AdminRoute = {
    method: 'GET',
    path: '/auth/login',
    async handle(req, res) {
      const q = query(req);
      const returnTo = safeReturnTo(q.get('return_to'));
      const all = deps.issuers.list();
      const chosen = q.get('issuer') ?? (all.length === 1 ? all[0]?.settings.name : undefined);
      const issuer = chosen === undefined ? undefined : deps.issuers.get(chosen);
      if (all.length === 0) {
        sendPage(res, 404, 'Sign-in is not configured', '<p>This gateway has no <code>sso.issuers</code>.</p>');
        return;
      }
      if (!issuer) {
        const links = all.map((i) => `<li><a href="/auth/login?issuer=${encodeURIComponent(i.settings.name)}&amp;return_to=${encodeURIComponent(returnTo)}">${escapeHtml(i.settings.name)}</a></li>`).join('');
        sendPage(res, chosen === undefined ? 200 : 404, 'Sign in to Tollgate', `<ul>${links}</ul>`);
        return;
      }
      const secrets = createAuthorizationSecrets();
      const { nonce } = deps.nonces.mint(now());
      const redirectUri = `${requestOrigin(req, deps.publicUrl)}/auth/callback`;
      let url: string;
      try {
        url = await issuer.authorizationUrl({ redirectUri, state: secrets.state, nonce, codeChallenge: secrets.codeChallenge, scopes: scopesFor(issuer.settings) });
      } catch (err) {
        const e = err instanceof OidcError ? err : new OidcError('idp_unavailable', 'The identity provider cannot be reached.');
        deps.logger.warn('admin sign-in: identity provider unavailable', { issuer: issuer.settings.name, detail: e.detail ?? e.message });
        sendPage(res, e.status, 'Sign-in is unavailable', `<p>${escapeHtml(e.message)}</p>`);
        return;
      }
      deps.sessions.putPending(secrets.state, {
        issuerName: issuer.settings.name, codeVerifier: secrets.codeVerifier, nonce, redirectUri, returnTo, expiresAt: now() + 600_000,
      });
      redirect(res, url, [cookie(LOGIN_COOKIE, secrets.state, { path: '/auth/callback', maxAgeS: 600, secure: secure(req) })]);
    },
  };

  const callback: AdminRoute = {
    method: 'GET',
    path: '/auth/callback',
    async handle(req, res) {
      const q = query(req);
      const from = source(req);
      const clearLogin = cookie(LOGIN_COOKIE, '', { path: '/auth/callback', maxAgeS: 0, secure: secure(req) });
      // Refusals count against the address like failed token sign-ins: past the limit the callback
      // answers 429 and writes nothing (no log line, no event).
      const verdict = limiter.check(from, now());
      if (!verdict.allowed) {
        sendPage(res, 429, 'Sign-in failed', '<p>Too many failed sign-ins from this address; wait a minute.</p>', { 'Set-Cookie': [clearLogin], 'Retry-After': String(Math.ceil(verdict.retryAfterMs / 1000)) });
        return;
      }
      const refuse = (status: number, message: string, detail: string) => {
        limiter.recordFailure(from, now());
        deps.logger.warn('admin sign-in refused', { detail: detail.slice(0, 300), source: from });
        sendPage(res, status, 'Sign-in failed', `<p>${escapeHtml(message)}</p><p><a href="/auth/login">Try again</a></p>`, { 'Set-Cookie': [clearLogin] });
      };
      const state = q.get('state');
      const bound = parseCookies(req.headers.cookie).get(LOGIN_COOKIE);
      if (state === null || bound === undefined || state !== bound) {
        refuse(400, 'This sign-in did not start in this browser, or it expired.', `state ${state === null ? 'missing' : 'does not match the login cookie'}`);
        return;
      }
      const pending = deps.sessions.takePending(state, now());
      if (!pending) {
        refuse(400, 'This sign-in expired or was already used.', 'unknown state');
        return;
      }
      const idpError = q.get('error');
      if (idpError !== null) {
        refuse(401, `The identity provider refused the sign-in (${idpError.slice(0, 100)}).`, `idp error ${idpError.slice(0, 100)} ${(q.get('error_description') ?? '').slice(0, 200)}`);
        return;
      }
      const code = q.get('code');
      if (code === null || code.length > 4096) {
        refuse(400, 'The identity provider sent no code.', 'code missing');
        return;
      }
      const issuer = deps.issuers.get(pending.issuerName);
      if (!issuer) {
        refuse(400, 'The issuer of this sign-in is no longer configured.', `issuer ${pending.issuerName}`);
        return;
      }
      // Audited: a refusal once the IdP has issued an ID token for this sign-in (anyone can obtain a
      // state and call this URL with a forged code or an error: those are only logged, and limited).
      let idTokenIssued = false;
      try {
        if (q.get('iss') !== null && q.get('iss') !== issuer.settings.issuer) {
          throw new OidcError('bad_request', 'The answer came from another identity provider (issuer mix-up).', { detail: `iss ${q.get('iss')?.slice(0, 200)}` });
        }
        const idToken = await issuer.redeemCode({ code, redirectUri: pending.redirectUri, codeVerifier: pending.codeVerifier });
        idTokenIssued = true;
        const user = await deps.login.signIn(pending.issuerName, idToken, pending.nonce, now());
        if (!user.admin && user.teams.length === 0) {
          throw new OidcError('no_team', `${user.email} is in no team and no admin group of org.yaml.`);
        }
        deps.login.bindIdentity(user, now());
        let created: ReturnType<AdminSessions['create']>;
        try {
          created = deps.sessions.create({ email: user.email, issuer: user.issuer, subject: user.subject, groups: user.groups }, now());
        } catch (err) {
          // the session store (tollgate.db) could not be written: not the user's doing, not audited
          deps.logger.warn('admin sign-in: the session store could not be written', { error: String(err), code: (err as { code?: unknown }).code });
          sendPage(res, 503, 'Sign-in failed', '<p>The sign-in could not be recorded just now; try again.</p><p><a href="/auth/login">Try again</a></p>', { 'Set-Cookie': [clearLogin] });
          return;
        }
        const { id, session } = created;
        deps.logger.info('admin_sign_in', { event: 'session_created', email: user.email, subject: user.subject, issuer: user.issuer, admin: user.admin, source: source(req) });
        record('admin_signed_in', `user:${user.email}`, {
          issuer: user.issuer, subject: user.subject, admin: user.admin, source: from, expires_at: new Date(session.expiresAt).toISOString(),
        });
        const isSecure = secure(req);
        redirect(res, pending.returnTo, [
          cookie(isSecure ? SECURE_SESSION_COOKIE : SESSION_COOKIE, id, { path: '/', maxAgeS: Math.floor((session.expiresAt - session.createdAt) / 1000), secure: isSecure }),
          clearLogin,
        ]);
      } catch (err) {
        const e = err instanceof OidcError ? err : new OidcError('idp_unavailable', 'The sign-in failed inside the gateway.', { detail: String(err) });
        refuse(e.status, e.message, `${e.code}: ${e.detail ?? e.message}`);
        if (idTokenIssued) record('admin_sign_in_refused', 'anonymous', { issuer: issuer.settings.issuer, code: e.code, source: from });
      }
    },
  };

  const sessionInfo: AdminRoute = {
    method: 'GET',
    path: '/auth/session',
    async handle(req, res) {
      const id = sessionIdFrom(req, deps.publicUrl);
      const s = id === undefined ? undefined : deps.sessions.get(id, now());
      if (!s) {
        sendError(res, 401, 'auth_required', 'Not signed in; go to /auth/login.');
        return;
      }
      sendJson(res, 200, {
        email: s.email, issuer: s.issuer, admin: isAdminGroup(deps.org(), s.groups), csrf_token: s.csrfToken, csrf_header: CSRF_HEADER,
        expires_at: new Date(s.expiresAt).toISOString(),
      });
    },
  };

  const logout: AdminRoute = {
    method: 'POST',
    path: '/auth/logout',
    async handle(req, res) {
      const id = sessionIdFrom(req, deps.publicUrl);
      const s = id === undefined ? undefined : deps.sessions.get(id, now());
      const origin = req.headers.origin;
      const sameOrigin = origin !== undefined && origin.toLowerCase() === requestOrigin(req, deps.publicUrl);
      const header = req.headers[CSRF_HEADER];
      if (s && !sameOrigin && !(typeof header === 'string' && header === s.csrfToken)) {
        sendError(res, 403, 'csrf_failed', `Log out from the dashboard, or send the ${CSRF_HEADER} header.`);
        return;
      }
      // Only a live session costs a write (an anonymous request never touches the store).
      if (s && id !== undefined) {
        try {
          deps.sessions.destroy(id);
        } catch (err) {
          deps.logger.warn('admin sign-out: the session store could not be written', { error: String(err), code: (err as { code?: unknown }).code });
          sendError(res, 503, 'store_unavailable', 'The session could not be ended just now; sign out again.');
          return;
        }
        record('admin_signed_out', `user:${s.email}`, { issuer: s.issuer, source: source(req) });
      }
      const isSecure = secure(req);
      sendJson(res, 200, { signed_out: true }, { 'Set-Cookie': [cookie(isSecure ? SECURE_SESSION_COOKIE : SESSION_COOKIE, '', { path: '/', maxAgeS: 0, secure: isSecure })] });
    },
  };

  return [config, token, revoke, login, callback, sessionInfo, logout];
}
