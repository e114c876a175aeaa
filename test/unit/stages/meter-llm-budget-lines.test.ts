// The metering stage builds a principal's budget lines once per UTC day and org.yaml: what it
// reserves on must still follow a reload of org.yaml, the turn of the day, and the principal.
import t from 'tap';
import { loadPriceTable } from '../../../src/config/price-config.ts';
import { createMemoryLedger, type Ledger, type ReservationRequest } from '../../../src/ledger/ledger.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import type { CompiledPolicySet, OrgConfig } from '../../../src/policy/types.ts';
import type { Principal } from '../../../src/identity/resolve-principal.ts';
import { newOutcome, type Exchange } from '../../../src/proxy/exchange.ts';
import { meterLlmStage } from '../../../src/stages/meter-llm.ts';

const b = (monthlyUsd?: number, dailyUsd?: number) => ({ monthlyUsd, dailyUsd });
const org = (sreMonthly: number): OrgConfig => ({
  file: 'org.yaml', organization: 'Acme', budget: b(2000), adminGroups: [], declaredSecrets: undefined, projects: new Map(),
  teams: new Map([['sre', { key: 'sre', name: 'SRE', idpGroups: [], grants: new Map(), policyFile: 'p', budget: b(sreMonthly), userBudget: b(undefined, 5) }]]),
  agents: new Map(), users: new Map(),
});
const bot: Principal = { kind: 'agent', id: 'tok1', subject: 'bot', team: 'sre', agent: 'bot' };
const ann: Principal = { kind: 'user', id: 'tok2', subject: 'Ann@Acme.example', team: 'sre' };

function exchange(id: string, principal: Principal): Exchange {
  const body = Buffer.from(JSON.stringify({ model: 'claude-haiku-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] }));
  return {
    id, startedAt: 0, kind: 'request', via: 'intercepted', tunnel: undefined, clientAddress: '127.0.0.1',
    method: 'POST', scheme: 'https', host: 'api.anthropic.com', hostKind: 'dns', port: 443, path: '/v1/messages', query: '',
    proxyAuthorization: [], headers: [['content-type', 'application/json']], principal,
    decision: undefined, target: undefined, outcome: newOutcome(),
    body: { present: true, buffered: undefined, buffer: async () => body } as unknown as Exchange['body'],
    usage: undefined, drainOnClientAbort: undefined, settlements: [], admissionChecks: [], onClientEnd: [], responseObservers: [], notes: {},
  };
}

t.test('lines follow org.yaml reloads, the day and the principal', async (t) => {
  const inner = createMemoryLedger();
  const seen: ReservationRequest[] = [];
  const ledger: Ledger = { ...inner, reserve: (r) => { seen.push(r); return inner.reserve(r); } };
  let now = Date.parse('2026-11-26T23:59:59Z');
  let current = org(500);
  const stage = meterLlmStage({
    ledger, prices: loadPriceTable('prices.yaml').table, current: () => ({ org: current }) as unknown as CompiledPolicySet,
    config: { unknownModel: 'refuse', fallbackPrice: undefined, openaiCompatible: [], drainMs: 1000, drainBytes: 1 << 20, providerSideInputTokens: 200_000, unmeteredEndpoints: 'refuse', maxRequestBytes: 1 << 20, thresholds: [] },
    logger: createLogger({ level: 'error', write: () => undefined }), now: () => now,
  });
  const reserve = async (id: string, p: Principal) => {
    const ex = exchange(id, p);
    await stage(ex);
    await Promise.all(ex.admissionChecks);
    return seen[seen.length - 1] as ReservationRequest;
  };
  const limit = (r: ReservationRequest, scope: string, kind: 'month' | 'day') => r.lines.find((l) => l.scope === scope && l.window.kind === kind)?.limitMicros;

  const r1 = await reserve('r1', bot);
  const r2 = await reserve('r2', bot);
  t.equal(limit(r1, 'team:sre', 'month'), 500_000_000);
  t.equal(r2.lines, r1.lines, 'the same principal, day and org.yaml: the lines are built once');
  t.ok(Object.isFrozen(r1.lines) && r1.lines.every((l) => Object.isFrozen(l)), 'shared lines cannot be changed by a caller');

  current = org(200); // org.yaml reloaded with a lower SRE budget
  const r3 = await reserve('r3', bot);
  t.equal(limit(r3, 'team:sre', 'month'), 200_000_000, 'a reload applies to the next request');

  const u1 = await reserve('u1', ann);
  t.same(u1.lines.map((l) => l.scope), ['org', 'org', 'team:sre', 'team:sre', 'user:ann@acme.example', 'user:ann@acme.example'], 'another principal, its own lines');
  t.equal(limit(u1, 'user:ann@acme.example', 'day'), 5_000_000, "the team's user_budget");

  now += 2000; // past midnight UTC
  const r4 = await reserve('r4', bot);
  t.same(r4.lines.filter((l) => l.window.kind === 'day').map((l) => l.window.key), ['day:2026-11-27', 'day:2026-11-27', 'day:2026-11-27'], 'the new day has its own windows');
  t.same(r3.lines.filter((l) => l.window.kind === 'day').map((l) => l.window.key), ['day:2026-11-26', 'day:2026-11-26', 'day:2026-11-26']);
});
