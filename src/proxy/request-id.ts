// Owns: the id every exchange gets — a UUID version 7 (RFC 9562): the Unix time in milliseconds,
// then 74 random bits. Still a UUID wherever one is shown (the X-Request-Id header, logs,
// audit rows), but ordered by time, so the ids the store indexes (ledger_requests' key) are
// appended where the last ones went instead of landing on a random page of a large index.
import { randomFillSync } from 'node:crypto';

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** The UUIDv7 text of `ms` (Unix milliseconds) and 10 random bytes starting at `r[at]`. */
export function formatUuidV7(ms: number, r: Uint8Array, at: number): string {
  const t = Math.max(0, Math.trunc(ms));
  const hi = Math.floor(t / 0x1_0000_0000) & 0xffff; // the top 16 of the 48 time bits
  const lo = t >>> 0; // the low 32
  const b = (i: number) => HEX[r[at + i] as number] as string;
  return HEX[hi >>> 8] as string + HEX[hi & 0xff] + HEX[lo >>> 24] + HEX[(lo >>> 16) & 0xff] + '-' +
    HEX[(lo >>> 8) & 0xff] + HEX[lo & 0xff] + '-' +
    HEX[0x70 | ((r[at] as number) & 0x0f)] + b(1) + '-' + // version 7, then 12 random bits
    HEX[0x80 | ((r[at + 2] as number) & 0x3f)] + b(3) + '-' + // variant 10, then 62 random bits
    b(4) + b(5) + b(6) + b(7) + b(8) + b(9);
}

const POOL_IDS = 256;
const pool = new Uint8Array(POOL_IDS * 10);
let used = POOL_IDS;

/** A new request id (randomness drawn in bulk, as crypto.randomUUID does). */
export function newRequestId(now: number = Date.now()): string {
  if (used === POOL_IDS) {
    randomFillSync(pool);
    used = 0;
  }
  return formatUuidV7(now, pool, 10 * used++);
}
