// Owns: the closed vocabulary of SSO failure codes, and the error that carries one. The message is
// safe to show to the person signing in; `detail` is for logs only (it may name claims or URLs).

export const OIDC_ERROR_CODES = {
  /** The IdP (discovery, JWKS or token endpoint) did not answer in time or answered garbage. */
  idp_unavailable: 503,
  /** Discovery or client configuration does not fit (issuer mismatch, no usable algorithm …). */
  idp_misconfigured: 502,
  /** The ID token failed verification (signature, iss, aud, azp, time, typ, nonce). */
  id_token_invalid: 401,
  /** The ID token was already exchanged once. */
  id_token_replayed: 401,
  /** The claims lack a usable e-mail, or the IdP says it is unverified. */
  identity_incomplete: 403,
  /** Another identity provider account (iss, sub) holds the e-mail address the sign-in asserts. */
  identity_conflict: 403,
  /** The user's groups map to no team of org.yaml. */
  no_team: 403,
  /** Tollgate's own store (tollgate.db) could not record the sign-in (locked, read-only, full). */
  store_unavailable: 503,
  /** The sign-in request itself is wrong (unknown issuer, bad body, state mismatch …). */
  bad_request: 400,
} as const;

export type OidcErrorCode = keyof typeof OIDC_ERROR_CODES;

export class OidcError extends Error {
  readonly code: OidcErrorCode;
  readonly status: number;
  readonly detail: string | undefined;
  constructor(code: OidcErrorCode, message: string, opts: { detail?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'OidcError';
    this.code = code;
    this.status = OIDC_ERROR_CODES[code];
    this.detail = opts.detail;
  }
}
