// Owns: counting failed proxy authentications per source address and refusing an address that
// failed too often. PURE: the clock is an argument; memory is bounded by maxAddresses.
// IPv6 sources are counted per /64 (one host can hold a whole /64); IPv4-mapped IPv6 as IPv4.

export interface AuthFailureLimiterOptions {
  /** Failures within windowMs that trigger the block. Default 20. */
  maxFailures?: number;
  /** Default 60 000 ms. */
  windowMs?: number;
  /** How long a blocked address is refused. Default 60 000 ms. */
  blockMs?: number;
  /** Addresses remembered at most; the least recently failed is forgotten first. Default 10 000. */
  maxAddresses?: number;
}

export type LimiterVerdict = { allowed: true } | { allowed: false; reason: 'rate_limited'; retryAfterMs: number };

export interface AuthFailureLimiter {
  /** Before authenticating: is this source currently refused? */
  check(address: string, now: number): LimiterVerdict;
  /** After a failed authentication. Returns the verdict for the next attempt. */
  recordFailure(address: string, now: number): LimiterVerdict;
  /** Number of addresses remembered (for tests and metrics). */
  size(): number;
}

interface Entry {
  windowStart: number;
  failures: number;
  blockedUntil: number;
}

function expandIpv6(addr: string): number[] | undefined {
  const [head = '', tail, extra] = addr.split('::');
  if (extra !== undefined) return undefined;
  const part = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const h = part(head);
  const t = tail === undefined ? [] : part(tail);
  const words: number[] = [];
  for (const g of [...h, ...(tail === undefined ? [] : ['::']), ...t]) {
    if (g === '::') {
      const fill = 8 - h.length - t.length;
      if (fill < 0) return undefined;
      for (let i = 0; i < fill; i++) words.push(0);
    } else if (/^[0-9a-f]{1,4}$/i.test(g)) {
      words.push(parseInt(g, 16));
    } else {
      return undefined;
    }
  }
  return words.length === 8 ? words : undefined;
}

/** The key an address is counted under: IPv4 as is, IPv6 as its /64 prefix. */
export function limiterKey(address: string): string {
  let a = address.trim().toLowerCase();
  const zone = a.indexOf('%');
  if (zone >= 0) a = a.slice(0, zone);
  if (a.startsWith('[') && a.endsWith(']')) a = a.slice(1, -1);
  const dotted = /^(.*):(\d{1,3}(?:\.\d{1,3}){3})$/.exec(a);
  if (dotted !== undefined && dotted !== null) {
    // ::ffff:1.2.3.4 (IPv4-mapped) counts as 1.2.3.4; other embedded forms as they are written.
    const prefix = expandIpv6(`${dotted[1] ?? ''}:0:0`);
    const isMapped = prefix !== undefined && prefix.slice(0, 5).every((w) => w === 0) && prefix[5] === 0xffff;
    return isMapped ? (dotted[2] ?? a) : a;
  }
  if (!a.includes(':')) return a;
  const words = expandIpv6(a);
  if (words === undefined) return a;
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) {
    const hi = words[6] ?? 0;
    const lo = words[7] ?? 0;
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return `${words.slice(0, 4).map((w) => w.toString(16)).join(':')}::/64`;
}

export function createAuthFailureLimiter(opts: AuthFailureLimiterOptions = {}): AuthFailureLimiter {
  const maxFailures = opts.maxFailures ?? 20;
  const windowMs = opts.windowMs ?? 60_000;
  const blockMs = opts.blockMs ?? 60_000;
  const maxAddresses = opts.maxAddresses ?? 10_000;
  // Map keeps insertion order: re-inserting on every failure makes the first key the least recent.
  const entries = new Map<string, Entry>();

  const verdict = (e: Entry | undefined, now: number): LimiterVerdict =>
    e !== undefined && e.blockedUntil > now ? { allowed: false, reason: 'rate_limited', retryAfterMs: e.blockedUntil - now } : { allowed: true };

  return {
    check(address, now) {
      return verdict(entries.get(limiterKey(address)), now);
    },
    recordFailure(address, now) {
      const key = limiterKey(address);
      let e = entries.get(key);
      entries.delete(key);
      if (e === undefined || now - e.windowStart >= windowMs || now < e.windowStart) {
        e = { windowStart: now, failures: 0, blockedUntil: e !== undefined && e.blockedUntil > now ? e.blockedUntil : 0 };
      }
      e.failures++;
      if (e.failures >= maxFailures) e.blockedUntil = Math.max(e.blockedUntil, now + blockMs);
      entries.set(key, e);
      while (entries.size > maxAddresses) {
        const oldest = entries.keys().next();
        if (oldest.done === true) break;
        entries.delete(oldest.value);
      }
      return verdict(e, now);
    },
    size() {
      return entries.size;
    },
  };
}
