// BENCH ONLY — stands in for src/stages/audit-decision.ts in a gateway started with
// bench/lib/no-audit-register.mjs: the audit stage admits without committing a decision row and the
// exchange-end hook writes nothing. Everything else is the real module. Used to measure what audit
// writing costs the proxy (bench/audit-scenario.ts); never loaded by Tollgate itself.
import { AUDIT_NOTE, type AuditDecisionStageDeps, type AuditNote } from '../../src/stages/audit-decision.ts';
import type { Exchange, Stage } from '../../src/proxy/exchange.ts';

export * from '../../src/stages/audit-decision.ts';

export function auditDecisionStage(_deps: AuditDecisionStageDeps): Stage {
  return async (ex) => {
    ex.notes[AUDIT_NOTE] = { admitted: true, committed: false, failOpen: false } satisfies AuditNote;
  };
}

export function auditExchangeEnd(_deps: unknown): (ex: Exchange) => void {
  return () => undefined;
}
