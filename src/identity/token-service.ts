// Owns: issuing, verifying, revoking and listing gateway and agent tokens over a TokenStore.
// A token is `tg_` + base64url(32 random bytes); the store keeps only its SHA-256 (hex). A plain
// hash is enough here: the secret has 256 bits of entropy, so there is nothing to brute-force.
// The clock is always an argument (`now`, ms since the epoch).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { TollgateError } from '../errors.ts';
import type { RevokeTarget, TokenFilter, TokenKind, TokenRecord, TokenRole, TokenStore } from '../store/token-store.ts';
import { NAME_PATTERN } from './scope.ts';
import { TOKEN_BYTES, TOKEN_PATTERN, TOKEN_PREFIX } from './token-format.ts';
import { createVerifiedTokenCache, type VerifiedTokenCache } from './verified-token-cache.ts';

export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;

export interface TokenServiceOptions {
  /** Lifetime when issueToken gets no ttlMs. Default 12 h. */
  defaultTtlMs?: number;
  /** Longest lifetime of a user token. Default 30 days. */
  maxUserTtlMs?: number;
  /** Longest lifetime of an agent token. Default 365 days. */
  maxAgentTtlMs?: number;
  /** How long a verified record is trusted without re-reading the store. Default 1000, at most 1000. */
  cacheTtlMs?: number;
  /** Records kept in the verified-token cache. Default 10 000. */
  cacheMaxEntries?: number;
  /** last_used_at is written at most once per this interval per token. Default 60 000. */
  touchIntervalMs?: number;
  /** Called when writing last_used_at fails (verification still succeeds). */
  onTouchError?: (err: unknown) => void;
  /** Random source (tests may make it deterministic). Default node:crypto randomBytes. */
  randomBytes?: (n: number) => Buffer;
}

export interface IssueTokenInput {
  kind: TokenKind;
  /** E-mail for users, the org.yaml agent name for agents. */
  subject: string;
  /** Users: the teams they belong to now (≥ 1). Agents: exactly one. */
  teams: readonly string[];
  projects?: readonly string[];
  /** Users only: roles held now (SSO sign-in maps org.yaml admin groups to `admin`). */
  roles?: readonly TokenRole[];
  ttlMs?: number;
  issuedBy: string;
  now: number;
}

export interface IssuedToken {
  /** Shown once; never stored. */
  token: string;
  record: TokenRecord;
}

/** Why a token was refused; for logs and audit (the client sees `message`). */
export type TokenRejection = 'malformed' | 'unknown' | 'expired' | 'revoked';

export type VerifyResult =
  | { ok: true; record: TokenRecord }
  | { ok: false; reason: 'auth_invalid'; rejection: TokenRejection; message: string; tokenId?: string };

export interface TokenService {
  /** Throws TollgateError TOLLGATE_ERR_USAGE on bad input. */
  issueToken(input: IssueTokenInput): Promise<IssuedToken>;
  verifyToken(token: string, now: number): Promise<VerifyResult>;
  /** Revokes and drops the tokens from this process's cache at once. Returns the revoked records. */
  revoke(target: RevokeTarget, now: number): Promise<TokenRecord[]>;
  list(filter?: TokenFilter): Promise<TokenRecord[]>;
  /** The cache bound: the longest a revocation made elsewhere can go unseen, in ms. */
  readonly revocationBoundMs: number;
}

function usage(message: string): TollgateError {
  return new TollgateError('TOLLGATE_ERR_USAGE', message);
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Token → SHA-256 memo bound (cleared when full; a miss only costs a hash). */
const HASH_MEMO_ENTRIES = 4096;

const SUBJECT_PATTERN = /^[^\s\p{Cc}]{1,320}$/u;
const EXPIRED_MESSAGE = 'The gateway token has expired; run `tollgate login` for a new one.';
/**
 * A user's subject is their e-mail, lower-cased (as SSO stores it), so issuing, revoking and
 * listing by `Alice@Acme.example` reach the same tokens as `alice@acme.example`.
 */
function subjectKey(kind: TokenKind, subject: string): string {
  return kind === 'user' ? subject.toLowerCase() : subject;
}

const INVALID_MESSAGE = 'The gateway token is invalid or revoked; run `tollgate login` for a new one.';

function validateIssue(input: IssueTokenInput, ttlMs: number, maxTtlMs: number): void {
  if (!SUBJECT_PATTERN.test(input.subject)) throw usage('the subject must be 1–320 characters without spaces or control characters');
  if (input.kind === 'agent' && !NAME_PATTERN.test(input.subject)) {
    throw usage(`agent name ${JSON.stringify(input.subject)} must be lower case letters, digits and hyphens`);
  }
  if (input.kind === 'user' && !input.subject.includes('@')) throw usage(`user ${JSON.stringify(input.subject)} must be an e-mail address`);
  if (input.teams.length === 0) throw usage('a token needs a team');
  if (input.kind === 'agent' && input.teams.length !== 1) throw usage('an agent token belongs to exactly one team');
  for (const t of [...input.teams, ...(input.projects ?? [])]) {
    if (!NAME_PATTERN.test(t)) throw usage(`${JSON.stringify(t)} is not a team or project name (lower case letters, digits and hyphens)`);
  }
  if (new Set(input.teams).size !== input.teams.length) throw usage('a team is listed twice');
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) throw usage('the lifetime must be a positive whole number of milliseconds');
  if (ttlMs > maxTtlMs) throw usage(`the lifetime may be at most ${Math.floor(maxTtlMs / HOUR_MS)} h for ${input.kind} tokens`);
  if (input.issuedBy.trim() === '') throw usage('issuedBy is required');
  if (input.roles !== undefined && input.roles.length > 0) {
    if (input.kind !== 'user') throw usage('only user tokens carry roles');
    if (!input.roles.every((r) => r === 'admin')) throw usage('the only role is admin');
  }
}

