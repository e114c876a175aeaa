// Owns: Proxy-Authorization header values + source address → principal, or a reason with public
// text. Composes the rate limiter, the parser, token verification and scope resolution; the proxy's
// authenticate stage calls this once per request (also per request inside an intercepted tunnel,
// so a revocation reaches open tunnels within TokenService.revocationBoundMs).
import type { ReasonCode } from '../errors.ts';
import type { AuthFailureLimiter } from './auth-failure-limiter.ts';
import { parseProxyAuthorization, type ParsedProxyAuthorization } from './parse-proxy-authorization.ts';
import { resolvePrincipal, type Principal } from './resolve-principal.ts';
import type { TokenRejection, TokenService } from './token-service.ts';

export type AuthenticationResult =
  | { ok: true; principal: Principal }
  | {
      ok: false;
      reason: Extract<ReasonCode, 'auth_required' | 'auth_invalid' | 'malformed_request' | 'rate_limited'>;
      /** Safe to show the client (never contains the token). */
      message: string;
      /** For logs and audit rows only. */
      detail: TokenRejection | 'header' | 'scope' | 'blocked';
      tokenId?: string;
      retryAfterMs?: number;
    };

/** Header value → its parse, for well-formed single headers (every request of a tunnel repeats one). */
const parses = new Map<string, ParsedProxyAuthorization>();
const PARSE_MEMO_ENTRIES = 4096;

function parseMemoised(values: readonly string[]): ParsedProxyAuthorization {
  const raw = values.length === 1 ? values[0] : undefined;
  if (raw === undefined) return parseProxyAuthorization(values);
  let p = parses.get(raw);
  if (p === undefined) {
    p = parseProxyAuthorization(values);
    if (!p.ok) return p;
    if (parses.size >= PARSE_MEMO_ENTRIES) parses.clear();
    parses.set(raw, p);
  }
  return p;
}

/**
 * The failure limiter slows guessing: only guesses count (a malformed header, a token that does not
 * exist), and a blocked address is refused only when its credentials fail. A valid token is never
 * refused for its address, and an expired or revoked one (a real client that has not signed in
 * again) does not count, so one stale client behind a shared NAT cannot lock its neighbours out.
 */
/** A failed guess: refused outright when the address is blocked, else counted. */
function guessFailed(limiter: AuthFailureLimiter, address: string, now: number): AuthenticationResult | undefined {
  const gate = limiter.check(address, now);
  if (!gate.allowed) return { ok: false, reason: 'rate_limited', message: 'Too many failed proxy authentications from this address; try again later.', detail: 'blocked', retryAfterMs: gate.retryAfterMs };
  limiter.recordFailure(address, now);
  return undefined;
}

export async function authenticateProxyRequest(
  deps: { tokens: TokenService; limiter: AuthFailureLimiter },
  req: { proxyAuthorization: readonly string[]; sourceAddress: string; now: number },
): Promise<AuthenticationResult> {
  const parsed = parseMemoised(req.proxyAuthorization);
  if (!parsed.ok) {
    // A request without credentials is the normal first step of many clients (curl, git): not a failure.
    if (parsed.reason !== 'auth_required') {
      const refused = guessFailed(deps.limiter, req.sourceAddress, req.now);
      if (refused) return refused;
    }
    return { ok: false, reason: parsed.reason, message: parsed.message, detail: 'header' };
  }
  const verified = await deps.tokens.verifyToken(parsed.token, req.now);
  if (!verified.ok) {
    if (verified.rejection === 'malformed' || verified.rejection === 'unknown') {
      const refused = guessFailed(deps.limiter, req.sourceAddress, req.now);
      if (refused) return refused;
    }
    return {
      ok: false,
      reason: 'auth_invalid',
      message: verified.message,
      detail: verified.rejection,
      ...(verified.tokenId !== undefined ? { tokenId: verified.tokenId } : {}),
    };
  }
  const resolved = resolvePrincipal(verified.record, parsed.scope);
  if (!resolved.ok) {
    // a real token used with a team it does not have: a configuration mistake, not a guess
    return { ok: false, reason: 'auth_invalid', message: resolved.message, detail: 'scope', tokenId: verified.record.id };
  }
  return { ok: true, principal: resolved.principal };
}

/**
 * Whether credentials that authenticated a connection still do (the token is neither revoked nor
 * expired, and still resolves to a principal), without touching the failure limiter: for the
 * credential watch of connections that carry no further requests (src/proxy/credential-watch.ts).
 */
export async function credentialsStillValid(
  tokens: TokenService, proxyAuthorization: readonly string[], now: number,
): Promise<{ ok: true } | { ok: false; detail: TokenRejection | 'header' | 'scope'; tokenId?: string }> {
  const parsed = parseMemoised(proxyAuthorization);
  if (!parsed.ok) return { ok: false, detail: 'header' };
  const verified = await tokens.verifyToken(parsed.token, now);
  if (!verified.ok) return { ok: false, detail: verified.rejection, ...(verified.tokenId !== undefined ? { tokenId: verified.tokenId } : {}) };
  return resolvePrincipal(verified.record, parsed.scope).ok ? { ok: true } : { ok: false, detail: 'scope', tokenId: verified.record.id };
}
