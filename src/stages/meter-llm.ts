// Owns: the metering and budget stage. For a request to a model endpoint (src/metering/endpoints.ts)
// it reads the body, prices the model (refusing an unknown one), reserves the worst case on every
// budget line in one transaction (402 in the provider's shape when a limit would be passed, 503 when
// the store fails), then watches the response as it streams — decompressing gzip/deflate/br on the
// side, never holding the response back — and settles the reservation to the actual usage when the
// response ends, also after a client disconnect (bounded drain). A billable endpoint it cannot
// meter (batch jobs, fine-tuning, images, …) is refused unless metering.unmetered_endpoints says
// allow. Other requests pass untouched.
import zlib from 'node:zlib';
import type { Transform } from 'node:stream';
import { loadPriceTable, tokenPrice } from '../config/price-config.ts';
import type { GatewayConfig, MeteringConfig } from '../config/gateway-config.ts';
import { RequestRefusal } from '../errors.ts';
import type { Ledger, LineChange } from '../ledger/ledger.ts';
import { budgetLinesFor, budgetWindow, crossedThresholds, limitFor, refusalMessage, type BudgetLine, type ChargePrincipal, type ThresholdEvent } from '../metering/budget.ts';
import { detectEndpoint, type MeteredEndpoint } from '../metering/endpoints.ts';
import { unmeteredSpendEndpoint } from '../metering/unmetered-spend.ts';
import { parseLlmRequest, type LlmRequest } from '../metering/llm-request.ts';
import { formatUsd, resolveModelPrice, worstCaseMicros, type ModelPrice, type PriceTable } from '../metering/prices.ts';
import { settleCharge } from '../metering/settlement.ts';
import { createUsageParser, type UsageParser } from '../metering/usage-parser.ts';
import type { Logger } from '../observability/logger.ts';
import type { CompiledPolicySet, OrgConfig } from '../policy/types.ts';
import { addAdmissionCheck, exchangeEnded, whenClientEnds, type Exchange, type Stage } from '../proxy/exchange.ts';
import { registerProviderShape } from '../proxy/refusal-response.ts';
import { asciiLower } from '../classify/request-framing.ts';

export interface MeteringDeps {
  ledger: Ledger;
  prices: PriceTable;
  current: () => CompiledPolicySet;
  config: MeteringConfig;
  logger: Logger;
  now?: () => number;
  /** Threshold crossings (50/80/100 % by default), once per line, percent and window. */
  onThreshold?: (e: ThresholdEvent) => void;
}

/** What the stage leaves on `ex.notes['metering']` for later stages (audit) and tests. */
export interface MeteringNote {
  provider: string;
  model: string;
  reservedMicros: number;
  /**
   * Resolves once the charge is known (on `ex.usage`) and handed to the ledger, after the response
   * and any drain. The ledger write is queued ahead of the audit row's completion, so both reach the
   * writer thread in one message; `ex.settlements` waits on this.
   */
  settled: Promise<void>;
}

const FALLBACK_ID = '(fallback)';

function fallbackPrice(config: MeteringConfig, provider: string, webSearch: number): ModelPrice | undefined {
  const f = config.fallbackPrice;
  if (config.unknownModel !== 'fallback' || !f) return undefined;
  return {
    id: FALLBACK_ID,
    provider,
    price: tokenPrice({ input: f.input, output: f.output, cache_write: f.cacheWrite, cache_read: f.cacheRead }),
    longContext: undefined,
    maxOutputTokens: f.maxOutputTokens ?? 128_000,
    fallback: true,
    webSearch,
  };
}

