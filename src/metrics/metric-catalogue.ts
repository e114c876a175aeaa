// Owns: the ONE catalogue of Tollgate's Prometheus metrics, on its own prom-client Registry (never
// the global one). Counters the data plane moves are recorded from the composition root
// (record-exchange.ts); gauges of live state read their sources (proxy, leaf minter, audit sink,
// policy reloader, budgets) at scrape time through `observe()`. Every label value comes from a
// closed set: see label-sets.ts and docs/metrics.md.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { REASONS, type ReasonCode } from '../errors.ts';

/** Read at scrape time. Each is optional: a missing source leaves its metrics without samples. */
export interface MetricSources {
  proxy: () => { connections: number; tunnels: number; activeExchanges: number };
  upstreamPools: () => number;
  leafCerts: () => { minted: number; cached: number; hits: number; misses: number };
  audit: () => { ok: boolean; queued: number; dropped: number; failedDecisions: number; failOpen: number; committed: number };
  policy: () => { ok: boolean; generation: number };
  /** Budget lines with a limit (org, team and agent scopes; `user:` scopes are skipped). */
  budgets: () => Promise<readonly BudgetLineUse[]> | readonly BudgetLineUse[];
}

export interface BudgetLineUse {
  /** "org", "team:<key>", "agent:<key>" (as src/ledger/budget-status.ts); "user:…" is ignored. */
  scope: string;
  window: string;
  limitMicros: number;
  spentMicros: number;
  reservedMicros: number;
}

export const EXCHANGE_KINDS = ['request', 'tunnel', 'upgrade'] as const;
/** The policy effect, or `none` when the exchange ended before a decision (auth, malformed). */
export const DECISIONS = ['allow', 'direct', 'deny', 'none'] as const;
export const TOKEN_KINDS = ['input', 'output', 'cache_read', 'cache_write'] as const;
/** Reason codes that mean the upstream failed (not the client, not policy). */
export const UPSTREAM_REASONS: readonly ReasonCode[] = (Object.keys(REASONS) as ReasonCode[]).filter((r) => r === 'dns_error' || r.startsWith('upstream_'));

/** Seconds. From a fast plain request (ms) to a long LLM stream or tunnel (minutes). */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900];

export interface MetricCatalogue {
  readonly registry: Registry;
  readonly requests: Counter<'kind' | 'decision' | 'team'>;
  readonly requestDuration: Histogram<'kind' | 'decision'>;
  readonly refusals: Counter<'reason'>;
  readonly upstreamErrors: Counter<'reason'>;
  readonly bytesIn: Counter<'kind'>;
  readonly bytesOut: Counter<'kind'>;
  readonly llmRequests: Counter<'provider' | 'model'>;
  readonly llmEstimated: Counter<'provider'>;
  readonly llmTokens: Counter<'provider' | 'model' | 'kind'>;
  readonly llmSpend: Counter<'provider' | 'model'>;
  readonly policyReloads: Counter<'result'>;
  /** Plugs in live sources (later calls replace the sources they name). */
  observe(sources: Partial<MetricSources>): void;
  /** Counts one policy reload attempt (the reloader's `onReload`). */
  notePolicyReload(ok: boolean): void;
}

export interface MetricCatalogueOptions {
  /** Defaults to a new Registry. Never pass prom-client's global `register`. */
  registry?: Registry;
  /** Node process metrics (`tollgate_process_*`, `tollgate_nodejs_*`); default true. */
  defaultMetrics?: boolean;
}

const PREFIX = 'tollgate_';

