// Owns: the library side of `tollgate token issue|revoke|list` (the CLI parses arguments and
// prints tables; these open tollgate.db, act, and close it). Tokens and hashes never leave here
// except the one printed by tokenIssue.
import { userInfo } from 'node:os';
import { TollgateError } from '../errors.ts';
import { openDatabase } from '../store/database.ts';
import { createSqliteTokenStore } from '../store/sqlite-token-store.ts';
import type { RevokeTarget, TokenKind, TokenRecord } from '../store/token-store.ts';
import { parseDuration } from './parse-duration.ts';
import { createTokenService, type TokenServiceOptions } from './token-service.ts';

export interface TokenIssueOptions {
  dbFile: string;
  user?: string;
  agent?: string;
  /** One team, several (array or comma-separated; users only). */
  team: string | readonly string[];
  project?: string | readonly string[];
  /** `12h`, `30m`, `7d`, `1h30m` …; default 12h. */
  ttl?: string;
  /** Default `cli:<os user name>`. */
  issuedBy?: string;
  now?: number;
  /** Where the token is printed; default process.stdout. */
  write?: (text: string) => void;
  limits?: Pick<TokenServiceOptions, 'maxUserTtlMs' | 'maxAgentTtlMs'>;
}

export interface TokenIssueResult {
  token: string;
  id: string;
  expiresAt: number;
}

export interface TokenSelector {
  dbFile: string;
  id?: string;
  user?: string;
  agent?: string;
  now?: number;
}

export interface TokenListOptions {
  dbFile: string;
  user?: string;
  agent?: string;
  /** Only tokens neither revoked nor expired. */
  activeOnly?: boolean;
  now?: number;
}

/** What lists show: never the token, never its hash. Times are ISO 8601 UTC. */
export interface TokenListRow {
  id: string;
  kind: TokenKind;
  subject: string;
  teams: string[];
  projects: string[] | null;
  status: 'active' | 'expired' | 'revoked';
  createdAt: string;
  expiresAt: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
  issuedBy: string;
}

function names(v: string | readonly string[] | undefined): string[] {
  if (v === undefined) return [];
  return (typeof v === 'string' ? [v] : [...v]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s !== '');
}

function subjectOf(opts: { user?: string | undefined; agent?: string | undefined }, verb: string): { kind: TokenKind; subject: string } | undefined {
  if (opts.user !== undefined && opts.agent !== undefined) throw new TollgateError('TOLLGATE_ERR_USAGE', `token ${verb}: give --user or --agent, not both`);
  if (opts.user !== undefined) return { kind: 'user', subject: opts.user };
  if (opts.agent !== undefined) return { kind: 'agent', subject: opts.agent };
  return undefined;
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

export function toListRow(r: TokenRecord, now: number): TokenListRow {
  return {
    id: r.id,
    kind: r.kind,
    subject: r.subject,
    teams: [...r.teams],
    projects: r.projects === undefined ? null : [...r.projects],
    status: r.revokedAt !== null ? 'revoked' : now >= r.expiresAt ? 'expired' : 'active',
    createdAt: new Date(r.createdAt).toISOString(),
    expiresAt: new Date(r.expiresAt).toISOString(),
    revokedAt: iso(r.revokedAt),
    lastUsedAt: iso(r.lastUsedAt),
    issuedBy: r.issuedBy,
  };
}

async function withService<T>(dbFile: string, limits: TokenIssueOptions['limits'], fn: (svc: ReturnType<typeof createTokenService>) => Promise<T>): Promise<T> {
  const db = openDatabase(dbFile);
  try {
    return await fn(createTokenService(createSqliteTokenStore(db), { ...limits, cacheTtlMs: 0 }));
  } finally {
    db.close();
  }
}

/** Issues a token straight from the store and prints only the token (one line). */
export async function tokenIssue(opts: TokenIssueOptions): Promise<TokenIssueResult> {
  const who = subjectOf(opts, 'issue');
  if (who === undefined) throw new TollgateError('TOLLGATE_ERR_USAGE', 'token issue: give --user EMAIL or --agent NAME');
  const ttlMs = opts.ttl === undefined ? undefined : parseDuration(opts.ttl);
  if (opts.ttl !== undefined && ttlMs === undefined) {
    throw new TollgateError('TOLLGATE_ERR_USAGE', `token issue: --ttl ${JSON.stringify(opts.ttl)} is not a duration such as 30m, 12h or 7d`);
  }
  const teams = names(opts.team);
  const projects = names(opts.project);
  const now = opts.now ?? Date.now();
  const issued = await withService(opts.dbFile, opts.limits, (svc) =>
    svc.issueToken({
      ...who,
      teams,
      ...(projects.length > 0 ? { projects } : {}),
      ...(ttlMs !== undefined ? { ttlMs } : {}),
      issuedBy: opts.issuedBy ?? `cli:${safeUserName()}`,
      now,
    }),
  );
  (opts.write ?? ((s: string) => process.stdout.write(s)))(`${issued.token}\n`);
  return { token: issued.token, id: issued.record.id, expiresAt: issued.record.expiresAt };
}

/** Revokes one token by id, or every token of a user or agent. Returns the revoked rows (none if nothing was active). */
export async function tokenRevoke(opts: TokenSelector): Promise<TokenListRow[]> {
  const who = subjectOf(opts, 'revoke');
  if ((opts.id !== undefined) === (who !== undefined)) {
    throw new TollgateError('TOLLGATE_ERR_USAGE', 'token revoke: give a token ID, or --user EMAIL, or --agent NAME (exactly one)');
  }
  const target: RevokeTarget = opts.id !== undefined ? { id: opts.id } : (who as { kind: TokenKind; subject: string });
  const now = opts.now ?? Date.now();
  const revoked = await withService(opts.dbFile, undefined, (svc) => svc.revoke(target, now));
  return revoked.map((r) => toListRow(r, now));
}

/** Lists tokens (newest first), optionally of one user or agent. */
export async function tokenList(opts: TokenListOptions): Promise<TokenListRow[]> {
  const who = subjectOf(opts, 'list');
  const now = opts.now ?? Date.now();
  const records = await withService(opts.dbFile, undefined, (svc) => svc.list(who ?? {}));
  const rows = records.map((r) => toListRow(r, now));
  return opts.activeOnly === true ? rows.filter((r) => r.status === 'active') : rows;
}

function safeUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}
