// Owns: server-side sessions of people signed in to the admin listener through SSO, and the
// pending sign-ins between /auth/login and /auth/callback. In memory: a restart signs everyone
// out. Session ids are 32 random bytes; the map is keyed by their SHA-256, so a heap dump does
// not hand out live cookies. Bounded: the oldest entries go first.
import { createHash, randomBytes } from 'node:crypto';

export interface AdminSession {
  email: string;
  issuer: string;
  subject: string;
  /** IdP groups at sign-in; the admin role is re-derived from them and the current org.yaml. */
  groups: readonly string[];
  csrfToken: string;
  createdAt: number;
  expiresAt: number;
}

export interface PendingSignIn {
  issuerName: string;
  codeVerifier: string;
  nonce: string;
  redirectUri: string;
  returnTo: string;
  expiresAt: number;
}

export interface AdminSessions {
  create(user: Pick<AdminSession, 'email' | 'issuer' | 'subject' | 'groups'>, now: number): { id: string; session: AdminSession };
  get(id: string, now: number): AdminSession | undefined;
  destroy(id: string): boolean;
  /** Remembers a sign-in in progress under its `state`. */
  putPending(state: string, p: PendingSignIn): void;
  /** Returns and forgets it (one use). */
  takePending(state: string, now: number): PendingSignIn | undefined;
  readonly ttlMs: number;
}

const hash = (s: string) => createHash('sha256').update(s).digest('hex');

function bounded<V>(map: Map<string, V>, max: number): void {
  while (map.size > max) {
    const k = map.keys().next();
    if (k.done === true) return;
    map.delete(k.value);
  }
}

export function createAdminSessions(opts: { ttlMs?: number; maxSessions?: number; maxPending?: number } = {}): AdminSessions {
  const ttlMs = opts.ttlMs ?? 8 * 3_600_000;
  const sessions = new Map<string, AdminSession>();
  const pending = new Map<string, PendingSignIn>();
  return {
    ttlMs,
    create(user, now) {
      const id = randomBytes(32).toString('base64url');
      const session: AdminSession = Object.freeze({
        email: user.email, issuer: user.issuer, subject: user.subject, groups: Object.freeze([...user.groups]),
        csrfToken: randomBytes(24).toString('base64url'), createdAt: now, expiresAt: now + ttlMs,
      });
      sessions.set(hash(id), session);
      bounded(sessions, opts.maxSessions ?? 10_000);
      return { id, session };
    },
    get(id, now) {
      if (typeof id !== 'string' || id.length !== 43) return undefined;
      const key = hash(id);
      const s = sessions.get(key);
      if (s === undefined) return undefined;
      if (now >= s.expiresAt) {
        sessions.delete(key);
        return undefined;
      }
      return s;
    },
    destroy(id) {
      return sessions.delete(hash(id));
    },
    putPending(state, p) {
      pending.set(hash(state), { ...p });
      bounded(pending, opts.maxPending ?? 1000);
    },
    takePending(state, now) {
      const key = hash(state);
      const p = pending.get(key);
      pending.delete(key);
      return p !== undefined && now < p.expiresAt ? p : undefined;
    },
  };
}
