// Owns: one keep-alive undici Pool per (scheme, host, port, vetted address, upstream trust), whose
// connector dials only that address and verifies with only that trust (a connection's pinned CA is
// never shared with the default roots' pool for the same address); idle pools are closed. This is
// the only place requests leave the gateway.
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';
import { chooseTrust, dial, type DialOptions, type DialTarget } from './connector.ts';

export interface UpstreamPoolsOptions extends Omit<DialOptions, 'alpn'> {
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  keepAliveTimeoutMs?: number;
  connectionsPerOrigin?: number;
}

export interface UpstreamPools {
  poolFor(target: DialTarget): Dispatcher;
  close(): Promise<void>;
  size(): number;
}

export function createUpstreamPools(opts: UpstreamPoolsOptions): UpstreamPools {
  const pools = new Map<string, { pool: Pool; lastUsed: number }>();
  const sweep = setInterval(() => {
    const cutoff = Date.now() - 5 * 60_000;
    for (const [key, entry] of pools) {
      if (entry.lastUsed < cutoff) {
        pools.delete(key);
        void entry.pool.close().catch(() => undefined);
      }
    }
  }, 60_000);
  sweep.unref();

  return {
    poolFor(target) {
      const trust = target.tls ? chooseTrust(target.servername, opts) : undefined;
      const key = `${target.tls ? 'https' : 'http'}|${target.servername}|${target.port}|${target.address}|${trust?.key ?? 'plain'}`;
      let entry = pools.get(key);
      if (!entry) {
        const origin = `${target.tls ? 'https' : 'http'}://${target.servername.includes(':') ? `[${target.servername}]` : target.servername}:${target.port}`;
        const pool = new Pool(origin, {
          connections: opts.connectionsPerOrigin ?? 256,
          pipelining: 1,
          headersTimeout: opts.headersTimeoutMs,
          bodyTimeout: opts.bodyTimeoutMs,
          keepAliveTimeout: opts.keepAliveTimeoutMs ?? 30_000,
          keepAliveMaxTimeout: 10 * 60_000,
          connect: (_o: unknown, cb: (err: Error | null, socket: import('node:net').Socket | null) => void) => {
            dial(target, { ...opts, alpn: ['http/1.1'] }, trust).then(
              (s) => cb(null, s),
              (e: Error) => cb(e, null),
            );
          },
        } as Pool.Options);
        entry = { pool, lastUsed: Date.now() };
        pools.set(key, entry);
      }
      entry.lastUsed = Date.now();
      return entry.pool;
    },
    async close() {
      clearInterval(sweep);
      const all = [...pools.values()];
      pools.clear();
      await Promise.all(all.map((e) => e.pool.destroy().catch(() => undefined)));
    },
    size: () => pools.size,
  };
}
