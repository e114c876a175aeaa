// Owns: a small LRU of recently verified token records, keyed by token hash (never the token), so
// the proxy's hot path does not read SQLite per request. PURE: the clock is an argument.
// Bound: an entry is trusted for at most ttlMs after it was read from the store, so a revocation
// made by another process (the CLI, another replica) is seen within ttlMs; one made through the
// same TokenService is seen at once (invalidate). Expiry is checked on every use, not cached.
import type { TokenRecord } from '../store/token-store.ts';

export interface VerifiedTokenCache {
  get(hash: string, now: number): TokenRecord | undefined;
  set(record: TokenRecord, now: number): void;
  invalidate(hash: string): void;
  clear(): void;
  size(): number;
}

export function createVerifiedTokenCache(opts: { ttlMs: number; maxEntries: number }): VerifiedTokenCache {
  const entries = new Map<string, { record: TokenRecord; readAt: number }>();
  return {
    get(hash, now) {
      const e = entries.get(hash);
      if (e === undefined) return undefined;
      if (now - e.readAt >= opts.ttlMs || now < e.readAt) {
        entries.delete(hash);
        return undefined;
      }
      entries.delete(hash);
      entries.set(hash, e);
      return e.record;
    },
    set(record, now) {
      if (opts.ttlMs <= 0 || opts.maxEntries <= 0) return;
      entries.delete(record.hash);
      entries.set(record.hash, { record, readAt: now });
      while (entries.size > opts.maxEntries) {
        const oldest = entries.keys().next();
        if (oldest.done === true) break;
        entries.delete(oldest.value);
      }
    },
    invalidate(hash) {
      entries.delete(hash);
    },
    clear() {
      entries.clear();
    },
    size() {
      return entries.size;
    },
  };
}
