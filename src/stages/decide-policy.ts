// Owns: the pipeline stage that asks the pure `decide` for a verdict on the exchange (a tunnel at
// CONNECT time, or one request) and stops the exchange with a 403 when it is denied. A request that
// names another method in an override header or `_method` parameter needs that method allowed too,
// and so does a POST form body's `_method`, read as the body streams upstream.
import { formOverrideScanner, isFormContentType } from '../classify/form-method-override.ts';
import { readMethodOverrides, type MethodOverrideReading } from '../classify/method-override.ts';
import { classifyAddress, isPublic } from '../classify/classify-address.ts';
import { parseIp } from '../classify/ip-address.ts';
import { addressAllowedByRule, decide } from '../policy/decide.ts';
import type { CompiledPolicySet, Decision } from '../policy/types.ts';
import { RequestRefusal, REASONS, type ReasonCode } from '../errors.ts';
import type { Exchange, ExchangeDecision, Stage } from '../proxy/exchange.ts';
import { headerValues } from '../proxy/header-filter.ts';

export function decidePolicyStage(current: () => CompiledPolicySet): Stage {
  return (ex) => {
    const principal = ex.principal;
    if (!principal) throw new RequestRefusal('auth_required');
    const set = current();
    const { who, request } = decisionInput(ex, principal);
    const d: Decision = decide(set, who, request);
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
    if (d.effect === 'deny') throw denial(d, 'host_not_allowed', d.explanation);
    if (ex.kind === 'tunnel') return undefined;
    // A pass-through host reached as a plain HTTP request: nothing to intercept, forward as allowed.
    if (d.effect === 'direct') ex.decision.effect = 'allow';
    const decideFor = (method: string) => decide(set, who, { ...request, method });
    denyOverrides(ex, decideFor);
    return checkFormOverride(ex, decideFor);
  };
}

function decisionInput(ex: Exchange, principal: NonNullable<Exchange['principal']>) {
  return {
    who: { team: principal.team, project: principal.project, agent: principal.agent },
    request: {
      host: ex.host,
      hostKind: ex.hostKind,
      port: ex.port,
      method: ex.kind === 'tunnel' ? 'CONNECT' : ex.method,
      path: ex.kind === 'tunnel' ? undefined : ex.path,
      scheme: ex.scheme,
    },
  };
}

/**
 * For a connection that carries no further requests (a pass-through tunnel, a WebSocket): why the
 * policy in force now would not let it be opened as it was — the tunnel is no longer `direct`
 * (denied, or now intercepted), the upgrade is denied, the agent or team is gone — or undefined
 * while it still would. The credential watch ends the connection with this explanation.
 */
export function noLongerAllowed(set: CompiledPolicySet, ex: Exchange): string | undefined {
  if (!ex.principal) return undefined;
  const { who, request } = decisionInput(ex, ex.principal);
  const d = decide(set, who, request);
  if (ex.kind === 'tunnel' && d.effect === 'allow') return `${ex.host}:${ex.port} is now intercepted (${d.rule ?? 'policy'}); reconnect`;
  if (d.effect === 'deny') return d.explanation;
  // The address dialled: a non-public one needed a rule naming it (the dial path's address guard)
  const t = ex.target;
  if (t && t.source !== 'override') {
    const ip = parseIp(t.address);
    if (ip && !isPublic(classifyAddress(ip).class) && !addressAllowedByRule(set, ex.principal.team, ip, ex.port).allowed) {
      return `${ex.host} was reached at ${t.address}, a non-public address no rule names any more`;
    }
  }
  return undefined;
}

/**
 * Every method the request asks the upstream to apply instead of its own (X-HTTP-Method-Override,
 * X-HTTP-Method, X-Method-Override, `?_method=`) must be allowed as well; the first that is not
 * refuses the request, with the decision for that method. A value that is no method is a 400.
 */
function denyOverrides(ex: Exchange, decideFor: (method: string) => Decision): void {
  const reading = readMethodOverrides(ex.method, ex.headers, ex.query);
  if (!reading.ok) throw new RequestRefusal(reading.reason, reading.message);
  refuseDeniedOverride(ex, reading, decideFor, 'asks the upstream');
}

/**
 * The first override `reading` names that the policy denies refuses the exchange (its decision
 * becomes that deny, as it may come after admission); `asker` says what named it in the message.
 */
function refuseDeniedOverride(ex: Exchange, reading: Extract<MethodOverrideReading, { ok: true }>, decideFor: (method: string) => Decision, asker: string): void {
  for (const o of reading.overrides) {
    const d = decideFor(o.method);
    if (d.effect !== 'deny') continue;
    ex.decision = { ...(ex.decision as ExchangeDecision), effect: 'deny', reason: d.reason as ReasonCode, rule: d.rule, explanation: d.explanation };
    throw denial(d, 'method_not_allowed', `The request is sent as ${ex.method} but ${asker} to apply ${o.method} (${o.source}). ${d.explanation}`);
  }
}

/** A form body Tollgate and the upstream may read differently. It may come after admission (mid-body): the decision it records is a deny. */
function refuseMalformedBody(ex: Exchange, message: string): never {
  ex.decision = { ...(ex.decision as ExchangeDecision), effect: 'deny', reason: 'malformed_request', explanation: message };
  throw new RequestRefusal('malformed_request', message);
}

/** A form body up to this size (declared) is read whole and checked before anything goes upstream. */
const FORM_BODY_READ_BYTES = 64 * 1024;

/**
 * A POST form body (urlencoded, multipart, or without a Content-Type, which Rack reads as a form)
 * may name a method in `_method`, which the policy must allow too. A body declared no larger than
 * FORM_BODY_READ_BYTES is read whole and checked before anything goes upstream; a larger or chunked
 * one is checked as it streams upstream (forward-http.ts holds its last bytes back until the check
 * has seen the end, so a refused body never reaches the upstream whole; a body a later stage reads
 * whole, for request signing, is checked there before it is sent).
 */
function checkFormOverride(ex: Exchange, decideFor: (method: string) => Decision): void | Promise<void> {
  if (ex.method !== 'POST' || !ex.body.present) return undefined;
  const types = headerValues(ex.headers, 'content-type');
  if (types.length > 1 && types.some(isFormContentType)) {
    refuseMalformedBody(ex, 'The request has more than one Content-Type header; the upstream may read its form body by either.');
  }
  const scanner = formOverrideScanner(ex.method, types[0]);
  if (!scanner) return undefined;
  if ('ok' in scanner) return refuseMalformedBody(ex, scanner.message);
  const check = (reading: MethodOverrideReading): void => {
    if (!reading.ok) refuseMalformedBody(ex, reading.message);
    else refuseDeniedOverride(ex, reading, decideFor, 'its form body asks the upstream');
  };
  const bodyCheck = { push: (chunk: Buffer) => check(scanner.push(chunk)), end: () => check(scanner.end()) };
  if (Number(headerValues(ex.headers, 'content-length')[0] ?? NaN) <= FORM_BODY_READ_BYTES) {
    return ex.body.buffer(FORM_BODY_READ_BYTES).then((body) => {
      bodyCheck.push(body);
      bodyCheck.end();
    });
  }
  ex.bodyCheck = bodyCheck;
  return undefined;
}

/** The refusal for a deny decision: its reason (or `fallback` for one outside REASONS), 421 or 403. */
function denial(d: Decision, fallback: ReasonCode, message: string): RequestRefusal {
  const reason = (d.reason in REASONS ? d.reason : fallback) as ReasonCode;
  return new RequestRefusal(reason, message, { status: REASONS[reason].status === 421 ? 421 : 403 });
}
