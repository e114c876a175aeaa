// Owns: the audit stage — the LAST admission stage of requests and tunnels: it commits the
// exchange's decision row before a byte goes upstream, together with earlier stages' admission
// checks (the budget reservation), refusing with 503 audit_unavailable when the store cannot write
// (unless fail-open is configured for a non-metered host); and the exchange-end hook that hands
// the completed row to the sink.
import { buildAuditRow } from '../audit/build-audit-row.ts';
import type { AuditSink } from '../audit/audit-sink.ts';
import { RequestRefusal } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import { admissionChecksPassed, type Exchange, type Stage } from '../proxy/exchange.ts';
import { providerShapeForHost } from '../proxy/refusal-response.ts';

/** `ex.notes[AUDIT_NOTE]`: set by the audit stage when the exchange passed every admission stage. */
export const AUDIT_NOTE = 'audit';

export interface AuditNote {
  admitted: true;
  /** A decision row was committed before forwarding. */
  committed: boolean;
  /** Forwarded without a committed decision row (audit.fail_open_non_metered). */
  failOpen: boolean;
}

/** Metered (LLM) requests always fail closed. Metering marks them; the provider hosts are a fallback. */
export function isMeteredExchange(ex: Exchange): boolean {
  return ex.drainOnClientAbort !== undefined || ex.notes['metering'] !== undefined || providerShapeForHost(ex.host) !== 'plain';
}

export interface AuditDecisionStageDeps {
  sink: AuditSink;
  /** Forward non-metered requests even when the store cannot write (counted; default false: fail closed). */
  failOpenNonMetered?: boolean;
  isMetered?: (ex: Exchange) => boolean;
  now?: () => number;
  logger?: Logger;
  redact?: (text: string) => string;
}

export function auditDecisionStage(deps: AuditDecisionStageDeps): Stage {
  const now = deps.now ?? Date.now;
  const isMetered = deps.isMetered ?? isMeteredExchange;
  return async (ex) => {
    // An intercepted tunnel forwards nothing itself: each request inside it gets its own row.
    const forwards = ex.kind !== 'tunnel' || ex.decision?.effect === 'direct';
    if (!forwards) {
      ex.notes[AUDIT_NOTE] = { admitted: true, committed: false, failOpen: false } satisfies AuditNote;
      return;
    }
    try {
      const commit = deps.sink.commitDecision(buildAuditRow(ex, { now: now(), phase: 'decision', admitted: true, ...(deps.redact ? { redact: deps.redact } : {}) }));
      if (ex.admissionChecks.length > 0) {
        // Earlier stages' checks (a budget reservation) travel with this row; a check's refusal
        // wins — a row it let through is completed as refused, and nothing goes upstream.
        commit.catch(() => undefined);
        await admissionChecksPassed(ex);
      }
      await commit;
      ex.notes[AUDIT_NOTE] = { admitted: true, committed: true, failOpen: false } satisfies AuditNote;
    } catch (err) {
      if (err instanceof RequestRefusal) throw err;
      const code = (err as { code?: unknown }).code;
      const detail = `audit store: ${typeof code === 'string' ? code : 'error'}: ${(err as Error).message}`;
      // Fail-open is for a store that is down for a while (disk full, locked), never for a database
      // file deleted or replaced under the gateway: that lasts until a restart, and token checks
      // would meanwhile read a file nothing else writes (a revocation elsewhere would not apply).
      if (deps.failOpenNonMetered === true && !isMetered(ex) && code !== 'AUDIT_FILE_REPLACED') {
        deps.sink.noteFailOpen();
        deps.logger?.warn('audit store unavailable; request forwarded without a committed decision row (fail-open)', { request_id: ex.id, host: ex.host, error: detail });
        ex.notes[AUDIT_NOTE] = { admitted: true, committed: false, failOpen: true } satisfies AuditNote;
        return;
      }
      throw new RequestRefusal('audit_unavailable', 'The gateway cannot record this request in its audit trail, so it was not sent. Try again shortly; operators: see /readyz.', { detail });
    }
  };
}

/** The `onExchangeEnd` hook: the completed row (status, bytes, duration, tokens, cost), written asynchronously. */
export function auditExchangeEnd(deps: { sink: AuditSink; now?: () => number; redact?: (text: string) => string }): (ex: Exchange) => void {
  const now = deps.now ?? Date.now;
  return (ex) => {
    const note = ex.notes[AUDIT_NOTE] as AuditNote | undefined;
    deps.sink.complete(buildAuditRow(ex, { now: now(), phase: 'complete', admitted: note?.admitted === true, ...(deps.redact ? { redact: deps.redact } : {}) }));
  };
}
