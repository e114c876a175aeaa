// Owns: who may use the admin API and dashboard. `authenticateAdmin(req)` accepts either the
// SSO session cookie or `Authorization: Bearer <gateway token>` of a user whose token carries
// the admin role, and returns the admin principal or a 401/403 decision (a value, never thrown).
// State-changing requests (anything but GET, HEAD, OPTIONS) must also pass the CSRF checks: a
// foreign `Origin` (or `Sec-Fetch-Site: cross-site`) is refused, and a cookie-authenticated
// request must carry the session's token in `X-CSRF-Token` (a bearer request needs none: browsers
// never attach it on their own).
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { isAdminGroup } from '../config/org-config.ts';
import type { TokenService } from '../identity/token-service.ts';
import type { OrgConfig } from '../policy/types.ts';
import type { AdminSession, AdminSessions } from './admin-sessions.ts';
import { expiryNow } from '../identity/expiry-clock.ts';

export const SESSION_COOKIE = 'tollgate_session';
/** Cookie name when the admin listener is reached over https (the __Host- prefix pins it to this origin). */
export const SECURE_SESSION_COOKIE = '__Host-tollgate_session';
export const CSRF_HEADER = 'x-csrf-token';

export interface AdminPrincipal {
  email: string;
  via: 'session' | 'token';
  /** Gateway token id, when via token. */
  tokenId?: string;
  /** The session, when via session (its csrfToken is what the dashboard sends back). */
  session?: AdminSession;
}

export type AdminAuthFailureCode = 'auth_required' | 'auth_invalid' | 'admin_required' | 'csrf_failed' | 'origin_refused';

export type AdminAuthDecision =
  | { ok: true; principal: AdminPrincipal }
  | { ok: false; status: 401 | 403; code: AdminAuthFailureCode; message: string };

export interface AdminAuthDeps {
  tokens: TokenService;
  sessions: AdminSessions;
  org: () => OrgConfig;
  /** e.g. https://tollgate.acme.example:9090 (sso.public_url); its origin is trusted as well. */
  publicUrl?: string | undefined;
  now?: () => number;
}

export type AuthenticateAdmin = (req: IncomingMessage) => Promise<AdminAuthDecision>;

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const name = part.slice(0, i).trim();
    if (!out.has(name)) out.set(name, part.slice(i + 1).trim());
  }
  return out;
}

export function isTlsRequest(req: IncomingMessage): boolean {
  return (req.socket as TLSSocket).encrypted === true;
}

/** The origin this request reached the admin listener as (its Host header was vetted by the admin server). */
export function requestOrigin(req: IncomingMessage, publicUrl?: string): string {
  if (publicUrl !== undefined) return new URL(publicUrl).origin;
  return `${isTlsRequest(req) ? 'https' : 'http'}://${(req.headers.host ?? '').toLowerCase()}`;
}

/**
 * The session id of the request's cookie. Over TLS (or behind an https `public_url`) only the
 * `__Host-` cookie counts: a cookie without the prefix can be planted by a sibling subdomain or on
 * plain http, and accepting it would sign a browser into someone else's session (session fixation).
 */
export function sessionIdFrom(req: IncomingMessage, publicUrl?: string): string | undefined {
  const cookies = parseCookies(req.headers.cookie);
  const secure = isTlsRequest(req) || (publicUrl?.startsWith('https:') ?? false);
  return cookies.get(secure ? SECURE_SESSION_COOKIE : SESSION_COOKIE);
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function fail(status: 401 | 403, code: AdminAuthFailureCode, message: string): AdminAuthDecision {
  return { ok: false, status, code, message };
}

export function createAdminAuthenticator(deps: AdminAuthDeps): AuthenticateAdmin {
  const now = deps.now ?? expiryNow;
  return async (req) => {
    const unsafe = !SAFE_METHODS.has(req.method ?? 'GET');
    if (unsafe) {
      const origin = req.headers.origin;
      const trusted = new Set([`${isTlsRequest(req) ? 'https' : 'http'}://${(req.headers.host ?? '').toLowerCase()}`]);
      if (deps.publicUrl !== undefined) trusted.add(new URL(deps.publicUrl).origin);
      if (origin !== undefined && !trusted.has(origin.toLowerCase())) {
        return fail(403, 'origin_refused', 'Requests from another site are refused.');
      }
      if (req.headers['sec-fetch-site'] === 'cross-site') return fail(403, 'origin_refused', 'Requests from another site are refused.');
    }
    const authz = req.headers.authorization;
    if (authz !== undefined) {
      const m = /^Bearer[ ]+([A-Za-z0-9_-]{1,200})\s*$/i.exec(authz);
      if (!m || m[1] === undefined) return fail(401, 'auth_invalid', 'Use Authorization: Bearer <gateway token>.');
      const v = await deps.tokens.verifyToken(m[1], now());
      if (!v.ok) return fail(401, 'auth_invalid', v.message);
      if (v.record.kind !== 'user' || !(v.record.roles ?? []).includes('admin')) {
        return fail(403, 'admin_required', 'This token does not carry the admin role; sign in with `tollgate login` as a member of an admin group.');
      }
      return { ok: true, principal: { email: v.record.subject, via: 'token', tokenId: v.record.id } };
    }
    const id = sessionIdFrom(req, deps.publicUrl);
    const session = id === undefined ? undefined : deps.sessions.get(id, now());
    if (session === undefined) return fail(401, 'auth_required', 'Sign in at /auth/login.');
    if (!isAdminGroup(deps.org(), session.groups)) {
      return fail(403, 'admin_required', `${session.email} is not in an admin group of org.yaml (admins.idp_groups).`);
    }
    if (unsafe) {
      const given = req.headers[CSRF_HEADER];
      if (typeof given !== 'string' || !sameSecret(given, session.csrfToken)) {
        return fail(403, 'csrf_failed', `State-changing requests need the ${CSRF_HEADER} header from GET /auth/session.`);
      }
    }
    return { ok: true, principal: { email: session.email, via: 'session', session } };
  };
}

/** Writes the JSON error response for a failed decision (401 carries WWW-Authenticate). */
export function sendAdminAuthFailure(res: ServerResponse, d: Extract<AdminAuthDecision, { ok: false }>): void {
  const text = JSON.stringify({ error: { code: d.code, message: d.message } });
  const headers: Record<string, string | number> = {
    'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff',
  };
  if (d.status === 401) headers['WWW-Authenticate'] = 'Bearer realm="tollgate-admin"';
  res.writeHead(d.status, headers);
  res.end(text);
}
