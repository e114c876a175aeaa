// Owns: per-principal fairness limits — open tunnels (CONNECT tunnels and upgraded WebSockets),
// requests in flight, and a request rate (a token bucket) for each user or agent, so one runaway
// agent cannot take the gateway's connections or event loop from everyone else (security case
// 8.03). The state lives in memory, per gateway process; the clock is passed in. No I/O.

export interface PrincipalLimitsConfig {
  /** Open tunnels and WebSockets per principal; 0 = unlimited. */
  readonly maxTunnels: number;
  /** Requests in flight per principal; 0 = unlimited. */
  readonly maxConcurrentRequests: number;
  /** Sustained requests per second per principal; 0 = unlimited. */
  readonly requestsPerSecond: number;
  /** Requests a principal may send at once above the rate (the bucket's size); at least 1. */
  readonly burst: number;
}

export type LimitName = 'max_tunnels' | 'max_concurrent_requests' | 'requests_per_second';

export type LimitVerdict =
  | { readonly ok: true; /** Gives the slot back (idempotent). */ readonly release: () => void }
  | { readonly ok: false; readonly limit: LimitName; readonly retryAfterMs: number; readonly message: string };

export interface PrincipalLimits {
  /** A tunnel or WebSocket opens for `who` (e.g. "agent sre-monitor"); `key` identifies the principal. */
  admitTunnel(key: string, who: string, now: number): LimitVerdict;
  /** A request starts (plain, or inside a tunnel): counts against the rate and the in-flight limit. */
  admitRequest(key: string, who: string, now: number): LimitVerdict;
  /** Principals with state held (for metrics and tests). */
  size(): number;
}

interface Entry {
  tunnels: number;
  inFlight: number;
  tokens: number;
  refilledAt: number;
}

/** Past this many principals, idle ones (nothing open, bucket full) are dropped. */
const PRUNE_AT = 4096;
/** When a slot frees is unknown: clients are told to try again after this. */
const SLOT_RETRY_MS = 1000;

export function createPrincipalLimits(cfg: PrincipalLimitsConfig): PrincipalLimits {
  const entries = new Map<string, Entry>();
  const rate = cfg.requestsPerSecond;
  const burst = Math.max(1, cfg.burst);

  const refill = (e: Entry, now: number) => {
    if (rate === 0) return;
    const elapsed = Math.max(0, now - e.refilledAt);
    e.tokens = Math.min(burst, e.tokens + (elapsed * rate) / 1000);
    e.refilledAt = now;
  };
  const idle = (e: Entry, now: number) => {
    refill(e, now);
    return e.tunnels === 0 && e.inFlight === 0 && (rate === 0 || e.tokens >= burst);
  };
  const entryOf = (key: string, now: number): Entry => {
    let e = entries.get(key);
    if (e === undefined) {
      if (entries.size >= PRUNE_AT) for (const [k, v] of entries) if (idle(v, now)) entries.delete(k);
      e = { tunnels: 0, inFlight: 0, tokens: burst, refilledAt: now };
      entries.set(key, e);
    }
    return e;
  };
  const once = (f: () => void) => {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      f();
    };
  };
  const refuse = (limit: LimitName, retryAfterMs: number, message: string): LimitVerdict => ({ ok: false, limit, retryAfterMs, message });

  return {
    admitTunnel(key, who, now) {
      const e = entryOf(key, now);
      if (cfg.maxTunnels > 0 && e.tunnels >= cfg.maxTunnels) {
        return refuse('max_tunnels', SLOT_RETRY_MS, `${who} has ${e.tunnels} tunnels open, the most allowed (limits.per_principal.max_tunnels); close idle connections, or ask your Tollgate administrator to raise the limit.`);
      }
      e.tunnels++;
      return { ok: true, release: once(() => { e.tunnels--; }) };
    },
    admitRequest(key, who, now) {
      const e = entryOf(key, now);
      if (cfg.maxConcurrentRequests > 0 && e.inFlight >= cfg.maxConcurrentRequests) {
        return refuse('max_concurrent_requests', SLOT_RETRY_MS, `${who} has ${e.inFlight} requests in flight, the most allowed (limits.per_principal.max_concurrent_requests); wait for some to finish.`);
      }
      if (rate > 0) {
        refill(e, now);
        if (e.tokens < 1) {
          const waitMs = Math.ceil(((1 - e.tokens) * 1000) / rate);
          return refuse('requests_per_second', waitMs, `${who} sends more than ${rate} requests per second (limits.per_principal.requests_per_second, burst ${burst}); slow down and try again.`);
        }
        e.tokens -= 1;
      }
      e.inFlight++;
      return { ok: true, release: once(() => { e.inFlight--; }) };
    },
    size: () => entries.size,
  };
}
