// Owns: reading one request back from the audit trail by its request id, for `tollgate setup
// --check` — from the gateway's own store when this machine runs it (--config names its
// tollgate.yaml), else through the admin API with the signed-in user's token (admins only). Polls
// briefly: the audit writer commits in groups, off the proxy's event loop.
import { existsSync } from 'node:fs';
import { auditSearch } from '../audit/audit-commands.ts';
import { databasePath, loadGatewayConfig } from '../config/gateway-config.ts';

export interface AuditedRow {
  request_id: string;
  decision: string;
  principal_kind: string | null;
  subject: string | null;
  team: string | null;
  project: string | null;
  host: string;
  reason: string | null;
}

export type AuditLookup =
  | { found: true; row: AuditedRow; source: string }
  /** A source was read and the row is not (yet) in it. */
  | { found: false; readable: true; source: string }
  /** No source could be read; `why` says what was tried. */
  | { found: false; readable: false; why: string };

export interface AuditLookupOptions {
  requestId: string;
  host: string;
  /** The gateway's tollgate.yaml, when it is on this machine. */
  configFile?: string | undefined;
  /** The admin listener (the login's gateway URL) and the token to ask it with. */
  adminUrl?: string | undefined;
  token?: string | undefined;
  waitMs?: number;
  env?: NodeJS.ProcessEnv;
}

type Source = { name: string; find: () => Promise<AuditedRow | undefined> };

function localSource(configFile: string | undefined, env: NodeJS.ProcessEnv, host: string, requestId: string, since: number): Source | string {
  const file = configFile ?? env['TOLLGATE_CONFIG'] ?? 'tollgate.yaml';
  if (!existsSync(file)) return `no gateway configuration at ${file}`;
  let db: string;
  try {
    db = databasePath(loadGatewayConfig(file, env));
  } catch (err) {
    return `${file}: ${(err as Error).message}`;
  }
  if (!existsSync(db)) return `no audit store at ${db}`;
  return {
    name: db,
    find: async () => auditSearch(db, { host, since, limit: 200 }).rows.find((r) => r.request_id === requestId) as AuditedRow | undefined,
  };
}

async function adminSource(adminUrl: string, token: string, host: string, requestId: string, since: number): Promise<Source | string> {
  let url: URL;
  try {
    url = new URL('/api/v1/audit', adminUrl);
  } catch {
    return `the login's gateway address ${JSON.stringify(adminUrl)} is not a URL`;
  }
  url.search = new URLSearchParams({ host, since: String(since), limit: '200' }).toString();
  // A redirect is refused, not followed: the token goes to the login's gateway and nowhere else.
  const get = async () => fetch(url, { headers: { authorization: `Bearer ${token}`, accept: 'application/json' }, redirect: 'error', signal: AbortSignal.timeout(5000) });
  let res: Response;
  try {
    res = await get();
  } catch (err) {
    const cause = (err as Error & { cause?: unknown }).cause;
    const why = cause instanceof Error ? cause.message : (err as Error).message;
    return `the admin API at ${url.origin} cannot be reached (${why === 'unexpected redirect' ? 'it answered with a redirect, which is not followed with your token' : why})`;
  }
  if (res.status === 401 || res.status === 403) {
    await res.body?.cancel();
    return `the admin API at ${url.origin} answered ${res.status}: reading the audit trail needs an admin`;
  }
  const rowsOf = async (r: Response) => {
    if (!r.ok) throw new Error(`the admin API answered ${r.status}`);
    const body = (await r.json()) as { rows?: AuditedRow[] };
    return (body.rows ?? []).find((row) => row.request_id === requestId);
  };
  let first: Response | undefined = res;
  return {
    name: `${url.origin}/api/v1/audit`,
    find: async () => {
      const r = first ?? (await get());
      first = undefined;
      return rowsOf(r);
    },
  };
}

export async function findAuditRow(opts: AuditLookupOptions): Promise<AuditLookup> {
  const env = opts.env ?? process.env;
  const since = Date.now() - 10 * 60_000;
  const tried: string[] = [];
  const sources: Source[] = [];
  const local = localSource(opts.configFile, env, opts.host, opts.requestId, since);
  if (typeof local === 'string') tried.push(local);
  else sources.push(local);
  if (opts.adminUrl && opts.token) {
    const admin = await adminSource(opts.adminUrl, opts.token, opts.host, opts.requestId, since);
    if (typeof admin === 'string') tried.push(admin);
    else sources.push(admin);
  } else {
    tried.push('no admin API address in the login');
  }
  if (sources.length === 0) return { found: false, readable: false, why: tried.join('; ') };
  const deadline = Date.now() + (opts.waitMs ?? 3000);
  for (;;) {
    for (const s of sources) {
      try {
        const row = await s.find();
        if (row) return { found: true, row, source: s.name };
      } catch (err) {
        tried.push(`${s.name}: ${(err as Error).message}`);
      }
    }
    if (Date.now() >= deadline) return { found: false, readable: true, source: sources.map((s) => s.name).join(' and ') };
    await new Promise((r) => setTimeout(r, 150));
  }
}
