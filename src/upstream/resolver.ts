// Owns: turning a host name into addresses — through `upstreams:` overrides, the configured DNS
// servers, or the system resolver — with a bounded timeout, a small TTL cache, and a short cache of
// answers that say the name has no addresses (NXDOMAIN, or no A/AAAA records) so an agent retrying
// a misspelt name does not send two queries per request. Failures (SERVFAIL, timeouts) are never
// cached. It never decides whether an address may be dialled; that is the address guard's job.
import { lookup as systemLookup } from 'node:dns/promises';
import { Resolver } from 'node:dns/promises';
import { RequestRefusal } from '../errors.ts';

export interface Resolution {
  addresses: string[];
  /** 'override': from `upstreams:` (trusted by config); 'literal': the host was an IP; 'dns': resolved. */
  source: 'override' | 'literal' | 'dns';
  /** Port to dial when `upstreams:` says so. */
  port?: number;
}

export interface HostResolver {
  resolve(host: string, kind: 'dns' | 'ipv4' | 'ipv6', port: number): Promise<Resolution>;
}

interface CacheEntry { addresses: string[]; expires: number }
interface NegativeEntry { kind: NoAddresses; code: string; expires: number }

/** What the DNS said when it gave no addresses: the name does not exist, or it has no A/AAAA records. */
type NoAddresses = 'nxdomain' | 'nodata';

class NoAddressesError extends Error {
  constructor(readonly kind: NoAddresses, readonly code: string) {
    super(kind);
  }
}

/** The refusal for a name without addresses (PURE; exported for its table test). */
export function noAddressesRefusal(host: string, kind: NoAddresses, code: string): RequestRefusal {
  const message = kind === 'nxdomain'
    ? `The name ${host} does not exist (${code}).`
    : `The name ${host} has no addresses (no A or AAAA records).`;
  const detail = kind === 'nxdomain' ? `DNS lookup of ${host}: ${code} (the name does not exist)` : `DNS lookup of ${host}: no A or AAAA records`;
  return new RequestRefusal('dns_error', message, { detail });
}

/** Sets `key`, dropping the oldest entry past 10,000 names (a bound, not an LRU). */
function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.set(key, value);
  if (map.size > 10_000) map.delete(map.keys().next().value as string);
}

export function createHostResolver(opts: {
  upstreams: ReadonlyMap<string, { host: string; port: number }>;
  servers: ReadonlyArray<{ host: string; port: number }>;
  timeoutMs: number;
  minTtlMs?: number;
  maxTtlMs?: number;
  /** How long "no such name" / "no addresses" answers are kept (default 5 s; 0: not at all). */
  negativeTtlMs?: number;
  now?: () => number;
}): HostResolver {
  const now = opts.now ?? Date.now;
  const maxTtl = opts.maxTtlMs ?? 60_000;
  const minTtl = opts.minTtlMs ?? 0;
  const negativeTtl = Math.min(opts.negativeTtlMs ?? 5_000, maxTtl);
  const cache = new Map<string, CacheEntry>();
  const negative = new Map<string, NegativeEntry>();
  const pending = new Map<string, Promise<string[]>>();
  let resolver: Resolver | undefined;
  if (opts.servers.length > 0) {
    resolver = new Resolver({ timeout: opts.timeoutMs, tries: 1 });
    resolver.setServers(opts.servers.map((s) => (s.host.includes(':') ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`)));
  }

  async function viaServers(host: string): Promise<{ addresses: string[]; ttlMs: number }> {
    const r = resolver as Resolver;
    const codes: string[] = [];
    const settle = async (f: () => Promise<Array<{ address: string; ttl: number }>>) => {
      try {
        return await f();
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'error';
        // c-ares: ENOTFOUND is NXDOMAIN, ENODATA an answer without records of this type
        if (code === 'ENODATA' || code === 'ENOTFOUND') {
          codes.push(code);
          return [];
        }
        throw err;
      }
    };
    // One family failing (a server that answers A but SERVFAILs or drops AAAA queries, as some
    // do) does not sink the other's addresses, as with getaddrinfo; both failing is the error.
    const families = await Promise.allSettled([settle(() => r.resolve4(host, { ttl: true })), settle(() => r.resolve6(host, { ttl: true }))]);
    const all = families.flatMap((f) => (f.status === 'fulfilled' ? f.value : []));
    const failed = families.find((f) => f.status === 'rejected');
    if (all.length === 0 && failed) throw failed.reason;
    if (all.length === 0) {
      // Both families answered without records: the name does not exist only if both said so.
      throw codes.every((c) => c === 'ENOTFOUND') ? new NoAddressesError('nxdomain', 'NXDOMAIN') : new NoAddressesError('nodata', 'NODATA');
    }
    const ttl = Math.min(...all.map((a) => a.ttl)) * 1000;
    return { addresses: all.map((a) => a.address), ttlMs: ttl };
  }

  async function viaSystem(host: string): Promise<{ addresses: string[]; ttlMs: number }> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error('DNS timeout'), { code: 'ETIMEOUT' })), opts.timeoutMs);
    });
    try {
      const res = await Promise.race([systemLookup(host, { all: true, verbatim: true }), timeout]);
      return { addresses: res.map((a) => a.address), ttlMs: 30_000 };
    } catch (err) {
      // getaddrinfo's EAI_NONAME: the name does not exist, or has no addresses (it cannot say which)
      if ((err as NodeJS.ErrnoException).code === 'ENOTFOUND') throw new NoAddressesError('nxdomain', 'ENOTFOUND');
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  async function lookupName(host: string): Promise<string[]> {
    const t = now();
    const hit = cache.get(host);
    if (hit && hit.expires > t) return hit.addresses;
    const miss = negative.get(host);
    if (miss && miss.expires > t) throw noAddressesRefusal(host, miss.kind, miss.code);
    let p = pending.get(host);
    if (!p) {
      p = (async () => {
        try {
          const { addresses, ttlMs } = resolver ? await viaServers(host) : await viaSystem(host);
          if (addresses.length === 0) throw new NoAddressesError('nodata', 'NODATA');
          const ttl = Math.min(Math.max(ttlMs, minTtl), maxTtl);
          if (ttl > 0) remember(cache, host, { addresses, expires: now() + ttl });
          negative.delete(host);
          return addresses;
        } catch (err) {
          if (err instanceof NoAddressesError) {
            if (negativeTtl > 0) remember(negative, host, { kind: err.kind, code: err.code, expires: now() + negativeTtl });
            throw noAddressesRefusal(host, err.kind, err.code);
          }
          const code = (err as NodeJS.ErrnoException).code ?? 'error';
          throw new RequestRefusal('dns_error', `The name ${host} could not be resolved (${code}).`, { detail: String(err) });
        } finally {
          pending.delete(host);
        }
      })();
      pending.set(host, p);
    }
    return p;
  }

  return {
    async resolve(host, kind, port) {
      const override = opts.upstreams.get(host);
      if (override) {
        const literal = /^[0-9.]+$/.test(override.host) || override.host.includes(':');
        const addresses = literal ? [override.host] : await lookupName(override.host);
        return { addresses, source: 'override', port: override.port };
      }
      if (kind !== 'dns') return { addresses: [host], source: 'literal', port };
      return { addresses: await lookupName(host), source: 'dns', port };
    },
  };
}
