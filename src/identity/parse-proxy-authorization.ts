// Owns: Proxy-Authorization header values → scope and token, or a reason. PURE.
// Accepts `Basic base64(scope:token)` (what HTTPS_PROXY=http://scope:token@host:port produces,
// also `:token` and, for tools that only take a user name, `token:`) and `Bearer <token>`.
// Schemes are case-insensitive (RFC 9110 §11.1). Messages never echo the credentials.
import { SCOPE_PATTERN, parseScope } from './scope.ts';
import { TOKEN_PREFIX } from './token-format.ts';

export type ParsedProxyAuthorization =
  | { ok: true; scope?: string; token: string; scheme: 'basic' | 'bearer' }
  | { ok: false; reason: 'auth_required' | 'auth_invalid' | 'malformed_request'; message: string };

/** Longer header values are refused before any decoding (bounded CPU). */
export const MAX_PROXY_AUTHORIZATION_LENGTH = 4096;

const LOGIN_HINT = 'run `tollgate login` and use the printed HTTPS_PROXY (http://<team>:<token>@host:port)';
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

function invalid(message: string): ParsedProxyAuthorization {
  return { ok: false, reason: 'auth_invalid', message };
}

function decodeBasic(b64: string): string | undefined {
  if (!BASE64.test(b64) || b64.length % 4 === 1) return undefined;
  try {
    return utf8.decode(Buffer.from(b64, 'base64'));
  } catch {
    return undefined;
  }
}

export function parseProxyAuthorization(headerValues: readonly string[]): ParsedProxyAuthorization {
  if (headerValues.length === 0) {
    return { ok: false, reason: 'auth_required', message: `Proxy authentication is required: ${LOGIN_HINT}.` };
  }
  if (headerValues.length > 1) {
    return { ok: false, reason: 'malformed_request', message: 'More than one Proxy-Authorization header was sent; send exactly one.' };
  }
  const raw = headerValues[0] ?? '';
  if (raw.length > MAX_PROXY_AUTHORIZATION_LENGTH) return invalid('The Proxy-Authorization header is too long.');
  const value = raw.trim();
  if (value === '') {
    return { ok: false, reason: 'auth_required', message: `Proxy authentication is required: ${LOGIN_HINT}.` };
  }
  const m = /^([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)(?:[ \t]+(.*))?$/.exec(value);
  const scheme = m?.[1]?.toLowerCase();
  const credentials = m?.[2]?.trim() ?? '';
  if (scheme === undefined) return invalid('The Proxy-Authorization header is not `<scheme> <credentials>`.');

  if (scheme === 'bearer') {
    if (credentials === '' || !TOKEN68.test(credentials)) return invalid(`The Bearer proxy credentials are empty or malformed: ${LOGIN_HINT}.`);
    return { ok: true, token: credentials, scheme: 'bearer' };
  }
  if (scheme !== 'basic') {
    return invalid(`Proxy-Authorization scheme ${JSON.stringify(m?.[1]?.slice(0, 20))} is not supported; use Basic (<team>:<token>) or Bearer <token>.`);
  }
  const decoded = credentials === '' ? undefined : decodeBasic(credentials);
  if (decoded === undefined) return invalid(`The Basic proxy credentials are not valid base64 of <team>:<token>: ${LOGIN_HINT}.`);
  const colon = decoded.indexOf(':');
  if (colon < 0) return invalid('The Basic proxy credentials have no password; use <team>:<token> as proxy credentials.');
  let user = decoded.slice(0, colon);
  let token = decoded.slice(colon + 1);
  if (token === '' && user.startsWith(TOKEN_PREFIX)) {
    // http://<token>@host:port — the token was given as the user name.
    token = user;
    user = '';
  }
  if (token === '') return invalid(`The proxy password (the token) is empty: ${LOGIN_HINT}.`);
  if (user === '') return { ok: true, token, scheme: 'basic' };
  if (!SCOPE_PATTERN.test(user) || parseScope(user) === undefined) {
    return invalid('The proxy user name must be a scope: <team> or <team>.<project>, lower case letters, digits and hyphens (e.g. sre or sre.production).');
  }
  return { ok: true, scope: user, token, scheme: 'basic' };
}
