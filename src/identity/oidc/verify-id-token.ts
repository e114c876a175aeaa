// Owns: verifying an OpenID Connect ID token (OIDC Core §3.1.3.7) with `jose`:
// - compact JWS only, at most 16 KiB; the algorithm must be on the issuer's asymmetric allow-list
//   (so `alg: none` and HS256-signed-with-the-public-key never reach a key);
// - `typ`, when present, must be JWT (an access token `at+jwt` is not an ID token);
// - signature against the issuer's key set (kid → key; never jku/x5u/jwk from the header);
// - iss exactly, aud contains client_id, azp = client_id when present or when aud has several
//   entries; exp, iat and sub required; exp strictly in the future (no tolerance); nbf and iat
//   with CLOCK_TOLERANCE_S of clock skew; iat at most maxAgeS old;
// - nonce equal to the expected one (and absent when none was sent; the device flow may accept a
//   token without one, as most IdPs do not echo it there).
// The clock is an argument. Failures throw OidcError id_token_invalid (or idp_unavailable when the
// keys cannot be fetched).
import { timingSafeEqual } from 'node:crypto';
import { errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { duplicateMemberName } from './json-duplicates.ts';
import { OidcError } from './oidc-error.ts';

/** Clock skew allowed for nbf and iat, in seconds (documented in docs/identity.md). */
export const CLOCK_TOLERANCE_S = 60;
/** Largest ID token accepted, in characters. */
export const MAX_ID_TOKEN_LENGTH = 16 * 1024;

export interface VerifyIdTokenInput {
  token: string;
  issuer: string;
  clientId: string;
  algorithms: readonly string[];
  getKey: JWTVerifyGetKey;
  /** ms since the epoch. */
  now: number;
  /** The nonce sent in the authorization request; undefined = none was sent (the token must carry none). */
  nonce: string | undefined;
  /** Accept a token without any nonce even though one was sent (device flow: most IdPs drop it). */
  allowMissingNonce?: boolean;
  /** Oldest `iat` accepted, seconds. Default 600. */
  maxAgeS?: number;
}

export type IdTokenClaims = JWTPayload & { iss: string; sub: string; aud: string | string[]; exp: number; iat: number };

function invalid(message: string, detail: string, cause?: unknown): OidcError {
  return new OidcError('id_token_invalid', message, { detail, ...(cause === undefined ? {} : { cause }) });
}

function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

function describeJoseError(err: unknown): { message: string; detail: string } {
  const detail = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  if (err instanceof errors.JWTExpired) return { message: 'The ID token has expired or is too old; sign in again.', detail };
  if (err instanceof errors.JWTClaimValidationFailed) {
    const claim = err.claim;
    const what: Record<string, string> = {
      iss: 'it was issued by another issuer',
      aud: 'it was issued for another client',
      nbf: 'it is not valid yet (check the clock)',
      iat: 'its issue time is in the future (check the clock)',
    };
    return { message: `The ID token is not valid for this gateway: ${what[claim] ?? `claim ${claim} is missing or wrong`}.`, detail };
  }
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) {
    return { message: 'The ID token is signed with an algorithm this gateway does not accept.', detail };
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return { message: 'The ID token signature is invalid.', detail };
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) {
    return { message: 'The ID token is signed with a key the identity provider does not publish.', detail };
  }
  return { message: 'The ID token is malformed.', detail };
}

export async function verifyIdToken(input: VerifyIdTokenInput): Promise<IdTokenClaims> {
  const { token } = input;
  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_ID_TOKEN_LENGTH) {
    throw invalid('The ID token is missing or too large.', `length ${typeof token === 'string' ? token.length : typeof token}`);
  }
  if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token)) {
    throw invalid('The ID token is malformed.', 'not a signed compact JWS (three non-empty base64url parts)');
  }
  if (input.algorithms.length === 0) throw new OidcError('idp_misconfigured', 'No signing algorithm is configured for this issuer.');
  // A member named twice (two `alg`, two `sub`): JSON.parse keeps the last, another reader might not.
  const [headerPart = '', payloadPart = ''] = token.split('.');
  for (const [part, what] of [[headerPart, 'header'], [payloadPart, 'claims']] as const) {
    const name = duplicateMemberName(Buffer.from(part, 'base64url').toString('utf8'));
    if (name !== undefined) throw invalid('The ID token is malformed.', `its ${what} name ${JSON.stringify(name.slice(0, 40))} twice`);
  }
  let payload: JWTPayload;
  let header: { typ?: string | undefined };
  try {
    const r = await jwtVerify(token, input.getKey, {
      issuer: input.issuer,
      audience: input.clientId,
      algorithms: [...input.algorithms],
      requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat'],
      clockTolerance: CLOCK_TOLERANCE_S,
      maxTokenAge: input.maxAgeS ?? 600,
      currentDate: new Date(input.now),
    });
    payload = r.payload;
    header = r.protectedHeader;
  } catch (err) {
    if (err instanceof OidcError) throw err;
    const d = describeJoseError(err);
    throw invalid(d.message, d.detail, err);
  }
  if (header.typ !== undefined && !/^(application\/)?jwt$/i.test(header.typ)) {
    throw invalid('The token is not an ID token.', `typ ${JSON.stringify(header.typ)}`);
  }
  const nowS = Math.floor(input.now / 1000);
  if (typeof payload.exp !== 'number' || payload.exp <= nowS) throw invalid('The ID token has expired; sign in again.', `exp ${String(payload.exp)} <= now ${nowS}`);
  if (typeof payload.sub !== 'string' || payload.sub.length === 0 || payload.sub.length > 255) throw invalid('The ID token has no valid subject.', 'sub');
  const aud = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
  const azp = payload['azp'];
  if (azp !== undefined && azp !== input.clientId) throw invalid('The ID token was issued to another client.', `azp ${JSON.stringify(azp)}`);
  if (aud.length > 1 && azp === undefined) throw invalid('The ID token has several audiences and no authorized party.', `aud ${JSON.stringify(aud)} without azp`);
  const nonce = payload['nonce'];
  if (input.nonce === undefined) {
    if (nonce !== undefined) throw invalid('The ID token carries a nonce this sign-in did not send.', 'unexpected nonce');
  } else if (nonce === undefined && input.allowMissingNonce === true) {
    // device flow: the IdP did not echo the nonce; the caller relies on freshness and single use
  } else if (typeof nonce !== 'string' || !sameString(nonce, input.nonce)) {
    throw invalid('The ID token does not belong to this sign-in (nonce mismatch); sign in again.', nonce === undefined ? 'nonce missing' : 'nonce differs');
  }
  return payload as IdTokenClaims;
}
