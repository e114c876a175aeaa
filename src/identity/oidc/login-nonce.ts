// Owns: the nonces the gateway hands to `tollgate login`. A nonce is self-describing and needs no
// server state: `<expiry ms, base36>.<16 random bytes>.<HMAC-SHA256 over both>` (base64url), so
// anyone can ask for one without filling a table. The gateway accepts an ID token for exchange
// only when its nonce is one the gateway minted and has not expired; replay of the same ID token
// is refused separately (exchange-replay-guard). The key lives in memory and changes at restart.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export interface LoginNonces {
  mint(now: number): { nonce: string; expiresAt: number };
  /** True when the nonce was minted by this gateway and has not expired. */
  check(nonce: string, now: number): boolean;
}

export function createLoginNonces(opts: { ttlMs?: number; key?: Buffer } = {}): LoginNonces {
  const key = opts.key ?? randomBytes(32);
  const ttlMs = opts.ttlMs ?? 15 * 60_000;
  const mac = (body: string) => createHmac('sha256', key).update(body).digest().subarray(0, 16).toString('base64url');
  return {
    mint(now) {
      const expiresAt = now + ttlMs;
      const body = `${expiresAt.toString(36)}.${randomBytes(16).toString('base64url')}`;
      return { nonce: `${body}.${mac(body)}`, expiresAt };
    },
    check(nonce, now) {
      if (typeof nonce !== 'string' || nonce.length > 100) return false;
      const parts = nonce.split('.');
      if (parts.length !== 3) return false;
      const [exp = '', rnd = '', sig = ''] = parts;
      const expected = Buffer.from(mac(`${exp}.${rnd}`));
      const given = Buffer.from(sig);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return false;
      const expiresAt = parseInt(exp, 36);
      return Number.isSafeInteger(expiresAt) && now < expiresAt;
    },
  };
}