function headerValue(h: Readonly<Record<string, string | string[] | undefined>>, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

function decoderFor(encoding: string | undefined): Transform | null | undefined {
  const e = (encoding ?? '').trim().toLowerCase();
  if (e === '' || e === 'identity') return null;
  if (e === 'gzip' || e === 'x-gzip') return zlib.createGunzip();
  if (e === 'deflate') return zlib.createInflate();
  if (e === 'br') return zlib.createBrotliDecompress();
  return undefined; // unknown encoding: the body cannot be read
}

interface InFlight {
  ex: Exchange;
  /** The request went upstream: its end reaches the observer (a client gone before the headers included). */
  forwarding: boolean;
  started: boolean;
  done: boolean;
  endedSeenAt: number | undefined;
  finish: (why: string) => void;
}

export function meterLlmStage(deps: MeteringDeps): Stage {
  const now = deps.now ?? Date.now;
  const { config, ledger, logger } = deps;
  const onThreshold = deps.onThreshold ?? ((e: ThresholdEvent) => logger.warn('budget threshold', { ...e }));
  for (const base of config.openaiCompatible) registerProviderShape(base.host, 'openai');
  const inFlight = new Map<string, InFlight>();
  let lastSweep = 0;

  // A principal's budget lines are the same for every request it makes in one UTC day under one
  // org.yaml (a reload makes a new org object): built once, frozen, and shared.
  const linesCache = new Map<string, readonly BudgetLine[]>();
  let linesOrg: OrgConfig | undefined;
  let linesDay = '';
  const linesFor = (org: OrgConfig, p: ChargePrincipal, at: number): readonly BudgetLine[] => {
    const day = budgetWindow('day', at).key;
    if (org !== linesOrg || day !== linesDay || linesCache.size >= 10_000) {
      linesCache.clear();
      linesOrg = org;
      linesDay = day;
    }
    const key = `${p.kind}\n${p.team}\n${p.agent ?? ''}\n${p.subject}`;
    let lines = linesCache.get(key);
    if (lines === undefined) {
      lines = Object.freeze(budgetLinesFor(org, p, at).map((l) => Object.freeze(l)));
      linesCache.set(key, lines);
    }
    return lines;
  };

  // Crash recovery: reservations left open by a previous process are charged in full (estimated).
  void ledger.settleOpenReservations(now()).then(
    (n) => { if (n > 0) logger.warn('charged reservations left open by a previous run', { count: n }); },
    (err: unknown) => logger.error('cannot recover open reservations', { error: String(err) }),
  );

  const emitThresholds = async (changes: readonly LineChange[], team: string, cause: ThresholdEvent['cause']) => {
    const org = deps.current().org;
    for (const c of changes) {
      const kind = c.windowKey.startsWith('month:') ? 'month' : 'day';
      const limit = limitFor(org, c.scope, team, kind);
      const crossed = cause === 'refused' ? [100] : crossedThresholds(limit, c.spentBeforeMicros, c.spentAfterMicros, config.thresholds);
      for (const percent of crossed) {
        if (limit === undefined) continue;
        if (!(await ledger.markThreshold(c, percent, now()))) continue;
        const scopeName = c.scope === 'org' ? 'the organisation' : c.scope.replace(':', ' ');
        try {
          onThreshold({
            scope: c.scope, label: scopeName, window: kind, windowKey: c.windowKey, percent, limitMicros: limit,
            spentMicros: c.spentAfterMicros, resetsAt: resetOf(c.windowKey), cause, at: new Date(now()).toISOString(),
          });
        } catch (err) {
          logger.error('threshold hook failed', { error: String(err) });
        }
      }
    }
  };

  /** Exchanges whose end never reached their observer (a failure between admission and forwarding). */
  const sweep = () => {
    const t = now();
    if (t - lastSweep < 1000) return;
    lastSweep = t;
    for (const f of inFlight.values()) {
      if (f.done || !exchangeEnded(f.ex)) continue;
      f.endedSeenAt ??= t;
      const grace = f.started || f.forwarding ? config.drainMs + 5000 : 2000;
      if (t - f.endedSeenAt > grace) f.finish('the exchange ended without a response end');
    }
  };

  return async (ex) => {
    if (ex.kind === 'tunnel') return;
    if (ex.kind === 'upgrade' && detectEndpoint({ host: ex.host, port: ex.port, method: ex.method, path: ex.path }, config.openaiCompatible)) {
      // A model endpoint asked for a protocol switch: never forwarded unmetered, whatever the setting.
      throw new RequestRefusal('endpoint_not_metered', 'Tollgate meters model endpoints by reading their HTTP response; a protocol upgrade on one is refused.');
    }
    if (config.unmeteredEndpoints === 'refuse') {
      const spend = unmeteredSpendEndpoint({ host: ex.host, port: ex.port, method: ex.method, path: ex.path, upgrade: ex.kind === 'upgrade' }, config.openaiCompatible);
      if (spend) {
        throw new RequestRefusal('endpoint_not_metered', `Tollgate cannot meter ${spend.what} (${spend.provider}), so it does not let it spend the organisation's money past the budgets. An administrator can allow such endpoints with metering.unmetered_endpoints: allow.`);
      }
    }
    if (ex.kind !== 'request') return;
    const endpoint = detectEndpoint({ host: ex.host, port: ex.port, method: ex.method, path: ex.path }, config.openaiCompatible);
    if (!endpoint) return;
    sweep();
    const principal = ex.principal;
    if (!principal || principal.kind === 'anonymous') throw new RequestRefusal('auth_required');
    if (!ex.body.present) throw new RequestRefusal('malformed_request', `A request to a metered ${endpoint.provider} endpoint needs a JSON body naming its model.`);
    const encoding = ex.headers.find(([n]) => asciiLower(n) === 'content-encoding')?.[1];
    if (encoding && encoding.trim().toLowerCase() !== 'identity') {
      throw new RequestRefusal('malformed_request', `Tollgate meters ${endpoint.provider} requests by reading their body; send it without Content-Encoding.`, { status: 415 });
    }
    const body = await ex.body.buffer(config.maxRequestBytes);
    const parsed = parseLlmRequest(endpoint.api, body);
    if (!parsed.ok) throw new RequestRefusal('malformed_request', parsed.message);
    const request = parsed.request;
    const price = resolveModelPrice(deps.prices, endpoint.priceTable, request.model) ?? fallbackPrice(config, endpoint.provider, deps.prices.webSearch.get(endpoint.priceTable) ?? 0);
    if (!price) {
      throw new RequestRefusal('price_unknown', `Tollgate has no price for model "${request.model}" (${endpoint.provider}), so it cannot meter it. Ask an administrator to add it to prices.yaml.`);
    }
    if (request.serviceTier === 'priority' && !price.priority) {
      throw new RequestRefusal('price_unknown', `Tollgate has no priority-processing price for model "${request.model}" (${endpoint.provider}), so it cannot meter service_tier "priority". Send the request without it, or ask an administrator to add priority rates to prices.yaml.`);
    }
    const maxOut = (request.maxOutputTokens ?? price.maxOutputTokens) * request.choices;
    // Input the provider adds itself is not in the body: reserve at least the configured bound for it.
    const inputTokens = request.providerSideInput ? Math.max(request.inputTokenEstimate, config.providerSideInputTokens) : request.inputTokenEstimate;
    const reservedMicros = worstCaseMicros(price, inputTokens, maxOut, request.webSearches, request.serviceTier);
    const at = now();
    const lines = linesFor(deps.current().org, principal, at);
    // The reservation is an admission check: it rides to the store with the decision row (the
    // audit stage awaits both), and refuses the request when a limit would be passed.
    const reservation = ledger.reserve({
      id: ex.id, at, amountMicros: reservedMicros, lines, provider: endpoint.provider, model: request.model,
      principal: { kind: principal.kind, subject: principal.subject, team: principal.team, agent: principal.agent, project: principal.project },
    }).then((outcome) => {
      if (outcome.ok) return;
      const refusedLine: BudgetLine = outcome.line;
      void emitThresholds([{ scope: refusedLine.scope, windowKey: refusedLine.window.key, spentBeforeMicros: outcome.state.spentMicros, spentAfterMicros: outcome.state.spentMicros }], principal.team, 'refused')
        .catch((err: unknown) => logger.error('cannot record a budget threshold', { error: String(err) }));
      throw new RequestRefusal('budget_exceeded', refusalMessage(outcome));
    }, (err: unknown) => {
      logger.error('cannot reserve budget', { request_id: ex.id, error: String(err) });
      // The call may still be committed after its caller gave up (a writer answering late): a
      // release queued behind it frees what it would hold. Releasing what was never reserved is a
      // no-op, and the request is refused either way.
      ledger.release(ex.id, now()).catch(() => undefined);
      throw new RequestRefusal('budget_unavailable', 'Tollgate cannot reach its spend store, so it cannot admit metered requests right now.', { detail: String(err) });
    });
    addAdmissionCheck(ex, reservation);
    const held = reservation.then(() => true, () => false);
    watchResponse(ex, endpoint, request, price, reservedMicros, principal.team, held);
  };

  function resetOf(windowKey: string): string {
    const [kind, date = ''] = windowKey.split(':');
    const parts = date.split('-').map(Number);
    const y = parts[0] ?? 1970;
    const m = (parts[1] ?? 1) - 1;
    return new Date(kind === 'month' ? Date.UTC(y, m + 1, 1) : Date.UTC(y, m, (parts[2] ?? 1) + 1)).toISOString();
  }

  /** `held`: whether the reservation was made (a refused or failed one has nothing to settle or release). */
  function watchResponse(ex: Exchange, endpoint: MeteredEndpoint, request: LlmRequest, price: ModelPrice, reservedMicros: number, team: string, held: Promise<boolean>): void {
    ex.drainOnClientAbort = { maxMs: config.drainMs, maxBytes: config.drainBytes };
    let status: number | undefined;
    let parser: UsageParser | undefined;
    let decoder: Transform | null | undefined = null;
    let unreadable = false;
    let resolveSettled!: () => void;
    const settled = new Promise<void>((r) => { resolveSettled = r; });
    const note: MeteringNote = { provider: endpoint.provider, model: request.model, reservedMicros, settled };
    ex.settlements.push(settled);
    ex.notes['metering'] = note;
    const flight: InFlight = { ex, forwarding: false, started: false, done: false, endedSeenAt: undefined, finish: () => undefined };
    inFlight.set(ex.id, flight);

    const settle = async (why: string | undefined) => {
      if (!(await held)) return;
      const reading = parser && !unreadable ? parser.finish() : undefined;
      const responsePrice = reading?.model ? resolveModelPrice(deps.prices, endpoint.priceTable, reading.model) : undefined;
      const charge = settleCharge({ responseStarted: flight.started, status, reading, request, price: responsePrice ?? price, reservedMicros });
      try {
        if (charge.action === 'release') {
          const released = ledger.release(ex.id, now());
          resolveSettled();
          await released;
          return;
        }
        ex.usage = {
          provider: endpoint.provider,
          model: charge.model ?? request.model,
          inputTokens: charge.tokens.inputTokens,
          outputTokens: charge.tokens.outputTokens,
          cacheReadTokens: charge.tokens.cacheReadTokens,
          cacheWriteTokens: charge.tokens.cacheWriteTokens,
          costMicros: charge.costMicros,
          estimated: charge.estimated,
        };
        const settling = ledger.settle({ id: ex.id, at: now(), costMicros: charge.costMicros, estimated: charge.estimated, tokens: charge.tokens, model: charge.model });
        resolveSettled();
        const out = await settling;
        if (charge.estimated) {
          logger.info('metered request charged an estimate', { request_id: ex.id, cost: formatUsd(charge.costMicros), reason: why ?? reading?.error ?? 'no usage reported' });
        }
        if (out.settled) await emitThresholds(out.lines, team, 'spend');
      } catch (err) {
        logger.error('cannot settle a metered request; its reservation stays held until restart', { request_id: ex.id, error: String(err) });
      }
    };

    flight.finish = (why: string) => {
      if (flight.done) return;
      flight.done = true;
      inFlight.delete(ex.id);
      void settle(why).finally(resolveSettled);
    };
    // Refused after this stage (or dropped before forwarding): no response will ever end it. Once
    // forwarded, the forwarder waits for the provider's answer even when the client has left (the
    // generation is billed): its end settles the reservation.
    whenClientEnds(ex, () => {
      if (!flight.started && !flight.forwarding) flight.finish('the exchange ended before a response started');
    });

    ex.responseObservers.push({
      onRequestSent() {
        flight.forwarding = true;
      },
      onResponseStart(statusCode, headers) {
        flight.started = true;
        status = statusCode;
        parser = createUsageParser(endpoint.api, headerValue(headers, 'content-type'));
        decoder = decoderFor(headerValue(headers, 'content-encoding'));
        if (decoder === undefined) unreadable = true;
        else if (decoder) {
          const p = parser;
          decoder.on('data', (c: Buffer) => p.push(c));
          decoder.on('error', () => { /* a cut compressed stream: keep what was decoded */ });
        }
      },
      onChunk(chunk) {
        if (unreadable) return;
        if (decoder) decoder.write(chunk);
        else parser?.push(chunk);
      },
      onEnd(result) {
        const why = result.complete ? undefined : result.error;
        const d = decoder;
        if (!d) {
          flight.finish(why ?? '');
          return;
        }
        let finished = false;
        const done = () => {
          if (finished) return;
          finished = true;
          flight.finish(why ?? '');
        };
        d.once('end', done);
        d.once('error', done);
        d.once('close', done);
        d.end();
        d.resume();
      },
    });
  }
}

/**
 * Builds the stage from tollgate.yaml: the price table, and the gateway's ledger (in the gateway,
 * the SQLite ledger run by the audit writer's thread — never SQLite on the proxy's loop).
 */
export function meteringStageFromConfig(deps: { ledger: Ledger; config: GatewayConfig; logger: Logger; current: () => CompiledPolicySet; onThreshold?: (e: ThresholdEvent) => void }): Stage {
  const loaded = loadPriceTable(deps.config.prices);
  if (loaded.usedBundled) deps.logger.warn('prices file not found; using the bundled price table', { configured: deps.config.prices, bundled: loaded.file, as_of: loaded.table.asOf });
  return meterLlmStage({
    ledger: deps.ledger,
    prices: loaded.table,
    current: deps.current,
    config: deps.config.metering,
    logger: deps.logger,
    ...(deps.onThreshold ? { onThreshold: deps.onThreshold } : {}),
  });
}
