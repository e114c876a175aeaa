// Owns: turning a host name into addresses — through `upstreams:` overrides, the configured DNS
// servers, or the system resolver — with a bounded timeout and a small TTL cache. It never decides
// whether an address may be dialled; that is the address guard's job.
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

export function createHostResolver(opts: {
  upstreams: ReadonlyMap<string, { host: string; port: number }>;
  servers: ReadonlyArray<{ host: string; port: number }>;
  timeoutMs: number;
  minTtlMs?: number;
  maxTtlMs?: number;
  now?: () => number;
}): HostResolver {
  const now = opts.now ?? Date.now;
  const maxTtl = opts.maxTtlMs ?? 60_000;
  const minTtl = opts.minTtlMs ?? 0;
  const cache = new Map<string, CacheEntry>();
  const pending = new Map<string, Promise<string[]>>();
  let resolver: Resolver | undefined;
  if (opts.servers.length > 0) {
    resolver = new Resolver({ timeout: opts.timeoutMs, tries: 1 });
    resolver.setServers(opts.servers.map((s) => (s.host.includes(':') ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`)));
  }

  async function viaServers(host: string): Promise<{ addresses: string[]; ttlMs: number }> {
    const r = resolver as Resolver;
    const settle = async (f: () => Promise<Array<{ address: string; ttl: number }>>) => {
      try {
        return await f();
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENODATA' || code === 'ENOTFOUND') return [];
        throw err;
      }
    };
    // One family failing (a server that answers A but SERVFAILs or drops AAAA queries, as some
    // do) does not sink the other's addresses, as with getaddrinfo; both failing is the error.
    const families = await Promise.allSettled([settle(() => r.resolve4(host, { ttl: true })), settle(() => r.resolve6(host, { ttl: true }))]);
    const all = families.flatMap((f) => (f.status === 'fulfilled' ? f.value : []));
    const failed = families.find((f) => f.status === 'rejected');
    if (all.length === 0 && failed) throw failed.reason;
    const ttl = all.length ? Math.min(...all.map((a) => a.ttl)) * 1000 : 0;
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
    } finally {
      clearTimeout(timer);
    }
  }

  async function lookupName(host: string): Promise<string[]> {
    const hit = cache.get(host);
    const t = now();
    if (hit && hit.expires > t) return hit.addresses;
    let p = pending.get(host);
    if (!p) {
      p = (async () => {
        try {
          const { addresses, ttlMs } = resolver ? await viaServers(host) : await viaSystem(host);
          if (addresses.length === 0) throw new RequestRefusal('dns_error', `The name ${host} has no addresses.`);
          const ttl = Math.min(Math.max(ttlMs, minTtl), maxTtl);
          if (ttl > 0) cache.set(host, { addresses, expires: now() + ttl });
          if (cache.size > 10_000) cache.delete(cache.keys().next().value as string);
          return addresses;
        } catch (err) {
          if (err instanceof RequestRefusal) throw err;
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
