// The metering stage when its reservation cannot be confirmed: the request is refused (503
// budget_unavailable) and a release is queued behind the reservation, so a store that commits the
// reservation after its caller gave up (a writer answering late) does not leave it held on every
// budget line. A refusal for budget (the ledger answered) queues nothing.
import t from 'tap';
import { loadPriceTable } from '../../../src/config/price-config.ts';
import { RequestRefusal } from '../../../src/errors.ts';
import { createMemoryLedger, type Ledger } from '../../../src/ledger/ledger.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import type { CompiledPolicySet, OrgConfig } from '../../../src/policy/types.ts';
import { newOutcome, type Exchange } from '../../../src/proxy/exchange.ts';
import { meterLlmStage } from '../../../src/stages/meter-llm.ts';

const NOW = Date.parse('2026-11-26T12:00:00Z');
const b = (monthlyUsd?: number, dailyUsd?: number) => ({ monthlyUsd, dailyUsd });
const ORG: OrgConfig = {
  file: 'org.yaml', organization: 'Acme', budget: b(2000), adminGroups: [], declaredSecrets: undefined, projects: new Map(),
  teams: new Map([['sre', { key: 'sre', name: 'SRE', idpGroups: [], grants: new Map(), policyFile: 'p', budget: b(500), userBudget: b() }]]),
  agents: new Map(), users: new Map(),
};

function exchange(id: string): Exchange {
  const body = Buffer.from(JSON.stringify({ model: 'claude-haiku-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] }));
  return {
    id, startedAt: NOW, kind: 'request', via: 'intercepted', tunnel: undefined, clientAddress: '127.0.0.1',
    method: 'POST', scheme: 'https', host: 'api.anthropic.com', hostKind: 'dns', port: 443, path: '/v1/messages', query: '',
    proxyAuthorization: [], headers: [['content-type', 'application/json']],
    principal: { kind: 'agent', id: 'tok1', subject: 'bot', team: 'sre', agent: 'bot' },
    decision: undefined, target: undefined, outcome: newOutcome(),
    body: { present: true, buffered: undefined, buffer: async () => body } as unknown as Exchange['body'],
    usage: undefined, drainOnClientAbort: undefined, settlements: [], admissionChecks: [], onClientEnd: [], responseObservers: [], notes: {},
  };
}

function stage(ledger: Ledger) {
  return meterLlmStage({
    ledger, prices: loadPriceTable('prices.yaml').table, current: () => ({ org: ORG }) as unknown as CompiledPolicySet,
    config: { unknownModel: 'refuse', fallbackPrice: undefined, openaiCompatible: [], drainMs: 1000, drainBytes: 1 << 20, providerSideInputTokens: 200_000, unmeteredEndpoints: 'refuse', maxRequestBytes: 1 << 20, thresholds: [] },
    logger: createLogger({ level: 'error', write: () => undefined }), now: () => NOW,
  });
}

t.test('a reservation that times out is refused and released behind itself, even when it commits late', async (t) => {
  const inner = createMemoryLedger();
  const released: string[] = [];
  let commitLate!: () => void;
  const ledger: Ledger = {
    ...inner,
    // the store commits the reservation, but only after its caller timed out
    reserve: (r) => new Promise((_resolve, reject) => {
      commitLate = () => { void inner.reserve(r); };
      reject(Object.assign(new Error('the audit writer did not answer within 15000 ms'), { code: 'AUDIT_TIMEOUT' }));
    }),
    release: async (id, at) => {
      released.push(id);
      commitLate(); // the late reservation is ahead of the release in the writer's queue
      await new Promise((r) => setImmediate(r));
      return inner.release(id, at);
    },
  };
  const ex = exchange('req-late');
  await stage(ledger)(ex);
  const refusal = await Promise.all(ex.admissionChecks).then(() => undefined, (e: unknown) => e);
  t.ok(refusal instanceof RequestRefusal && refusal.reason === 'budget_unavailable', 'refused: the store could not confirm the reservation');
  await new Promise((r) => setTimeout(r, 20));
  t.same(released, ['req-late'], 'a release was queued behind the reservation');
  t.equal(inner.entries.get('req-late')?.state, 'released', 'nothing stays held');
});

t.test('a budget refusal (the ledger answered) queues no release', async (t) => {
  const inner = createMemoryLedger();
  const released: string[] = [];
  const ledger: Ledger = {
    ...inner,
    reserve: async () => ({ ok: false, reason: 'limit', line: { scope: 'team:sre', scopeKind: 'team', label: 'team sre', window: { kind: 'month', key: 'month:2026-11', resetsAt: '2026-12-01T00:00:00.000Z' }, limitMicros: 1 }, state: { spentMicros: 1, reservedMicros: 0 } }) as unknown as Awaited<ReturnType<Ledger['reserve']>>,
    release: async (id) => { released.push(id); return false; },
  };
  const ex = exchange('req-refused');
  await stage(ledger)(ex);
  const refusal = await Promise.all(ex.admissionChecks).then(() => undefined, (e: unknown) => e);
  t.ok(refusal instanceof RequestRefusal && refusal.reason === 'budget_exceeded');
  await new Promise((r) => setTimeout(r, 20));
  t.same(released, []);
});
