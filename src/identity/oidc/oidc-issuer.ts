// Owns: one configured issuer at run time — its discovery document (cached 1 h, refetched with a
// back-off after failures), its key set, ID token verification with its settings, and the
// authorization code exchange the gateway itself makes for admin sign-in.
import type { SsoIssuerConfig } from '../../config/gateway-config.ts';
import { fetchDiscovery, type OidcMetadata } from './discovery.ts';
import { fetchJson, isRecord, type FetchLike } from './fetch-json.ts';
import { OidcError } from './oidc-error.ts';
import { createRemoteKeySet, type RemoteKeySet, type RemoteKeySetOptions } from './remote-key-set.ts';
import { verifyIdToken, type IdTokenClaims } from './verify-id-token.ts';

export interface OidcIssuerDeps {
  fetch?: FetchLike;
  now?: () => number;
  /** Deadline of each request to the IdP. Default 5000 ms. */
  timeoutMs?: number;
  /** Discovery is refetched after this long. Default 1 h. */
  discoveryMaxAgeMs?: number;
  /** After a failed discovery, no new attempt for this long. Default 5000 ms. */
  failureBackoffMs?: number;
  keySet?: Omit<RemoteKeySetOptions, 'jwksUri' | 'fetch' | 'now'>;
}

export interface OidcIssuer {
  readonly settings: SsoIssuerConfig;
  metadata(): Promise<OidcMetadata>;
  verify(idToken: string, opts: { nonce: string | undefined; allowMissingNonce?: boolean; now: number; maxAgeS?: number }): Promise<IdTokenClaims>;
  authorizationUrl(p: { redirectUri: string; state: string; nonce: string; codeChallenge: string; scopes: readonly string[] }): Promise<string>;
  /** Redeems an authorization code (with the PKCE verifier, and the client secret when configured); returns the ID token. */
  redeemCode(p: { code: string; redirectUri: string; codeVerifier: string }): Promise<string>;
  keyStats(): ReturnType<RemoteKeySet['stats']> | undefined;
}

export function createOidcIssuer(settings: SsoIssuerConfig, deps: OidcIssuerDeps = {}): OidcIssuer {
  const now = deps.now ?? Date.now;
  const timeoutMs = deps.timeoutMs ?? 5000;
  const maxAgeMs = deps.discoveryMaxAgeMs ?? 3_600_000;
  const backoffMs = deps.failureBackoffMs ?? 5000;
  let meta: OidcMetadata | undefined;
  let metaAt = 0;
  let failedAt: number | undefined;
  let lastError: OidcError | undefined;
  let pending: Promise<OidcMetadata> | undefined;
  let keys: RemoteKeySet | undefined;

  const load = (): Promise<OidcMetadata> => {
    pending ??= fetchDiscovery(settings.issuer, { timeoutMs, ...(deps.fetch ? { fetch: deps.fetch } : {}) })
      .then((m) => {
        if (!keys || meta?.jwksUri !== m.jwksUri) {
          keys = createRemoteKeySet({ ...deps.keySet, jwksUri: m.jwksUri, now, timeoutMs: deps.keySet?.timeoutMs ?? timeoutMs, ...(deps.fetch ? { fetch: deps.fetch } : {}) });
        }
        meta = m;
        metaAt = now();
        failedAt = undefined;
        return m;
      }, (err: unknown) => {
        failedAt = now();
        lastError = err instanceof OidcError ? err : new OidcError('idp_unavailable', `The identity provider ${settings.name} cannot be reached.`, { detail: String(err) });
        throw lastError;
      })
      .finally(() => {
        pending = undefined;
      });
    return pending;
  };

  const metadata = async (): Promise<OidcMetadata> => {
    if (meta && now() - metaAt < maxAgeMs) return meta;
    if (pending) return pending;
    if (failedAt !== undefined && now() - failedAt < backoffMs) {
      if (meta) return meta;
      throw lastError ?? new OidcError('idp_unavailable', `The identity provider ${settings.name} cannot be reached.`);
    }
    try {
      return await load();
    } catch (err) {
      if (meta) return meta; // keep the last good document while the IdP is away
      throw err;
    }
  };

  return {
    settings,
    metadata,
    async verify(idToken, opts) {
      const m = await metadata();
      if (!keys) throw new OidcError('idp_unavailable', `The identity provider ${settings.name} cannot be reached.`);
      return verifyIdToken({
        token: idToken, issuer: m.issuer, clientId: settings.clientId, algorithms: m.idTokenAlgorithms,
        getKey: keys.getKey, now: opts.now, nonce: opts.nonce, allowMissingNonce: opts.allowMissingNonce === true, ...(opts.maxAgeS === undefined ? {} : { maxAgeS: opts.maxAgeS }),
      });
    },
    async authorizationUrl(p) {
      const m = await metadata();
      const u = new URL(m.authorizationEndpoint);
      const q: Record<string, string> = {
        response_type: 'code', client_id: settings.clientId, redirect_uri: p.redirectUri, scope: p.scopes.join(' '),
        state: p.state, nonce: p.nonce, code_challenge: p.codeChallenge, code_challenge_method: 'S256',
      };
      for (const [k, v] of Object.entries(q)) u.searchParams.set(k, v);
      return u.href;
    },
    async redeemCode(p) {
      const m = await metadata();
      const form: Record<string, string> = { grant_type: 'authorization_code', code: p.code, redirect_uri: p.redirectUri, code_verifier: p.codeVerifier };
      const headers: Record<string, string> = {};
      if (settings.clientSecret !== undefined) {
        if (m.tokenEndpointAuthMethods.includes('client_secret_basic') || !m.tokenEndpointAuthMethods.includes('client_secret_post')) {
          headers['authorization'] = `Basic ${Buffer.from(`${encodeURIComponent(settings.clientId)}:${encodeURIComponent(settings.clientSecret)}`).toString('base64')}`;
        } else {
          form['client_id'] = settings.clientId;
          form['client_secret'] = settings.clientSecret;
        }
      } else {
        form['client_id'] = settings.clientId;
      }
      const r = await fetchJson(m.tokenEndpoint, { method: 'POST', form, headers, timeoutMs, acceptErrorStatus: true, ...(deps.fetch ? { fetch: deps.fetch } : {}) });
      if (r.status !== 200 || !isRecord(r.body)) {
        const e = isRecord(r.body) ? r.body : {};
        throw new OidcError('bad_request', `${settings.name} refused the sign-in code (${String(e['error'] ?? r.status)}); sign in again.`, {
          detail: `token endpoint ${r.status}: ${String(e['error'] ?? '')} ${String(e['error_description'] ?? '')}`,
        });
      }
      const idToken = r.body['id_token'];
      if (typeof idToken !== 'string') throw new OidcError('idp_misconfigured', `${settings.name} returned no ID token; is the openid scope allowed for this client?`);
      return idToken;
    },
    keyStats: () => keys?.stats(),
  };
}

export interface IssuerRegistry {
  list(): readonly OidcIssuer[];
  get(name: string): OidcIssuer | undefined;
}

/** `deps`: the same for every issuer, or chosen per issuer. */
export function createIssuerRegistry(settings: readonly SsoIssuerConfig[], deps: OidcIssuerDeps | ((s: SsoIssuerConfig) => OidcIssuerDeps) = {}): IssuerRegistry {
  const issuers = settings.map((s) => createOidcIssuer(s, typeof deps === 'function' ? deps(s) : deps));
  const byName = new Map(issuers.map((i) => [i.settings.name, i]));
  return { list: () => issuers, get: (name) => byName.get(name) };
}
