// Owns: the admin API under /api/v1/ (besides the sign-in routes of auth-routes.ts): audit search,
// summary and export, costs and their trend, budgets, policy and agent status, and the one
// state-changing route, token revocation. Mounted as ONE prefix route, so every path under
// /api/v1/ — known or not, any verb — is authenticated as an admin before anything else happens
// (security case 9.02); the admin server has already canonicalised the path. No route updates or
// deletes audit records (9.05); every admin action (revocation, export) writes an audit event
// naming the actor.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { StoredAuditRequest } from '../audit/audit-record.ts';
import type { AuditEventInput } from '../audit/build-audit-row.ts';
import type { PolicyStatus } from '../config/policy-reloader.ts';
import { NAME_PATTERN } from '../identity/scope.ts';
import { tokenRevokedEvent } from '../identity/token-events.ts';
import type { TokenService } from '../identity/token-service.ts';
import type { BudgetStatus } from '../ledger/budget-status.ts';
import type { Logger } from '../observability/logger.ts';
import { costReportJson } from '../reporting/cost-report-json.ts';
import { costTrend, TREND_DAYS } from '../reporting/cost-trend.ts';
import { dailySeries, dayRange, DAY_MS, groupCosts } from '../reporting/group-costs.ts';
import {
  parseAuditQuery, parseCostsQuery, parseExportQuery, parseNoQuery, parseSummaryQuery, parseTrendQuery, type Parsed,
} from '../reporting/parse-report-query.ts';
import { ReportingQueryError, type ReportingReader } from '../store/reporting-reader.ts';
import type { AdminPrincipal, AuthenticateAdmin } from './admin-auth.ts';
import { sendAdminAuthFailure } from './admin-auth.ts';
import { API_HEADERS, readJsonBody, sendError, sendJson } from './admin-http.ts';
import type { AdminRoute } from './admin-server.ts';
import { canonicalAdminPath } from './canonical-path.ts';

/** What the supervisor's status file holds (src/agents/agent-status.ts); read loosely, it is another process's file. */
export interface AgentStatusSnapshot {
  updatedAt?: unknown;
  supervisorRunning?: unknown;
  agents?: unknown;
}

export interface AdminApiDeps {
  authenticate: AuthenticateAdmin;
  reader: ReportingReader;
  budgets: (now: number) => Promise<BudgetStatus[]>;
  policy: () => PolicyStatus;
  /** The supervisor's status file, or undefined when there is none (no `tollgate agents` running). */
  agents: () => AgentStatusSnapshot | undefined;
  tokens: TokenService;
  /** Appends an event to the audit trail. */
  audit: (e: AuditEventInput) => void;
  logger: Logger;
  now?: () => number;
}

export const API_PREFIX = '/api/v1';

interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  query: URLSearchParams;
  admin: AdminPrincipal;
  now: number;
}

type Handler = (c: Ctx) => Promise<void>;

const TOKEN_ID = /^tok_[0-9a-f]{16}$/;
const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());
const actorOf = (a: AdminPrincipal) => `user:${a.email}`;

function badRequest(res: ServerResponse, p: Extract<Parsed<unknown>, { ok: false }>): void {
  sendError(res, 400, 'bad_request', p.message);
}

export function auditRowJson(r: StoredAuditRequest): Record<string, unknown> {
  return { ...r, time: iso(r.time), ended_at: iso(r.ended_at) };
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}
function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

export function agentsJson(s: AgentStatusSnapshot | undefined): Record<string, unknown> {
  if (s === undefined) return { supervisor: 'absent', updated_at: null, supervisor_running: false, agents: [] };
  const agents = Array.isArray(s.agents) ? s.agents : [];
  return {
    supervisor: s.supervisorRunning === true ? 'running' : 'stopped',
    updated_at: str(s.updatedAt),
    supervisor_running: s.supervisorRunning === true,
    agents: agents.filter((a): a is Record<string, unknown> => typeof a === 'object' && a !== null).map((a) => {
      const exit = typeof a['lastExit'] === 'object' && a['lastExit'] !== null ? (a['lastExit'] as Record<string, unknown>) : undefined;
      const stopped = typeof a['stopped'] === 'object' && a['stopped'] !== null ? (a['stopped'] as Record<string, unknown>) : undefined;
      return {
        key: str(a['key']), name: str(a['name']), team: str(a['team']), project: str(a['project']), state: str(a['state']),
        pid: num(a['pid']), schedule: str(a['schedule']), last_start_at: str(a['lastStartAt']), last_heartbeat_at: str(a['lastHeartbeatAt']),
        last_exit: exit ? { code: num(exit['code']), signal: str(exit['signal']), at: str(exit['at']), duration_ms: num(exit['durationMs']) } : null,
        restarts: num(a['restarts']) ?? 0, consecutive_failures: num(a['consecutiveFailures']) ?? 0, next_run_at: str(a['nextRunAt']),
        stopped: stopped ? { code: str(stopped['code']), reason: str(stopped['reason']), at: str(stopped['at']) } : null,
      };
    }),
  };
}

