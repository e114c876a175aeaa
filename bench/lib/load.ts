// Owns: the closed-loop load generator (N workers, each issuing one request after the other for a
// fixed time) and the statistics of one measured run: count, rate, latency percentiles, bytes,
// and the CPU time that the measured processes spent meanwhile.
import { ProxyRefusedError, classifyFailure } from './failures.ts';

export interface LoadOptions {
  concurrency: number;
  durationMs: number;
  warmupMs: number;
  /** One request; resolves with the bytes moved (response body, plus upload when there is one). */
  one: () => Promise<number>;
  /** CPU-time readers (µs) read around the measured part; `gateway` also gives CPU per request. */
  cpu?: CpuProbes | undefined;
  /**
   * A counter that must stop moving before the measured part starts (the upstream's accepted
   * connections: the gateway's pool is full). Warm-up goes on in 250 ms steps until it is stable,
   * for at most `maxWarmupMs`.
   */
  settle?: (() => Promise<number>) | undefined;
  maxWarmupMs?: number;
}

export type CpuProbes = Record<string, () => number>;

export interface RunStats {
  requests: number;
  errors: number;
  firstError: string | undefined;
  elapsedMs: number;
  rps: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  bytes: number;
  mibPerSec: number;
  /** Gateway CPU per request (µs), when measured. */
  gatewayCpuUsPerReq: number | undefined;
  /** CPU use over the run in cores (1.0 = one core busy), per probe (gateway, upstream, loadgen). */
  cores: Record<string, number>;
  /** Connections the upstream accepted during the measured part (0 = the pool was warm). */
  upstreamConnectionsOpened?: number;
}

/** The median (the mean of the middle two for an even count); NaN when empty. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = Math.floor(s.length / 2);
  if (s.length === 0) return NaN;
  return s.length % 2 === 1 ? (s[h] as number) : ((s[h - 1] as number) + (s[h] as number)) / 2;
}

/**
 * Measured pairs of an A-versus-B scenario (#10, #11), run in ABBA order after an unmeasured
 * warm-up pair: this machine has slow and fast phases lasting seconds, the two runs of a pair are
 * back to back, and the median of the pairs' ratios is what is judged.
 */
export const ABBA_PAIRS = 4;

/**
 * `pairs` pairs of runs in ABBA order (a then b, b then a, …): each side's runs, in pair order. The
 * machine's slow and fast phases then fall on both sides alike. Warm-up runs are the caller's.
 */
export async function abbaPairs(a: () => Promise<RunStats>, b: () => Promise<RunStats>, pairs = ABBA_PAIRS): Promise<[RunStats[], RunStats[]]> {
  const as: RunStats[] = [];
  const bs: RunStats[] = [];
  for (let i = 0; i < pairs; i++) {
    if (i % 2 === 0) {
      as.push(await a());
      bs.push(await b());
    } else {
      bs.push(await b());
      as.push(await a());
    }
  }
  return [as, bs];
}

export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

export interface Raw { latencies: number[]; errors: number; firstError: string | undefined; bytes: number; elapsedMs: number }

async function loop(concurrency: number, durationMs: number, one: () => Promise<number>, record: boolean): Promise<Raw> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let bytes = 0;
  const start = performance.now();
  const deadline = start + durationMs;
  const worker = async () => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      try {
        const n = await one();
        if (record) {
          latencies.push(performance.now() - t0);
          bytes += n;
        }
      } catch (err) {
        const refused = classifyFailure(err);
        if (refused) throw refused; // 407/403 from the gateway: the whole bench stops with the reason
        errors++;
        firstError ??= err instanceof Error ? `${err.name}: ${err.message}${(err as { code?: string }).code ? ` (${(err as { code?: string }).code})` : ''}` : String(err);
        if (errors > 50 && errors > latencies.length) throw new Error(`too many errors (${errors}); first: ${firstError}`);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { latencies, errors, firstError, bytes, elapsedMs: performance.now() - start };
}

/** Warm up, then measure for `durationMs`; the gateway's CPU is read around the measured part. */
export async function runLoad(o: LoadOptions): Promise<RunStats> {
  if (o.warmupMs > 0) await loop(o.concurrency, o.warmupMs, o.one, false);
  if (o.settle) {
    const limit = performance.now() + (o.maxWarmupMs ?? 5000);
    let last = await o.settle();
    while (performance.now() < limit) {
      await loop(o.concurrency, 250, o.one, false);
      const now = await o.settle();
      if (now === last) break;
      last = now;
    }
  }
  const probes = Object.entries(o.cpu ?? {});
  const conn0 = await o.settle?.();
  const before = probes.map(([, read]) => read());
  const raw = await loop(o.concurrency, o.durationMs, o.one, true);
  const used: Record<string, number> = {};
  probes.forEach(([name, read], i) => { used[name] = read() - (before[i] as number); });
  const conn1 = await o.settle?.();
  const stats = summarise(raw, used);
  if (conn0 !== undefined && conn1 !== undefined) stats.upstreamConnectionsOpened = conn1 - conn0;
  return stats;
}

/** Figures of one run; `cpuUs` is the CPU time (µs) each probed process used during it. */
export function summarise(raw: Raw, cpuUs: Record<string, number>): RunStats {
  const sorted = Float64Array.from(raw.latencies).sort();
  const n = sorted.length;
  const secs = raw.elapsedMs / 1000;
  return {
    requests: n,
    errors: raw.errors,
    firstError: raw.firstError,
    elapsedMs: raw.elapsedMs,
    rps: n / secs,
    p50Ms: percentile(sorted, 50),
    p90Ms: percentile(sorted, 90),
    p99Ms: percentile(sorted, 99),
    maxMs: n ? (sorted[n - 1] as number) : NaN,
    bytes: raw.bytes,
    mibPerSec: raw.bytes / (1024 * 1024) / secs,
    gatewayCpuUsPerReq: cpuUs['gateway'] === undefined || n === 0 ? undefined : cpuUs['gateway'] / n,
    cores: Object.fromEntries(Object.entries(cpuUs).map(([k, us]) => [k, Math.round((us / 1e6 / secs) * 100) / 100])),
  };
}

export { ProxyRefusedError };
