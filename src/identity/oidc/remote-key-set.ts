// Owns: an issuer's signing keys (JWKS) fetched, cached and rotated, as a `jose` key resolver.
// - keys are refreshed when older than maxAgeMs (default 10 min), so a removed key stops working;
// - a token naming an unknown `kid` triggers a refetch at most once per cooldownMs (default 30 s),
//   however many such tokens arrive (concurrent refetches share one request);
// - each fetch has a deadline (default 5 s); after a failure no fetch is tried for
//   failureBackoffMs (default 5 s), so an IdP outage costs each sign-in at most one deadline;
// - when a refresh fails, keys already held stay usable for staleGraceMs (default 1 h) beyond
//   their max age: an IdP outage does not end sign-ins with known keys at once.
// The `kid` is only ever a map key (jose's local key set); `jku`, `x5u` and embedded `jwk`
// headers are ignored, so a token never chooses where keys come from.
import { createLocalJWKSet, errors, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { fetchJson, isRecord, type FetchLike } from './fetch-json.ts';
import { OidcError } from './oidc-error.ts';

export interface RemoteKeySetOptions {
  jwksUri: string;
  fetch?: FetchLike;
  now?: () => number;
  timeoutMs?: number;
  cooldownMs?: number;
  maxAgeMs?: number;
  staleGraceMs?: number;
  failureBackoffMs?: number;
  maxBytes?: number;
}

export interface RemoteKeySetStats {
  fetches: number;
  failures: number;
  fetchedAt: number | undefined;
  lastError: string | undefined;
}

export interface RemoteKeySet {
  getKey: JWTVerifyGetKey;
  /** Fetch now (shares a fetch already running). Throws OidcError idp_unavailable. */
  refresh(): Promise<void>;
  stats(): RemoteKeySetStats;
}

type LocalSet = ReturnType<typeof createLocalJWKSet>;

export function createRemoteKeySet(opts: RemoteKeySetOptions): RemoteKeySet {
  const now = opts.now ?? Date.now;
  const cooldownMs = opts.cooldownMs ?? 30_000;
  const maxAgeMs = opts.maxAgeMs ?? 600_000;
  const staleGraceMs = opts.staleGraceMs ?? 3_600_000;
  const failureBackoffMs = opts.failureBackoffMs ?? 5_000;
  let local: LocalSet | undefined;
  let fetchedAt: number | undefined;
  let failedAt: number | undefined;
  let lastFailure: OidcError | undefined;
  let pending: Promise<void> | undefined;
  const stats: RemoteKeySetStats = { fetches: 0, failures: 0, fetchedAt: undefined, lastError: undefined };

  const doFetch = async (): Promise<void> => {
    stats.fetches++;
    try {
      const { body } = await fetchJson(opts.jwksUri, {
        timeoutMs: opts.timeoutMs ?? 5000, maxBytes: opts.maxBytes ?? 256 * 1024, ...(opts.fetch ? { fetch: opts.fetch } : {}),
      });
      if (!isRecord(body) || !Array.isArray(body['keys'])) {
        throw new OidcError('idp_unavailable', 'The identity provider published an invalid key set.', { detail: `${opts.jwksUri}: no keys array` });
      }
      let next: LocalSet;
      try {
        next = createLocalJWKSet(body as unknown as JSONWebKeySet);
      } catch (err) {
        throw new OidcError('idp_unavailable', 'The identity provider published an invalid key set.', { detail: `${opts.jwksUri}: ${String(err)}` });
      }
      local = next;
      fetchedAt = now();
      stats.fetchedAt = fetchedAt;
      failedAt = undefined;
      lastFailure = undefined;
    } catch (err) {
      const e = err instanceof OidcError ? err : new OidcError('idp_unavailable', 'The identity provider key set could not be fetched.', { detail: String(err) });
      failedAt = now();
      lastFailure = e;
      stats.failures++;
      stats.lastError = e.detail ?? e.message;
      throw e;
    }
  };

  const refresh = (): Promise<void> => {
    pending ??= doFetch().finally(() => {
      pending = undefined;
    });
    return pending;
  };

  /** Refresh unless a recent failure says to wait; returns whether fresh keys were loaded. */
  const tryRefresh = async (): Promise<boolean> => {
    if (failedAt !== undefined && now() - failedAt < failureBackoffMs && pending === undefined) return false;
    try {
      await refresh();
      return true;
    } catch {
      return false;
    }
  };

  const unavailable = (): OidcError =>
    new OidcError('idp_unavailable', 'The identity provider signing keys cannot be fetched; try again shortly.', {
      detail: lastFailure?.detail ?? lastFailure?.message ?? 'no keys yet',
    });

  const getKey: JWTVerifyGetKey = async (header, token) => {
    const age = fetchedAt === undefined ? Infinity : now() - fetchedAt;
    if (local === undefined || age >= maxAgeMs) {
      const ok = await tryRefresh();
      if (!ok && (local === undefined || now() - (fetchedAt ?? 0) >= maxAgeMs + staleGraceMs)) throw unavailable();
    }
    try {
      return await (local as LocalSet)(header, token);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey)) throw err;
      const sinceFetch = now() - (fetchedAt ?? 0);
      if (sinceFetch >= cooldownMs || pending !== undefined) {
        const ok = await tryRefresh();
        if (ok) return (local as LocalSet)(header, token);
        if (failedAt !== undefined && fetchedAt !== undefined && failedAt > fetchedAt) throw unavailable();
      }
      throw err;
    }
  };

  return { getKey, refresh, stats: () => ({ ...stats }) };
}