export function createAdminApi(deps: AdminApiDeps): AdminRoute {
  const clock = deps.now ?? Date.now;

  const routes: Record<string, Partial<Record<'GET' | 'POST', Handler>>> = {
    '/api/v1/audit': {
      async GET({ res, query, now }) {
        const p = parseAuditQuery(query, now);
        if (!p.ok) return badRequest(res, p);
        const page = await deps.reader.searchAudit({ ...p.value, limit: p.value.limit ?? 100 });
        sendJson(res, 200, { rows: page.rows.map(auditRowJson), next_cursor: page.nextCursor ?? null });
      },
    },
    '/api/v1/audit/summary': {
      async GET({ res, query, now }) {
        const p = parseSummaryQuery(query, now);
        if (!p.ok) return badRequest(res, p);
        const s = await deps.reader.summary(p.value);
        sendJson(res, 200, {
          since: iso(p.value.since), until: iso(p.value.until ?? now), requests: s.requests,
          active_users: s.users.map((u) => ({ user: u.subject, team: u.team, requests: u.requests, denied: u.denied, last: iso(u.last) })),
          active_agents: s.agents.map((a) => ({ agent: a.agent, team: a.team, requests: a.requests, denied: a.denied, last: iso(a.last) })),
          actions: s.actions,
          denials: s.denials,
          errors: { total: s.errors.total, errors: s.errors.errors, rate: s.errors.rate, by_host: s.errors.byHost },
        });
      },
    },
    '/api/v1/audit/export': {
      async GET({ req, res, query, now, admin }) {
        const p = parseExportQuery(query, now);
        if (!p.ok) return badRequest(res, p);
        const q = p.value;
        const stamp = new Date(now).toISOString().slice(0, 19).replace(/[-:]/g, '');
        res.writeHead(200, {
          ...API_HEADERS,
          'Content-Type': q.format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8',
          'Content-Disposition': `attachment; filename="tollgate-audit-${q.records}-${stamp}.${q.format}"`,
        });
        const abort = new AbortController();
        const onClose = () => { if (!res.writableFinished) abort.abort(); };
        res.on('close', onClose);
        const write = (text: string) => new Promise<void>((resolve, reject) => {
          if (res.destroyed) { reject(new Error('client gone')); return; }
          if (res.write(text)) resolve();
          else {
            const done = () => { res.off('drain', done); res.off('close', done); if (res.destroyed) reject(new Error('client gone')); else resolve(); };
            res.once('drain', done);
            res.once('close', done);
          }
        });
        let count = 0;
        try {
          count = await deps.reader.exportRecords(q, write, abort.signal);
          res.end();
        } catch (err) {
          deps.logger.warn('audit export stopped', { error: String(err), actor: admin.email });
          res.destroy();
          return;
        } finally {
          res.off('close', onClose);
        }
        deps.audit({
          type: 'audit_exported', actor: actorOf(admin),
          detail: { records: q.records, format: q.format, since: iso(q.since), until: iso(q.until), count, via: admin.via, source: req.socket.remoteAddress ?? null },
        });
      },
    },
    '/api/v1/costs': {
      async GET({ res, query, now }) {
        const p = parseCostsQuery(query, now);
        if (!p.ok) return badRequest(res, p);
        const cells = await deps.reader.costCells(p.value);
        const report = groupCosts(cells, p.value.by);
        sendJson(res, 200, costReportJson(report, p.value));
      },
    },
    '/api/v1/costs/trend': {
      async GET({ res, query, now }) {
        const p = parseTrendQuery(query);
        if (!p.ok) return badRequest(res, p);
        const { by, days } = p.value;
        const span = Math.max(days, TREND_DAYS);
        const allDays = dayRange(now, span);
        const since = Math.floor(now / DAY_MS - span + 1) * DAY_MS;
        const cells = await deps.reader.costCells({ since, until: (Math.floor(now / DAY_MS) + 1) * DAY_MS });
        const shown = allDays.slice(-days);
        const series = dailySeries(cells, by, allDays).map((s) => {
          const t = costTrend(s.daily.slice(-TREND_DAYS));
          const dailyShown = s.daily.slice(-days);
          return {
            key: s.key, daily_micros: dailyShown, total_micros: dailyShown.reduce((a, b) => a + b, 0),
            trend: {
              label: t.label, last7_micros: t.last7Micros, prev7_micros: t.prev7Micros, change_ratio: t.changeRatio,
              today_micros: t.todayMicros, yesterday_micros: t.yesterdayMicros, median7_micros: t.median7Micros, spike_on: t.spikeOn,
            },
          };
        });
        sendJson(res, 200, { by, as_of: iso(now), currency: 'USD', days: shown, series });
      },
    },
    '/api/v1/budgets': {
      async GET({ res, query, now }) {
        const p = parseNoQuery(query);
        if (!p.ok) return badRequest(res, p);
        const rows = await deps.budgets(now);
        sendJson(res, 200, {
          as_of: iso(now), currency: 'USD',
          budgets: rows.map((b) => ({
            scope: b.scope, window: b.window, window_key: b.windowKey, limit_micros: b.limitMicros, spent_micros: b.spentMicros,
            reserved_micros: b.reservedMicros, remaining_micros: b.remainingMicros,
            used_ratio: b.limitMicros > 0 ? (b.spentMicros + b.reservedMicros) / b.limitMicros : null,
            resets_at: b.resetsAt, exhausted: b.exhausted,
          })),
        });
      },
    },
    '/api/v1/policy': {
      async GET({ res, query }) {
        const p = parseNoQuery(query);
        if (!p.ok) return badRequest(res, p);
        const s = deps.policy();
        sendJson(res, 200, {
          ok: s.ok, generation: s.generation, loaded_at: s.loadedAt, warnings: s.warnings,
          last_rejected: s.lastErrorAt === undefined && s.lastError === undefined ? null : { at: s.lastErrorAt ?? null, error: s.lastError ?? null },
        });
      },
    },
    '/api/v1/agents': {
      async GET({ res, query }) {
        const p = parseNoQuery(query);
        if (!p.ok) return badRequest(res, p);
        sendJson(res, 200, agentsJson(deps.agents()));
      },
    },
    '/api/v1/tokens/revoke': {
      async POST({ req, res, query, now, admin }) {
        const p = parseNoQuery(query);
        if (!p.ok) return badRequest(res, p);
        const body = await readJsonBody(req);
        if (!body.ok) return sendError(res, body.status, body.code, body.message, body.status === 413 ? { Connection: 'close' } : {});
        const b = body.value;
        const usage = 'Send exactly one of { "id": "tok_…" }, { "user": "<e-mail>" } or { "agent": "<name>" }.';
        if (typeof b !== 'object' || b === null || Array.isArray(b)) return sendError(res, 400, 'bad_request', usage);
        const entries = Object.entries(b as Record<string, unknown>);
        const [only] = entries;
        if (entries.length !== 1 || only === undefined || typeof only[1] !== 'string' || only[1].length === 0 || only[1].length > 320) {
          return sendError(res, 400, 'bad_request', usage);
        }
        const [field, value] = only as [string, string];
        const target = field === 'id' && TOKEN_ID.test(value) ? { id: value }
          : field === 'user' && value.includes('@') && !/\s/.test(value) ? { kind: 'user' as const, subject: value }
          : field === 'agent' && NAME_PATTERN.test(value) ? { kind: 'agent' as const, subject: value }
          : undefined;
        if (target === undefined) return sendError(res, 400, 'bad_request', `${usage} Token ids look like tok_ and 16 hex digits; agent names are lower case letters, digits and hyphens.`);
        const revoked = await deps.tokens.revoke(target, now);
        deps.audit(tokenRevokedEvent(target, revoked, actorOf(admin), { by: 'admin_api', via: admin.via }));
        deps.logger.info('admin token revocation', { actor: admin.email, target: { [field]: value }, revoked: revoked.length });
        sendJson(res, 200, { revoked: revoked.map((r) => ({ id: r.id, kind: r.kind, subject: r.subject })) });
      },
    },
  };

  return {
    method: '*',
    path: `${API_PREFIX}/*`,
    async handle(req, res) {
      const decision = await deps.authenticate(req);
      if (!decision.ok) {
        sendAdminAuthFailure(res, decision);
        return;
      }
      const canon = canonicalAdminPath(req.url ?? '/');
      const path = canon.ok ? canon.path : '';
      const entry = routes[path];
      if (entry === undefined) {
        sendError(res, 404, 'not_found', `No admin API route ${path}.`);
        return;
      }
      const method = req.method ?? 'GET';
      const handler = method === 'GET' || method === 'POST' ? entry[method] : undefined;
      if (handler === undefined) {
        const allow = Object.keys(entry).join(', ');
        sendError(res, 405, 'method_not_allowed', `${path} answers ${allow} only.`, { Allow: allow });
        return;
      }
      const query = new URL(req.url ?? '/', 'http://admin.invalid').searchParams;
      try {
        await handler({ req, res, query, admin: decision.principal, now: clock() });
      } catch (err) {
        if (res.headersSent) {
          res.destroy();
          return;
        }
        if (err instanceof ReportingQueryError) {
          sendError(res, 400, 'bad_request', err.message);
          return;
        }
        deps.logger.error('admin API request failed', { path, error: String(err) });
        sendError(res, 503, 'store_unavailable', 'The audit store could not answer; see the gateway log.');
      }
    },
  };
}
