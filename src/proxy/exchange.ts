// Owns: the flow object every pipeline stage reads and writes — plain data about one request
// (or one tunnel) from acceptance to the end of the exchange — and the one stage signature.
import type { ReasonCode } from '../errors.ts';

export interface ExchangePrincipal {
  kind: 'user' | 'agent' | 'anonymous';
  /** token id; never the token */
  id: string;
  subject: string;
  team: string;
  project?: string;
  agent?: string;
}

export interface ExchangeDecision {
  effect: 'allow' | 'direct' | 'deny';
  reason: ReasonCode | 'allowed';
  rule: string | null;
  explanation: string;
  intercept: boolean;
  team?: string;
  project?: string;
}

/** Facts about one intercepted tunnel, fixed at CONNECT time. */
export interface TunnelContext {
  id: string;
  host: string;
  hostKind: 'dns' | 'ipv4' | 'ipv6';
  port: number;
  clientAddress: string;
  proxyAuthorization: string[];
  principal: ExchangePrincipal | undefined;
  /** A tunnel opened only to show a readable denial: nothing is ever forwarded. */
  denial: { status: number; reason: ReasonCode; message: string; rule: string | null } | undefined;
}

export interface Exchange {
  id: string;
  startedAt: number;
  kind: 'request' | 'tunnel' | 'upgrade';
  /** 'plain': absolute-form request to the proxy; 'intercepted': inside a TLS-terminated tunnel. */
  via: 'plain' | 'intercepted' | 'connect';
  tunnel: TunnelContext | undefined;
  clientAddress: string;
  method: string;
  scheme: 'http' | 'https';
  host: string;
  hostKind: 'dns' | 'ipv4' | 'ipv6';
  port: number;
  /** Normalised path: what is matched AND what is forwarded. Undefined for tunnels. */
  path: string | undefined;
  query: string;
  /** Proxy-Authorization header lines as received (never forwarded, never logged). */
  proxyAuthorization: string[];
  /** Headers to send upstream (already stripped of hop-by-hop and proxy headers). Stages may edit. */
  headers: Array<[string, string]>;
  principal: ExchangePrincipal | undefined;
  decision: ExchangeDecision | undefined;
  /** The vetted address to dial. */
  target: { address: string; port: number; source: 'override' | 'literal' | 'dns' } | undefined;
  outcome: {
    status: number | undefined;
    reason: ReasonCode | undefined;
    error: string | undefined;
    bytesIn: number;
    bytesOut: number;
    upstreamMs: number | undefined;
  };
  /** The request body: streamed by default; a stage that must see it whole (SigV4) buffers it. */
  body: ExchangeBody;
  /**
   * Reads the streamed request body on its way upstream (the policy stage sets it for a POST form
   * body, whose `_method` an upstream may apply): `push` sees each chunk before it is sent and
   * `end` runs before the body's last bytes go, so a refusal (a thrown RequestRefusal) leaves the
   * upstream with an incomplete request it never acts on.
   */
  bodyCheck?: RequestBodyCheck | undefined;
  /** LLM usage and cost, filled by metering (audit rows and logs read it). */
  usage: ExchangeUsage | undefined;
  /**
   * When the client goes away mid-response, keep reading the upstream (bounded) instead of aborting
   * it, so metering can see the final usage. Set by metering for metered requests.
   */
  drainOnClientAbort: { maxMs: number; maxBytes: number } | undefined;
  /**
   * Work that must finish before the exchange's end is reported (metering settles after the
   * response and any drain; the audit row must carry the final usage).
   */
  settlements: Array<Promise<unknown>>;
  /**
   * Checks a stage started that must pass before anything goes upstream, left to run alongside the
   * later stages: the audit stage (the last) awaits them together with its decision row's commit,
   * so a budget reservation and the decision row reach the store in one message and transaction.
   * A check rejects with a RequestRefusal. Add them with addAdmissionCheck.
   */
  admissionChecks: Array<Promise<void>>;
  /**
   * Called once when the client side of the exchange is over (before waiting on `settlements`),
   * so a stage can settle work that no response will ever complete (refused after admission).
   */
  onClientEnd: Array<() => void>;
  /** Watchers of the upstream response (metering reads usage from the stream as it passes). */
  responseObservers: ResponseObserver[];
  /** Free slots for later stages (metering, audit) keyed by stage name. */
  notes: Record<string, unknown>;
}

export interface ExchangeUsage {
  provider: string;
  model: string | undefined;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  /** integer micro-dollars */
  costMicros: number;
  /** true when usage was not reported and the charge is an estimate (e.g. the stream was cut). */
  estimated: boolean;
}

/**
 * Sees the upstream response as it streams to the client, without holding it back. Must not throw
 * and must not keep references to chunks beyond what it needs.
 */
export interface ResponseObserver {
  /** Forwarding began: the request is on its way upstream, and onEnd follows in every case. */
  onRequestSent?(): void;
  onResponseStart(status: number, headers: Readonly<Record<string, string | string[] | undefined>>): void;
  onChunk(chunk: Buffer): void;
  /** Once: the response ended (`complete`), or was cut short by either side (`error` says why). */
  onEnd(result: { complete: boolean; error?: string }): void;
}

export interface RequestBodyCheck {
  push(chunk: Buffer): void;
  end(): void;
}

export interface ExchangeBody {
  present: boolean;
  /** Reads the whole body (refusing with 413 past `limit` bytes); the forwarder then sends this copy. */
  buffer(limit: number): Promise<Buffer>;
  buffered: Buffer | undefined;
}

export const NO_BODY: ExchangeBody = Object.freeze({
  present: false,
  buffer: () => Promise.resolve(Buffer.alloc(0)),
  buffered: undefined,
}) as ExchangeBody;

/** One pipeline stage. Throw a RequestRefusal to stop the exchange with that reason. */
export type Stage = (ex: Exchange) => void | Promise<void>;

/** Registers an admission check (see Exchange.admissionChecks); its rejection is never unhandled. */
export function addAdmissionCheck(ex: Exchange, check: Promise<void>): void {
  check.catch(() => undefined);
  ex.admissionChecks.push(check);
}

/** Awaits every admission check; the first refusal (in registration order) is thrown. Checks that passed are cleared. */
export async function admissionChecksPassed(ex: Exchange): Promise<void> {
  if (ex.admissionChecks.length === 0) return;
  const results = await Promise.allSettled(ex.admissionChecks);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
  ex.admissionChecks.length = 0;
}

/** Whether the proxy server has ended the exchange (reported it; its end hooks have run). */
export function exchangeEnded(ex: Exchange): boolean {
  return ex.notes['ended'] === true;
}

/** Marks the exchange ended; false when it already was (an exchange ends once). */
export function markExchangeEnded(ex: Exchange): boolean {
  if (exchangeEnded(ex)) return false;
  ex.notes['ended'] = true;
  return true;
}

/**
 * Runs `f` when the client side of the exchange is over (see Exchange.onClientEnd) — at once when
 * it already is: a stage still running after its client left would otherwise never see that end.
 */
export function whenClientEnds(ex: Exchange, f: () => void): void {
  if (exchangeEnded(ex)) f();
  else ex.onClientEnd.push(f);
}

/** The client left before it was answered: the exchange is recorded as 499 with `why`. */
export function markClientLeft(ex: Exchange, why: string): void {
  if (ex.outcome.status !== undefined) return;
  ex.outcome.status = 499;
  ex.outcome.error ??= why;
}

export function newOutcome(): Exchange['outcome'] {
  return { status: undefined, reason: undefined, error: undefined, bytesIn: 0, bytesOut: 0, upstreamMs: undefined };
}