export function createMetricCatalogue(opts: MetricCatalogueOptions = {}): MetricCatalogue {
  const registry = opts.registry ?? new Registry();
  const registers = [registry];
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: PREFIX });
  const sources: Partial<MetricSources> = {};

  /** A counter mirroring a monotonic count kept elsewhere: each scrape adds what it grew by. */
  const mirrored = (name: string, help: string, read: () => number | undefined) => {
    let last = 0;
    return new Counter({
      name, help, registers,
      collect() {
        const v = read();
        if (v === undefined) return;
        if (v > last) this.inc(v - last);
        last = v;
      },
    });
  };

  // ---- exchanges (record-exchange.ts) ----
  const requests = new Counter({ name: `${PREFIX}requests_total`, help: 'Exchanges ended, by kind (request, tunnel, upgrade), policy decision (allow, direct, deny, none) and team (org.yaml key, none, other).', labelNames: ['kind', 'decision', 'team'] as const, registers });
  const requestDuration = new Histogram({ name: `${PREFIX}request_duration_seconds`, help: 'Time from accepting an exchange to its end (for tunnels: the tunnel lifetime), by kind and decision.', labelNames: ['kind', 'decision'] as const, buckets: DURATION_BUCKETS, registers });
  const refusals = new Counter({ name: `${PREFIX}request_refusals_total`, help: 'Exchanges the gateway answered itself with a refusal, by reason code (src/errors.ts REASONS).', labelNames: ['reason'] as const, registers });
  const upstreamErrors = new Counter({ name: `${PREFIX}upstream_errors_total`, help: 'Exchanges that failed at the upstream (DNS, connect, TLS, timeout, protocol), by reason code.', labelNames: ['reason'] as const, registers });
  const bytesIn = new Counter({ name: `${PREFIX}bytes_in_total`, help: 'Bytes received from clients (request bodies; for tunnels every byte), by kind.', labelNames: ['kind'] as const, registers });
  const bytesOut = new Counter({ name: `${PREFIX}bytes_out_total`, help: 'Bytes sent to clients from upstreams (response bodies; for tunnels every byte), by kind.', labelNames: ['kind'] as const, registers });
  const llmRequests = new Counter({ name: `${PREFIX}llm_requests_total`, help: 'Metered LLM calls settled, by provider and model (prices.yaml id, else other).', labelNames: ['provider', 'model'] as const, registers });
  const llmEstimated = new Counter({ name: `${PREFIX}llm_estimated_charges_total`, help: 'Metered LLM calls charged an estimate (no usage reported, stream cut, fallback price), by provider.', labelNames: ['provider'] as const, registers });
  const llmTokens = new Counter({ name: `${PREFIX}llm_tokens_total`, help: 'LLM tokens, by provider, model and kind (input, output, cache_read, cache_write).', labelNames: ['provider', 'model', 'kind'] as const, registers });
  const llmSpend = new Counter({ name: `${PREFIX}llm_spend_usd_total`, help: 'LLM spend in US dollars (the ledger charge), by provider and model.', labelNames: ['provider', 'model'] as const, registers });

  // ---- policy ----
  const policyReloads = new Counter({ name: `${PREFIX}policy_reloads_total`, help: 'Policy reload attempts, by result (applied, rejected: the last good policy stays in force).', labelNames: ['result'] as const, registers });
  new Gauge({ name: `${PREFIX}policy_reload_ok`, help: '1 when the last policy reload attempt was applied, 0 when it was rejected.', registers, collect() { const s = sources.policy?.(); if (s) this.set(s.ok ? 1 : 0); } });
  new Gauge({ name: `${PREFIX}policy_generation`, help: 'Generation of the policy in force (1 at start, +1 per applied reload).', registers, collect() { const s = sources.policy?.(); if (s) this.set(s.generation); } });

  // ---- audit ----
  new Gauge({ name: `${PREFIX}audit_store_up`, help: '1 while the audit store can write, 0 when its last attempt failed or the writer is down.', registers, collect() { const s = sources.audit?.(); if (s) this.set(s.ok ? 1 : 0); } });
  new Gauge({ name: `${PREFIX}audit_queue_depth`, help: 'Audit records handed to the writer and not yet committed (retries included).', registers, collect() { const s = sources.audit?.(); if (s) this.set(s.queued); } });
  mirrored(`${PREFIX}audit_dropped_rows_total`, 'Audit completions and events given up (retry queue full, or rejected by the store).', () => sources.audit?.().dropped);
  mirrored(`${PREFIX}audit_failed_decisions_total`, 'Decision rows that could not be committed (each refused a request with 503, or failed it open).', () => sources.audit?.().failedDecisions);
  mirrored(`${PREFIX}audit_fail_open_total`, 'Requests forwarded without a committed decision row (audit.fail_open_non_metered).', () => sources.audit?.().failOpen);
  mirrored(`${PREFIX}audit_committed_rows_total`, 'Audit records committed.', () => sources.audit?.().committed);

  // ---- budgets ----
  let budgetRead: Promise<void> | undefined;
  let budgetErrors = 0;
  new Gauge({
    name: `${PREFIX}budget_utilisation_ratio`,
    help: '(spent + reserved) / limit of each budget line in its current window, by scope (org, team, agent), name (org.yaml key; "org" for the org) and window (month, day).',
    labelNames: ['scope', 'name', 'window'] as const,
    registers,
    collect() {
      const read = sources.budgets;
      if (!read) return;
      budgetRead = (async () => {
        let lines: readonly BudgetLineUse[];
        try {
          lines = await read();
        } catch {
          // A locked or failing spend store must not fail the whole scrape: the lines go absent
          // and the error is counted.
          this.reset();
          budgetErrors++;
          return;
        }
        this.reset(); // scopes removed from org.yaml disappear
        for (const l of lines) {
          const colon = l.scope.indexOf(':');
          const scope = colon < 0 ? l.scope : l.scope.slice(0, colon);
          if (scope !== 'org' && scope !== 'team' && scope !== 'agent') continue;
          if (l.limitMicros <= 0) continue;
          this.set({ scope, name: colon < 0 ? 'org' : l.scope.slice(colon + 1), window: l.window }, (l.spentMicros + l.reservedMicros) / l.limitMicros);
        }
      })();
      return budgetRead;
    },
  });
  // Registered after the gauge so that its collect can wait for the same scrape's budget read.
  let budgetErrorsSeen = 0;
  new Counter({
    name: `${PREFIX}metrics_source_errors_total`, help: 'Scrapes in which a live source could not be read (its metrics are absent from that scrape), by source.', labelNames: ['source'] as const, registers,
    async collect() {
      await budgetRead;
      if (budgetErrors > budgetErrorsSeen) this.inc({ source: 'budgets' }, budgetErrors - budgetErrorsSeen);
      budgetErrorsSeen = budgetErrors;
      this.inc({ source: 'budgets' }, 0);
    },
  });

  // ---- TLS interception ----
  new Gauge({ name: `${PREFIX}tls_leaf_cache_entries`, help: 'Leaf certificates (TLS contexts) held in the per-host cache.', registers, collect() { const s = sources.leafCerts?.(); if (s) this.set(s.cached); } });
  mirrored(`${PREFIX}tls_leaves_minted_total`, 'Leaf certificates minted for intercepted hosts.', () => sources.leafCerts?.().minted);
  const lookups = { hit: 0, miss: 0 };
  new Counter({
    name: `${PREFIX}tls_leaf_cache_lookups_total`, help: 'Leaf certificate cache lookups, by result (hit, miss).', labelNames: ['result'] as const, registers,
    collect() {
      const s = sources.leafCerts?.();
      if (!s) return;
      if (s.hits > lookups.hit) this.inc({ result: 'hit' }, s.hits - lookups.hit);
      if (s.misses > lookups.miss) this.inc({ result: 'miss' }, s.misses - lookups.miss);
      lookups.hit = s.hits;
      lookups.miss = s.misses;
    },
  });

  // ---- connections ----
  new Gauge({ name: `${PREFIX}proxy_open_connections`, help: 'Client connections open on the proxy listener.', registers, collect() { const s = sources.proxy?.(); if (s) this.set(s.connections); } });
  new Gauge({ name: `${PREFIX}proxy_open_tunnels`, help: 'CONNECT tunnels open (intercepted or direct).', registers, collect() { const s = sources.proxy?.(); if (s) this.set(s.tunnels); } });
  new Gauge({ name: `${PREFIX}proxy_active_exchanges`, help: 'Exchanges in flight.', registers, collect() { const s = sources.proxy?.(); if (s) this.set(s.activeExchanges); } });
  new Gauge({ name: `${PREFIX}upstream_pools`, help: 'Upstream connection pools (one per vetted address and port).', registers, collect() { const n = sources.upstreamPools?.(); if (n !== undefined) this.set(n); } });

  // Known series start at 0 so rate() and increase() see the first event.
  for (const result of ['applied', 'rejected']) policyReloads.inc({ result }, 0);
  for (const reason of UPSTREAM_REASONS) upstreamErrors.inc({ reason }, 0);
  for (const reason of Object.keys(REASONS)) refusals.inc({ reason }, 0);

  return {
    registry, requests, requestDuration, refusals, upstreamErrors, bytesIn, bytesOut, llmRequests, llmEstimated, llmTokens, llmSpend, policyReloads,
    observe(s) { Object.assign(sources, s); },
    notePolicyReload(ok) { policyReloads.inc({ result: ok ? 'applied' : 'rejected' }); },
  };
}