export function createTokenService(store: TokenStore, opts: TokenServiceOptions = {}): TokenService {
  const defaultTtlMs = opts.defaultTtlMs ?? 12 * HOUR_MS;
  const maxUserTtlMs = opts.maxUserTtlMs ?? 30 * DAY_MS;
  const maxAgentTtlMs = opts.maxAgentTtlMs ?? 365 * DAY_MS;
  const cacheTtlMs = Math.min(opts.cacheTtlMs ?? 1000, 1000);
  const touchIntervalMs = opts.touchIntervalMs ?? 60_000;
  const random = opts.randomBytes ?? randomBytes;
  const cache: VerifiedTokenCache = createVerifiedTokenCache({ ttlMs: cacheTtlMs, maxEntries: opts.cacheMaxEntries ?? 10_000 });
  /** Last time this process wrote last_used_at per token id (bounded by the cache's size). */
  const touched = new Map<string, number>();

  const maybeTouch = (record: TokenRecord, now: number): void => {
    const last = touched.get(record.id) ?? record.lastUsedAt;
    if (last !== null && last !== undefined && now - last < touchIntervalMs && now >= last) return;
    touched.delete(record.id);
    touched.set(record.id, now);
    if (touched.size > (opts.cacheMaxEntries ?? 10_000)) {
      const oldest = touched.keys().next();
      if (oldest.done !== true) touched.delete(oldest.value);
    }
    store.touch(record.id, now, touchIntervalMs).catch((err: unknown) => opts.onTouchError?.(err));
  };

  const hashes = new Map<string, string>();

  return {
    revocationBoundMs: cacheTtlMs,

    async issueToken(input) {
      const ttlMs = input.ttlMs ?? defaultTtlMs;
      validateIssue(input, ttlMs, input.kind === 'agent' ? maxAgentTtlMs : maxUserTtlMs);
      const token = TOKEN_PREFIX + random(TOKEN_BYTES).toString('base64url');
      const record: TokenRecord = Object.freeze({
        id: `tok_${random(8).toString('hex')}`,
        hash: hashToken(token),
        kind: input.kind,
        subject: subjectKey(input.kind, input.subject),
        teams: Object.freeze([...input.teams]),
        projects: input.projects === undefined ? undefined : Object.freeze([...input.projects]),
        createdAt: input.now,
        expiresAt: input.now + ttlMs,
        revokedAt: null,
        lastUsedAt: null,
        issuedBy: input.issuedBy,
        ...(input.roles === undefined || input.roles.length === 0 ? {} : { roles: Object.freeze([...new Set(input.roles)]) }),
      });
      await store.insert(record);
      return { token, record };
    },

    async verifyToken(token, now) {
      // Tokens seen recently skip the pattern check and the SHA-256 (every request inside a tunnel
      // presents the same one). Only the hash is memoised: revocation and expiry are checked below.
      let hash = hashes.get(token);
      if (hash === undefined) {
        if (!TOKEN_PATTERN.test(token)) return { ok: false, reason: 'auth_invalid', rejection: 'malformed', message: INVALID_MESSAGE };
        hash = hashToken(token);
        if (hashes.size >= HASH_MEMO_ENTRIES) hashes.clear();
        hashes.set(token, hash);
      }
      let record = cache.get(hash, now);
      if (record === undefined) {
        record = await store.findByHash(hash);
        if (record === undefined) return { ok: false, reason: 'auth_invalid', rejection: 'unknown', message: INVALID_MESSAGE };
        cache.set(record, now);
      }
      // The indexed lookup already keys on the hash; compare the digests in constant time as well.
      const given = Buffer.from(hash, 'hex');
      const stored = Buffer.from(record.hash, 'hex');
      if (given.length !== stored.length || !timingSafeEqual(given, stored)) {
        return { ok: false, reason: 'auth_invalid', rejection: 'unknown', message: INVALID_MESSAGE };
      }
      if (record.revokedAt !== null) {
        return { ok: false, reason: 'auth_invalid', rejection: 'revoked', message: INVALID_MESSAGE, tokenId: record.id };
      }
      if (now >= record.expiresAt) {
        return { ok: false, reason: 'auth_invalid', rejection: 'expired', message: EXPIRED_MESSAGE, tokenId: record.id };
      }
      maybeTouch(record, now);
      return { ok: true, record };
    },

    async revoke(target, now) {
      const revoked = await store.revoke('id' in target ? target : { kind: target.kind, subject: subjectKey(target.kind, target.subject) }, now);
      for (const r of revoked) cache.invalidate(r.hash);
      return revoked;
    },

    async list(filter) {
      // without a kind the subject may name a user: agent names are lower case anyway
      return store.list(filter?.subject === undefined ? filter : { ...filter, subject: subjectKey(filter.kind ?? 'user', filter.subject) });
    },
  };
}
