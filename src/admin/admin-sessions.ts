// Owns: server-side sessions of people signed in to the admin listener through SSO, and the
// pending sign-ins between /auth/login and /auth/callback. Session ids are 32 random bytes, kept
// only as their SHA-256, so neither a heap dump nor a copy of tollgate.db hands out live cookies.
// Sessions live in a SessionTable — in tollgate.db in the gateway (src/store/sqlite-admin-sessions.ts:
// a restart signs no one out), in memory here; pending sign-ins (ten minutes at most) in memory.
// Bounded: the oldest entries go first.
import { randomBytes } from 'node:crypto';
import { hashToken } from '../identity/token-service.ts';

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

/** The key a session is kept under: the SHA-256 of its id, as gateway tokens are kept. */
export const sessionIdHash = hashToken;
const hash = hashToken;

/** Where sessions are kept, by the SHA-256 of their id. Whether one still counts is decided by createAdminSessions. */
export interface SessionTable {
  put(idHash: string, s: AdminSession, max: number): void;
  get(idHash: string): AdminSession | undefined;
  delete(idHash: string): boolean;
  /**
   * Brings every stored session's expiry forward to createdAt + ttlMs at the latest (the
   * session_ttl was shortened since they were made), so that sweeping and the bound, which go by
   * the stored expiry, see when each one really ends. Rows kept across restarts need it. Never
   * throws: a store that cannot take it now applies it with the next put.
   */
  capExpiry?(ttlMs: number): void;
}

/** Sessions in this process only: a restart signs everyone out. */
function memorySessionTable(): SessionTable {
  const sessions = new Map<string, AdminSession>();
  return {
    put(idHash, s, max) {
      sessions.set(idHash, s);
      bounded(sessions, max);
    },
    get: (idHash) => sessions.get(idHash),
    delete: (idHash) => sessions.delete(idHash),
  };
}

function bounded<V>(map: Map<string, V>, max: number): void {
  while (map.size > max) {
    const k = map.keys().next();
    if (k.done === true) return;
    map.delete(k.value);
  }
}

export interface AdminSessionsOptions {
  ttlMs?: number;
  maxSessions?: number;
  maxPending?: number;
  table?: SessionTable;
  /**
   * Whether a stored session still counts (its issuer is still configured). Checked on every use,
   * as is the current ttlMs: a session outlives neither its issuer's removal nor a shorter
   * session_ttl, also across restarts.
   */
  accept?: (s: AdminSession) => boolean;
}

export function createAdminSessions(opts: AdminSessionsOptions = {}): AdminSessions {
  const ttlMs = opts.ttlMs ?? 8 * 3_600_000;
  const sessions = opts.table ?? memorySessionTable();
  sessions.capExpiry?.(ttlMs);
  const pending = new Map<string, PendingSignIn>();
  return {
    ttlMs,
    create(user, now) {
      const id = randomBytes(32).toString('base64url');
      const session: AdminSession = Object.freeze({
        email: user.email, issuer: user.issuer, subject: user.subject, groups: Object.freeze([...user.groups]),
        csrfToken: randomBytes(24).toString('base64url'), createdAt: now, expiresAt: now + ttlMs,
      });
      sessions.put(hash(id), session, opts.maxSessions ?? 10_000);
      return { id, session };
    },
    get(id, now) {
      if (typeof id !== 'string' || id.length !== 43) return undefined;
      const key = hash(id);
      const s = sessions.get(key);
      if (s === undefined) return undefined;
      // Refused, not deleted: a read never writes (the next sign-in sweeps expired rows; a removed
      // issuer's rows expire with their ttl).
      if (now >= Math.min(s.expiresAt, s.createdAt + ttlMs) || (opts.accept !== undefined && !opts.accept(s))) return undefined;
      return s;
    },
    destroy(id) {
      if (typeof id !== 'string' || id.length !== 43) return false;
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
