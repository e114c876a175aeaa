// Owns: the one error base class and the closed vocabulary of stable codes.
// Public text (what a client may see) is kept apart from private detail (logs only).

/** Reason codes: stable, snake_case, shown in X-Tollgate-Reason headers, deny bodies and audit rows. */
export const REASONS = {
  malformed_request: { status: 400, text: 'The request is malformed.' },
  header_too_large: { status: 431, text: 'The request header section is too large.' },
  auth_required: { status: 407, text: 'Proxy authentication is required.' },
  auth_invalid: { status: 407, text: 'The proxy credentials are invalid, expired or revoked.' },
  host_not_allowed: { status: 403, text: 'The host is not allowed by policy.' },
  ip_not_allowed: { status: 403, text: 'The destination address is not allowed.' },
  port_not_allowed: { status: 403, text: 'The destination port is not allowed by policy.' },
  path_not_allowed: { status: 403, text: 'The path is not allowed by policy.' },
  method_not_allowed: { status: 403, text: 'The method is not allowed by policy.' },
  host_mismatch: { status: 421, text: 'The Host header does not match the tunnel or URL authority.' },
  sni_mismatch: { status: 421, text: 'The TLS server name does not match the CONNECT authority.' },
  self_connection: { status: 403, text: 'The gateway does not connect to itself.' },
  dns_error: { status: 502, text: 'The destination name could not be resolved.' },
  upstream_tls_error: { status: 502, text: 'The upstream TLS handshake or certificate check failed.' },
  upstream_unavailable: { status: 502, text: 'The upstream could not be reached.' },
  upstream_timeout: { status: 504, text: 'The upstream did not answer in time.' },
  upstream_protocol_error: { status: 502, text: 'The upstream sent an invalid response.' },
  upgrade_not_allowed: { status: 403, text: 'This protocol upgrade is not allowed.' },
  expectation_failed: { status: 417, text: 'The expectation is not supported.' },
  payload_too_large: { status: 413, text: 'The request body is too large.' },
  budget_exceeded: { status: 402, text: 'The budget is exhausted.' },
  price_unknown: { status: 403, text: 'The model has no known price.' },
  budget_unavailable: { status: 503, text: 'The spend store is unavailable.' },
  rate_limited: { status: 429, text: 'Too many requests.' },
  tunnel_limit: { status: 429, text: 'Too many open tunnels.' },
  audit_unavailable: { status: 503, text: 'The audit store is unavailable.' },
  policy_unavailable: { status: 503, text: 'No policy is loaded.' },
  credential_reflected: { status: 403, text: 'A placeholder credential was sent to a host it does not belong to.' },
  shutting_down: { status: 503, text: 'The gateway is shutting down.' },
  internal_error: { status: 500, text: 'The gateway failed to handle the request.' },
  principal_unknown: { status: 403, text: 'The team or agent is not defined in the organisation config.' },
  project_not_granted: { status: 403, text: 'The team has no grant on the project this host belongs to.' },
  project_ambiguous: { status: 403, text: 'The request could act for more than one project; name one in the proxy user name (<team>.<project>).' },
  credential_insecure: { status: 403, text: 'Credentials for this host are only sent over https on port 443.' },
  placeholder_required: { status: 403, text: 'This host expects the placeholder key configured for the gateway.' },
} as const satisfies Record<string, { status: number; text: string }>;

export type ReasonCode = keyof typeof REASONS;

/** Error codes for everything that is not a per-request reason: config, CLI, startup. */
export const ERROR_CODES = [
  'TOLLGATE_ERR_CONFIG_INVALID',
  'TOLLGATE_ERR_CONFIG_NOT_FOUND',
  'TOLLGATE_ERR_CA',
  'TOLLGATE_ERR_STARTUP_UNSAFE',
  'TOLLGATE_ERR_LISTEN',
  'TOLLGATE_ERR_USAGE',
  'TOLLGATE_ERR_SANDBOX',
  'TOLLGATE_ERR_REQUEST',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Where in which file a problem sits. Lines and columns are 1-based. */
export interface SourcePosition {
  file: string;
  line: number;
  col: number;
}

export interface Problem extends SourcePosition {
  message: string;
  severity: 'error' | 'warning';
}

export function formatProblem(p: Problem): string {
  return `${p.file}:${p.line}:${p.col}: ${p.severity === 'warning' ? 'warning: ' : ''}${p.message}`;
}

export class TollgateError extends Error {
  readonly code: ErrorCode;
  /** Private detail for logs; never sent to a client. */
  readonly detail: string | undefined;
  readonly problems: readonly Problem[];
  constructor(code: ErrorCode, message: string, opts: { detail?: string; problems?: Problem[]; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'TollgateError';
    this.code = code;
    this.detail = opts.detail;
    this.problems = opts.problems ?? [];
  }
}

/** A failure of one request, carrying its reason code; the proxy maps it to a response. */
export class RequestRefusal extends Error {
  readonly reason: ReasonCode;
  readonly status: number;
  /** Public text for the client (already safe to show). */
  readonly publicMessage: string;
  readonly detail: string | undefined;
  constructor(reason: ReasonCode, publicMessage?: string, opts: { detail?: string; status?: number; cause?: unknown } = {}) {
    super(publicMessage ?? REASONS[reason].text, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'RequestRefusal';
    this.reason = reason;
    this.status = opts.status ?? REASONS[reason].status;
    this.publicMessage = publicMessage ?? REASONS[reason].text;
    this.detail = opts.detail;
  }
}
