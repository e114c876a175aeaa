// Owns: the library side of `tollgate token issue|revoke|list` (the CLI parses arguments and
// prints tables; these open tollgate.db, act, and close it), and their audit events
// (`token_issued`, `token_revoked`), written in the same transaction as the token change. Tokens
// and hashes never leave here except the one printed by tokenIssue.
import { auditUnavailable, cliActor, createEventAppender, removeAccessWithEvent, storeFailure } from '../audit/audit-commands.ts';
import { TollgateError } from '../errors.ts';
import { inImmediateTransactionAsync, openDatabase, type Database } from '../store/database.ts';
import { createSqliteTokenStore } from '../store/sqlite-token-store.ts';
import type { RevokeTarget, TokenKind, TokenRecord } from '../store/token-store.ts';
import { parseDuration } from './parse-duration.ts';
import { tokenIssuedEvent, tokenRevokedEvent } from './token-events.ts';
import { createTokenService, type TokenService, type TokenServiceOptions } from './token-service.ts';

export interface TokenIssueOptions {
  dbFile: string;
  user?: string;
  agent?: string;
  /** One team, several (array or comma-separated; users only). */
  team: string | readonly string[];
  project?: string | readonly string[];
  /** `12h`, `30m`, `7d`, `1h30m` …; default 12h. */
  ttl?: string;
  /** Default `cli:<os user name>`; also the actor of the `token_issued` event. */
  issuedBy?: string;
  now?: number;
  /** How long to wait for the write lock (the gateway's writer holds it while it commits). Default 5000. */
  busyTimeoutMs?: number;
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
  /** Actor of the `token_revoked` event. Default `cli:<os user name>`. */
  actor?: string;
  /** As TokenIssueOptions.busyTimeoutMs. */
  busyTimeoutMs?: number;
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

async function withService<T>(
  dbFile: string, opts: { limits?: TokenIssueOptions['limits']; busyTimeoutMs?: number },
  fn: (svc: TokenService, db: Database) => Promise<T>,
): Promise<T> {
  const db = openDatabase(dbFile, opts.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: opts.busyTimeoutMs });
  try {
    return await fn(createTokenService(createSqliteTokenStore(db), { ...opts.limits, cacheTtlMs: 0 }), db);
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
  const actor = opts.issuedBy ?? cliActor();
  let issued;
  try {
    issued = await withService(opts.dbFile, opts, (svc, db) => {
      const appendEvents = createEventAppender(db, () => now);
      // Fail closed: the token row and its `token_issued` event commit in one transaction on
      // tollgate.db (tokens and audit share the file), so a token exists only with its event and
      // an audit store that cannot be written issues nothing. The token is printed after COMMIT.
      // (Issuing first and revoking on failure would leave a valid token behind if the process
      // died in between; writing the event first would record tokens that were never issued.)
      return inImmediateTransactionAsync(db, async () => {
        const t = await svc.issueToken({
          ...who,
          teams,
          ...(projects.length > 0 ? { projects } : {}),
          ...(ttlMs !== undefined ? { ttlMs } : {}),
          issuedBy: actor,
          now,
        });
        try {
          appendEvents([tokenIssuedEvent(t.record, actor, 'cli')]);
        } catch (err) {
          throw auditUnavailable(opts.dbFile, storeFailure(err) ?? (err as Error).message, 'no token was issued', err);
        }
        return t;
      });
    });
  } catch (err) {
    // Tokens live in the audit store's file: any failure to open or write it means no event.
    const why = storeFailure(err);
    throw why === undefined ? err : auditUnavailable(opts.dbFile, why, 'no token was issued', err);
  }
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
  const actor = opts.actor ?? cliActor();
  // The revocation and its `token_revoked` event commit together, like an issue; unlike an issue, it
  // is made even when only its event fails (it only takes access away).
  const revoked = await withService(opts.dbFile, opts, (svc, db) => removeAccessWithEvent(db, opts.dbFile, {
    change: () => svc.revoke(target, now),
    event: (rows) => tokenRevokedEvent(target, rows, actor, 'cli'),
    doneWithoutEvent: (rows) => `revoked ${rows.length} token(s)${rows.length > 0 ? ` (${rows.map((r) => r.id).join(', ')})` : ''} without a token_revoked event`,
    now,
  })).catch((err: unknown) => {
    const why = storeFailure(err);
    throw why === undefined ? err : auditUnavailable(opts.dbFile, why, 'nothing was revoked', err);
  });
  return revoked.map((r) => toListRow(r, now));
}

/** Lists tokens (newest first), optionally of one user or agent. */
export async function tokenList(opts: TokenListOptions): Promise<TokenListRow[]> {
  const who = subjectOf(opts, 'list');
  const now = opts.now ?? Date.now();
  const records = await withService(opts.dbFile, {}, (svc) => svc.list(who ?? {}));
  const rows = records.map((r) => toListRow(r, now));
  return opts.activeOnly === true ? rows.filter((r) => r.status === 'active') : rows;
}
