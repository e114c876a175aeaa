// Owns: the issuer's discovery document (`/.well-known/openid-configuration`) → the few endpoints
// and algorithms Tollgate uses. The document must name exactly the configured issuer (mix-up
// defence, OIDC Discovery §4.3) and its endpoints must use https unless the issuer is on loopback.
import { fetchJson, isRecord, type FetchLike } from './fetch-json.ts';
import { OidcError } from './oidc-error.ts';

/** Asymmetric JWS algorithms accepted for ID tokens. HMAC (HS*) and `none` never are. */
export const ASYMMETRIC_ALGORITHMS: readonly string[] = Object.freeze([
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519',
]);

export interface OidcMetadata {
  issuer: string;
  authorizationEndpoint: string;
  tokenEndpoint: string;
  jwksUri: string;
  deviceAuthorizationEndpoint: string | undefined;
  /** Discovery's id_token_signing_alg_values_supported ∩ ASYMMETRIC_ALGORITHMS (RS256 when absent). */
  idTokenAlgorithms: readonly string[];
  codeChallengeMethods: readonly string[];
  tokenEndpointAuthMethods: readonly string[];
}

export function discoveryUrl(issuer: string): string {
  return `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
}

function isLoopbackHost(hostname: string): boolean {
  return /^(127\.\d+\.\d+\.\d+|\[::1\]|localhost)$/.test(hostname);
}

/** PURE: validates a discovery document for `issuer`. Throws OidcError idp_misconfigured. */
export function parseDiscovery(issuer: string, doc: unknown): OidcMetadata {
  const bad = (what: string) => new OidcError('idp_misconfigured', `The discovery document of ${issuer} is not usable: ${what}.`);
  if (!isRecord(doc)) throw bad('it is not a JSON object');
  if (doc['issuer'] !== issuer) {
    throw bad(`it names issuer ${JSON.stringify(doc['issuer'])}, not ${JSON.stringify(issuer)} (check sso.issuers[].issuer, including any trailing slash)`);
  }
  const loopback = isLoopbackHost(new URL(issuer).hostname);
  const endpoint = (key: string, required: boolean): string | undefined => {
    const v = doc[key];
    if (v === undefined && !required) return undefined;
    if (typeof v !== 'string') throw bad(`${key} is missing`);
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      throw bad(`${key} is not a URL`);
    }
    if (u.protocol !== 'https:' && !(u.protocol === 'http:' && loopback && isLoopbackHost(u.hostname))) throw bad(`${key} must use https`);
    return v;
  };
  const strings = (key: string): string[] | undefined => {
    const v = doc[key];
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : undefined;
  };
  const advertised = strings('id_token_signing_alg_values_supported') ?? ['RS256'];
  const algorithms = advertised.filter((a) => ASYMMETRIC_ALGORITHMS.includes(a));
  if (algorithms.length === 0) throw bad(`it signs ID tokens only with ${advertised.join(', ') || 'nothing'}; Tollgate accepts ${ASYMMETRIC_ALGORITHMS.join(', ')}`);
  return Object.freeze({
    issuer,
    authorizationEndpoint: endpoint('authorization_endpoint', true) as string,
    tokenEndpoint: endpoint('token_endpoint', true) as string,
    jwksUri: endpoint('jwks_uri', true) as string,
    deviceAuthorizationEndpoint: endpoint('device_authorization_endpoint', false),
    idTokenAlgorithms: Object.freeze(algorithms),
    codeChallengeMethods: Object.freeze(strings('code_challenge_methods_supported') ?? []),
    tokenEndpointAuthMethods: Object.freeze(strings('token_endpoint_auth_methods_supported') ?? ['client_secret_basic']),
  });
}

export async function fetchDiscovery(issuer: string, opts: { timeoutMs?: number; fetch?: FetchLike } = {}): Promise<OidcMetadata> {
  const { body } = await fetchJson(discoveryUrl(issuer), { timeoutMs: opts.timeoutMs ?? 5000, ...(opts.fetch ? { fetch: opts.fetch } : {}) });
  return parseDiscovery(issuer, body);
}
