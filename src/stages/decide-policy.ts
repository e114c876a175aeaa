// Owns: the pipeline stage that asks the pure `decide` for a verdict on the exchange (a tunnel at
// CONNECT time, or one request) and stops the exchange with a 403 when it is denied.
import { decide } from '../policy/decide.ts';
import type { CompiledPolicySet, Decision } from '../policy/types.ts';
import { RequestRefusal, REASONS, type ReasonCode } from '../errors.ts';
import type { Stage } from '../proxy/exchange.ts';

export function decidePolicyStage(current: () => CompiledPolicySet): Stage {
  return (ex) => {
    const principal = ex.principal;
    if (!principal) throw new RequestRefusal('auth_required');
    const d: Decision = decide(current(), { team: principal.team, project: principal.project, agent: principal.agent }, {
      host: ex.host,
      hostKind: ex.hostKind,
      port: ex.port,
      method: ex.kind === 'tunnel' ? 'CONNECT' : ex.method,
      path: ex.kind === 'tunnel' ? undefined : ex.path,
      scheme: ex.scheme,
    });
    ex.decision = {
      effect: d.effect,
      reason: d.reason === 'direct' ? 'allowed' : d.reason as ReasonCode | 'allowed',
      rule: d.rule,
      explanation: d.explanation,
      intercept: d.intercept,
      team: d.team,
      ...(d.project === undefined ? {} : { project: d.project }),
    };
    ex.notes['credentials'] = d.credentials;
    ex.notes['hostBound'] = d.hostBound;
    if (d.effect === 'deny') {
      const reason = (d.reason in REASONS ? d.reason : 'host_not_allowed') as ReasonCode;
      throw new RequestRefusal(reason, d.explanation, { status: REASONS[reason].status === 421 ? 421 : 403 });
    }
    if (ex.kind !== 'tunnel' && d.effect === 'direct') {
      // A pass-through host reached as a plain HTTP request: nothing to intercept, forward as allowed.
      ex.decision.effect = 'allow';
    }
  };
}
