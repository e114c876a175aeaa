// Owns: the TokenStore contract (gateway and agent tokens, stored only as hashes) and its record shape.
// Implementations: createSqliteTokenStore (tollgate.db) and createMemoryTokenStore (unit tests).
// Methods return promises so a shared backend for several replicas can replace SQLite later
// without changing callers; the SQLite implementation completes synchronously inside them.

export type TokenKind = 'user' | 'agent';

export interface TokenRecord {
  /** Short random id, shown in lists and audit rows; never the secret. */
  readonly id: string;
  /** SHA-256 of the full token string, lower-case hex (64 chars). */
  readonly hash: string;
  readonly kind: TokenKind;
  /** E-mail of the user, or the agent's name in org.yaml. */
  readonly subject: string;
  /** Teams at issue time (users: one or more; agents: exactly one). */
  readonly teams: readonly string[];
  /** Projects the token is narrowed to; undefined = every project its team grants. */
  readonly projects?: readonly string[] | undefined;
  /** Milliseconds since the epoch, UTC. */
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly revokedAt: number | null;
  readonly lastUsedAt: number | null;
  /** Who issued it: `oidc:<iss>`, `cli:<os user>`, `admin:<email>` … */
  readonly issuedBy: string;
  /** Roles held at issue time (users signed in through SSO: `admin`); absent or empty = none. Migration 4. */
  readonly roles?: readonly TokenRole[] | undefined;
}

export type TokenRole = 'admin';

/** Which tokens an operation is about. An empty filter means every token. */
export interface TokenFilter {
  kind?: TokenKind;
  subject?: string;
}

export type RevokeTarget = { id: string } | { kind: TokenKind; subject: string };

export interface TokenStore {
  /** Throws if the id or hash already exists. */
  insert(record: TokenRecord): Promise<void>;
  findByHash(hash: string): Promise<TokenRecord | undefined>;
  findById(id: string): Promise<TokenRecord | undefined>;
  /** Newest first. */
  list(filter?: TokenFilter): Promise<TokenRecord[]>;
  /**
   * Sets revoked_at on the matching tokens that are not yet revoked (expired ones included, so a
   * clock mistake cannot revive them) and returns them as they are after the update.
   */
  revoke(target: RevokeTarget, now: number): Promise<TokenRecord[]>;
  /** Sets last_used_at = now unless it was set less than minIntervalMs ago. True when written. */
  touch(id: string, now: number, minIntervalMs: number): Promise<boolean>;
  /** Deletes tokens that expired or were revoked before `before`. Returns how many. */
  prune(before: number): Promise<number>;
}
