// Owns: what a client reads when Tollgate refuses or fails a request — status, X-Tollgate-*
// headers and a body a person can read, in the provider's own error shape for LLM hosts.
// Pure: the refusal and the request's facts in, a response value out.
import type { ReasonCode } from '../errors.ts';

export interface RefusalFacts {
  requestId: string;
  status: number;
  reason: ReasonCode;
  message: string;
  rule: string | null;
  host: string | undefined;
  team: string | undefined;
  /** A 429's wait before a retry; Retry-After says 1 s when unknown. */
  retryAfterMs?: number | undefined;
}

export interface RenderedResponse {
  status: number;
  headers: Array<[string, string]>;
  body: string;
}

export type ProviderShape = 'anthropic' | 'openai' | 'plain';

/** Hosts of OpenAI-compatible (or Anthropic-compatible) APIs named in config (`metering.openai_compatible`). */
const configuredShapes = new Map<string, ProviderShape>();

/** Makes refusals for `host` use a provider's error shape. Additive; called once per gateway start. */
export function registerProviderShape(host: string, shape: Exclude<ProviderShape, 'plain'>): void {
  configuredShapes.set(host.toLowerCase(), shape);
}

export function providerShapeForHost(host: string | undefined): ProviderShape {
  if (host === 'api.anthropic.com') return 'anthropic';
  if (host === 'api.openai.com') return 'openai';
  return (host && configuredShapes.get(host)) || 'plain';
}

/** Budget refusals are not about a policy rule: their text does not point at the rule that allowed the host. */
const NOT_A_RULE: ReadonlySet<ReasonCode> = new Set(['budget_exceeded', 'price_unknown', 'budget_unavailable', 'endpoint_not_metered']);

const ANTHROPIC_TYPES: Partial<Record<number, string>> = {
  400: 'invalid_request_error', 401: 'authentication_error', 402: 'billing_error', 403: 'permission_error',
  404: 'not_found_error', 413: 'request_too_large', 429: 'rate_limit_error', 500: 'api_error', 502: 'api_error',
  503: 'overloaded_error', 504: 'api_error',
};

/** Header-safe: no CR/LF or non-ASCII ever reaches a header value. */
function headerSafe(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?');
}

export function renderRefusal(f: RefusalFacts, shape: ProviderShape = providerShapeForHost(f.host)): RenderedResponse {
  const decision = f.status === 403 || f.status === 402 || f.status === 421 ? 'deny' : 'error';
  const headers: Array<[string, string]> = [
    ['X-Tollgate-Decision', decision],
    ['X-Tollgate-Reason', f.reason],
    ['X-Request-Id', headerSafe(f.requestId)],
    ['Cache-Control', 'no-store'],
  ];
  if (f.rule) headers.push(['X-Tollgate-Rule', headerSafe(f.rule)]);
  if (f.status === 407) {
    headers.push(['Proxy-Authenticate', 'Basic realm="tollgate", charset="UTF-8"']);
  }
  if (f.status === 429) headers.push(['Retry-After', String(Math.max(1, Math.ceil((f.retryAfterMs ?? 1000) / 1000)))]);
  if (f.status === 402 || f.status === 403) headers.push(['x-should-retry', 'false']);
  const where = NOT_A_RULE.has(f.reason) ? '' : f.rule ? ` (rule ${f.rule}${f.team ? `, team ${f.team}` : ''})` : f.team ? ` (team ${f.team})` : '';
  const text = `Tollgate: ${f.message}${where}`;
  let body: string;
  if (shape === 'anthropic') {
    headers.push(['Content-Type', 'application/json']);
    body = JSON.stringify({ type: 'error', error: { type: ANTHROPIC_TYPES[f.status] ?? 'api_error', message: text }, request_id: f.requestId, tollgate: { reason: f.reason, rule: f.rule } });
  } else if (shape === 'openai') {
    headers.push(['Content-Type', 'application/json']);
    const type = f.status === 402 ? 'insufficient_quota' : f.status === 403 ? 'permission_denied' : f.status >= 500 ? 'server_error' : 'invalid_request_error';
    body = JSON.stringify({ error: { message: text, type, code: f.reason, param: null }, tollgate: { reason: f.reason, rule: f.rule, request_id: f.requestId } });
  } else {
    headers.push(['Content-Type', 'text/plain; charset=utf-8']);
    const lines = [
      text,
      '',
      `reason:     ${f.reason}`,
      ...(f.rule ? [`rule:       ${f.rule}`] : []),
      ...(f.team ? [`team:       ${f.team}`] : []),
      ...(f.host ? [`host:       ${f.host}`] : []),
      `request id: ${f.requestId}`,
    ];
    if (f.status === 407) lines.push('', 'Sign in with `tollgate login <gateway-url>`, then use `eval "$(tollgate env)"` or `tollgate run -- <command>`.');
    body = lines.join('\n') + '\n';
  }
  headers.push(['Content-Length', String(Buffer.byteLength(body))]);
  return { status: f.status, headers, body };
}
