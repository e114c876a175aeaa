// Owns: how long the supervisor waits before restarting an agent that crashed — exponential
// backoff with a ceiling. PURE.

export interface BackoffPolicy {
  /** Delay after the first failure. Default 1 s. */
  baseMs: number;
  /** Ceiling. Default 5 min. */
  maxMs: number;
  /** A run that lasted at least this long resets the failure count. Default 60 s. */
  stableMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = Object.freeze({ baseMs: 1000, maxMs: 300_000, stableMs: 60_000 });

/** Delay before restart number `failures` (1 = first failure): base · 2^(failures−1), capped. */
export function restartDelay(failures: number, policy: BackoffPolicy = DEFAULT_BACKOFF): number {
  if (failures <= 0) return 0;
  return Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(failures - 1, 30));
}
