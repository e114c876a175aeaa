// Owns: tollgate.yaml → a validated, frozen GatewayConfig (paths resolved against the file's folder,
// ${ENV_VAR} substituted, defaults applied). Every problem is reported as file:line:col.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Type, type Static } from './typebox.ts';
import { TollgateError, type Problem } from '../errors.ts';
import { parseYamlSource, type PathSegment, type YamlSource } from './yaml-source.ts';
import { validateAgainstSchema } from './validate-schema.ts';
import { parseDuration } from '../identity/parse-duration.ts';
import { AlertsSchema, alertsConfig, type AlertsConfig } from '../alerts/alerts-config.ts';
import type { PrincipalLimitsConfig } from '../limits/principal-limits.ts';

const HOST_PORT = '^(\\[[0-9a-fA-F:.]+\\]|[A-Za-z0-9.-]+):[0-9]{1,5}$';
/** An address as host:port; `description` says what it is for. */
const hostPort = (description: string, options: { default?: string } = {}) => Type.String({ pattern: HOST_PORT, description, ...options });
/** A time limit in milliseconds (1 ms to 1 day). */
const millis = (description: string, dflt: number) => Type.Integer({ minimum: 1, maximum: 86_400_000, description, default: dflt });
/** A price in US dollars per million tokens. */
const perMillion = (description: string) => Type.Number({ exclusiveMinimum: 0, maximum: 100_000, description: `${description}, in US dollars per million tokens (more than 0)` });

const MeteringSchema = Type.Object({
  unknown_model: Type.Optional(Type.Union([Type.Literal('refuse'), Type.Literal('fallback')], { description: 'a model with no price: refuse (403 price_unknown) or fallback (charge fallback_price, flagged estimated)', default: 'refuse' })),
  fallback_price: Type.Optional(Type.Object({
    input: perMillion('input tokens'), output: perMillion('output tokens'),
    cache_write: Type.Optional(perMillion('prompt-cache writes (default: input)')), cache_read: Type.Optional(perMillion('prompt-cache reads (default: input)')),
    max_output_tokens: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000, description: 'output tokens reserved when a request sets no cap (default 128000)' })),
  }, { additionalProperties: false, description: 'the price of a model prices.yaml does not list (with unknown_model: fallback)' })),
  openai_compatible: Type.Optional(Type.Array(Type.Object({
    name: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]*$', description: 'provider name in usage rows (e.g. together)' }),
    base_url: Type.String({ pattern: '^https?://', description: 'the base URL clients use, e.g. https://api.together.xyz/v1' }),
    prices: Type.Optional(Type.String({ pattern: '^[a-z0-9][a-z0-9_-]*$', description: 'prices.yaml section for its models (default: name)' })),
  }, { additionalProperties: false }), { description: 'OpenAI-compatible APIs to meter like OpenAI' })),
  drain_ms: Type.Optional(Type.Integer({ minimum: 0, maximum: 600_000, description: 'how long to keep reading an LLM response after its client left, to see the final usage', default: 30_000 })),
  drain_bytes: Type.Optional(Type.Integer({ minimum: 0, description: 'how many bytes to read at most after the client left', default: 16 * 1024 * 1024 })),
  provider_side_input_tokens: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000_000, description: 'input tokens reserved at least for a request whose input the provider adds itself (a document by URL or file id, a previous response, web or file search): the body cannot show it', default: 200_000 })),
  unmetered_endpoints: Type.Optional(Type.Union([Type.Literal('refuse'), Type.Literal('allow')], { description: 'billable provider endpoints Tollgate cannot meter (batch jobs, fine-tuning, images, audio, realtime, Assistants runs, …): refuse (403 endpoint_not_metered) or allow them past every budget', default: 'refuse' })),
  max_request_bytes: Type.Optional(Type.Integer({ minimum: 1024, maximum: 1_073_741_824, description: 'largest metered request body (it is read whole to find the model)', default: 32 * 1024 * 1024 })),
  thresholds: Type.Optional(Type.Array(Type.Integer({ minimum: 1, maximum: 1000 }), { description: 'budget percentages that raise an event', default: [50, 80, 100] })),
}, { additionalProperties: false, description: 'LLM metering and budgets (docs/metering.md)' });

export const GatewayConfigSchema = Type.Object(
  {
    listen: Type.Optional(Type.Object({
      proxy: Type.Optional(hostPort('where agents connect (HTTP proxy: absolute-form requests and CONNECT)', { default: '127.0.0.1:3128' })),
      admin: Type.Optional(hostPort('health, readiness, /metrics, sign-in, the admin API and the dashboard; keep it on loopback or a management network', { default: '127.0.0.1:9090' })),
    }, { additionalProperties: false, description: 'Listen addresses of the proxy and admin listeners' })),
    data_dir: Type.Optional(Type.String({ minLength: 1, description: 'Folder for tollgate.db (tokens, budget ledger, audit trail, alert deliveries) and agents/', default: './data' })),
    ca: Type.Optional(Type.Object({
      cert: Type.String({ minLength: 1, description: 'PEM file of the interception CA certificate' }),
      key: Type.String({ minLength: 1, description: 'PEM file of the CA private key (mode 0600)' }),
    }, { additionalProperties: false, description: 'The interception CA; created on first start when both files are missing', default: { cert: './certs/ca.pem', key: './certs/ca.key' } })),
    org: Type.Optional(Type.String({ minLength: 1, description: 'Path of org.yaml', default: './org.yaml' })),
    policies: Type.Optional(Type.String({ minLength: 1, description: 'Folder of team policies, _org.yaml guardrails and tests/', default: './policies' })),
    policy_reload: Type.Optional(Type.Object({
      allow_non_public: Type.Optional(Type.Boolean({ description: 'apply a hot reload that lets a team reach non-public addresses (private, loopback, link-local, metadata, …) it could not reach before; false rejects such a reload (a restart applies it)', default: false })),
    }, { additionalProperties: false, description: 'How a policy change is applied while the gateway runs (docs/policy.md "Reloading")' })),
    prices: Type.Optional(Type.String({ minLength: 1, description: 'Path of prices.yaml (the bundled table when the file does not exist)', default: './prices.yaml' })),
    secrets: Type.Optional(Type.Object({
      env_prefix: Type.Optional(Type.String({ pattern: '^[A-Z][A-Z0-9_]*$', description: 'Prefix of secret environment variables: secret github-token is read from TOLLGATE_SECRET_GITHUB_TOKEN', default: 'TOLLGATE_SECRET_' })),
      dir: Type.Optional(Type.String({ minLength: 1, description: 'Folder with one file per secret (secrets/github-token); the environment wins', default: './secrets' })),
    }, { additionalProperties: false, description: 'Where named secrets are read from' })),
    upstreams: Type.Optional(Type.Record(Type.String({ minLength: 1 }), hostPort('address:port dialled for this host name'), { description: 'hostname → address to dial instead of resolving it (policy, audit, SNI and certificate checks still use the name)' })),
    upstream_proxy: Type.Optional(Type.String({ pattern: '^https?://', description: "Corporate proxy (http:// or https://, user:password allowed, no path) for upstream traffic (CONNECT to the address Tollgate resolved and vetted) and the gateway's own calls to the IdP and webhooks" })),
    tls: Type.Optional(Type.Object({
      upstream_ca: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'Extra CA files trusted for upstream TLS, next to Node\'s bundled roots and the system bundle' })),
    }, { additionalProperties: false, description: 'Upstream TLS' })),
    dns: Type.Optional(Type.Object({
      servers: Type.Optional(Type.Array(hostPort('a DNS server'), { description: 'DNS servers to resolve through instead of the system resolver' })),
      timeout_ms: Type.Optional(millis('a name that does not resolve in time gets 502 dns_error', 5000)),
    }, { additionalProperties: false, description: 'Name resolution for upstream hosts' })),
    timeouts: Type.Optional(Type.Object({
      connect_ms: Type.Optional(millis('TCP and TLS connect to the upstream; exceeded → 504', 10_000)),
      first_byte_ms: Type.Optional(millis('upstream response headers; exceeded → 504', 120_000)),
      idle_ms: Type.Optional(millis('no bytes in either direction on a client connection or a response body; the connection is closed. While a request is forwarded the client connection waits up to max(idle_ms, first_byte_ms) + 2 s (a slow upstream is reported as such), but a client that stops sending its request body is cut after idle_ms', 300_000)),
      headers_ms: Type.Optional(millis('a client must send its request head (and, in a tunnel, finish the TLS handshake) within this time', 15_000)),
      shutdown_ms: Type.Optional(millis('on SIGTERM/SIGINT, how long in-flight exchanges may finish before connections are closed', 10_000)),
    }, { additionalProperties: false, description: 'Time limits, in milliseconds' })),
    limits: Type.Optional(Type.Object({
      max_header_bytes: Type.Optional(Type.Integer({ minimum: 1024, maximum: 1_048_576, description: 'largest request head accepted; larger ones get 431', default: 16_384 })),
      max_connections: Type.Optional(Type.Integer({ minimum: 1, description: 'client connections accepted at once', default: 10_000 })),
      per_principal: Type.Optional(Type.Object({
        max_tunnels: Type.Optional(Type.Integer({ minimum: 0, description: 'CONNECT tunnels and WebSockets one user or agent may hold open at once (0: unlimited); past it → 429 tunnel_limit', default: 1000 })),
        max_concurrent_requests: Type.Optional(Type.Integer({ minimum: 0, description: 'requests of one user or agent in flight at once, plain or inside tunnels (0: unlimited); past it → 429 rate_limited', default: 256 })),
        requests_per_second: Type.Optional(Type.Number({ minimum: 0, maximum: 1_000_000, description: 'sustained request rate of one user or agent (0: unlimited); past it → 429 rate_limited with Retry-After', default: 0 })),
        burst: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000, description: 'requests one user or agent may send at once above requests_per_second (default: twice the rate)' })),
      }, { additionalProperties: false, description: 'Fairness limits per user or agent, so one runaway agent cannot starve the others (docs/configuration.md)' })),
    }, { additionalProperties: false, description: 'Size and connection limits of the proxy listener' })),
    sso: Type.Optional(Type.Object({
      issuers: Type.Optional(Type.Array(Type.Object({
        name: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,31}$', description: 'short name shown to users (tollgate login --issuer NAME)' }),
        issuer: Type.String({ pattern: '^https?://', description: 'issuer URL exactly as in its discovery document (http only on loopback)' }),
        client_id: Type.String({ minLength: 1, description: 'the client id registered with the IdP' }),
        client_secret: Type.Optional(Type.String({ description: 'used only by the admin sign-in of the gateway itself; the CLI is a public client' })),
        preset: Type.Optional(Type.Union([Type.Literal('okta'), Type.Literal('entra'), Type.Literal('jumpcloud'), Type.Literal('generic')], { description: 'the IdP, for its default groups claim and scopes', default: 'generic' })),
        groups_claim: Type.Optional(Type.String({ minLength: 1, description: 'ID token claim holding the groups (default from the preset: groups)' })),
        group_map: Type.Optional(Type.Record(Type.String({ minLength: 1 }), Type.String({ minLength: 1 }), { description: 'IdP group value (e.g. an Entra group object id) → group name used in org.yaml' })),
        scopes: Type.Optional(Type.Array(Type.String({ pattern: '^[\\x21\\x23-\\x5B\\x5D-\\x7E]+$' }), { description: 'scopes requested (default from the preset; openid is always added)' })),
      }, { additionalProperties: false }), { description: 'OpenID Connect issuers people sign in with (docs/identity.md)' })),
      token_ttl: Type.Optional(Type.String({ description: 'lifetime of gateway tokens issued by tollgate login (a duration, at most 30d)', default: '12h' })),
      session_ttl: Type.Optional(Type.String({ description: 'lifetime of an admin dashboard session (a duration, at most 7d)', default: '8h' })),
      public_url: Type.Optional(Type.String({ pattern: '^https?://', description: 'the admin listener as browsers reach it (redirect URI base; https makes cookies Secure)' })),
      proxy_url: Type.Optional(Type.String({ pattern: '^https?://', description: 'the proxy as clients reach it, told to tollgate login (default: the proxy listener)' })),
    }, { additionalProperties: false, description: 'Single sign-on (docs/identity.md)' })),
    metering: Type.Optional(MeteringSchema),
    alerts: Type.Optional(AlertsSchema),
    audit: Type.Optional(Type.Object({
      retention_days: Type.Optional(Type.Integer({ minimum: 0, maximum: 36_500, description: 'Days audit records are kept (0 keeps them forever)', default: 365 })),
      fail_open_non_metered: Type.Optional(Type.Boolean({ description: 'Forward non-metered requests when the audit store cannot write (counted, shown on /readyz); false fails closed', default: false })),
      group_commit_ms: Type.Optional(Type.Integer({ minimum: 0, maximum: 50, description: 'Extra time the writer waits to gather a batch (0: batch whatever arrived during the previous commit)', default: 0 })),
      busy_timeout_ms: Type.Optional(Type.Integer({ minimum: 10, maximum: 60_000, description: 'How long an audit write waits for a lock held by another connection before failing closed', default: 5000 })),
      wal_cap_mb: Type.Optional(Type.Integer({ minimum: 1, maximum: 65_536, description: 'WAL size that triggers a truncating checkpoint', default: 64 })),
    }, { additionalProperties: false, description: 'Audit trail (docs/audit.md)' })),
    metrics: Type.Optional(Type.Object({
      bearer_token_secret: Type.Optional(Type.String({ pattern: '^[a-z0-9][a-z0-9._-]*$', description: 'name of a secret (secret source: env or secrets dir); when set, GET /metrics on the admin listener requires Authorization: Bearer <its value>' })),
    }, { additionalProperties: false, description: 'Prometheus /metrics on the admin listener (docs/metrics.md)' })),
    log: Type.Optional(Type.Object({
      level: Type.Optional(Type.Union([Type.Literal('debug'), Type.Literal('info'), Type.Literal('warn'), Type.Literal('error')], { description: 'one of debug, info, warn, error', default: 'info' })),
    }, { additionalProperties: false, description: 'Logging (JSON lines on stdout)' })),
  },
  {
    additionalProperties: false,
    examples: [{
      listen: { proxy: '127.0.0.1:3128', admin: '127.0.0.1:9090' },
      data_dir: './data',
      ca: { cert: './certs/ca.pem', key: './certs/ca.key' },
      org: './org.yaml',
      policies: './policies',
      prices: './prices.yaml',
      secrets: { env_prefix: 'TOLLGATE_SECRET_', dir: './secrets' },
      upstreams: { 'api.staging.example.com': '10.20.0.5:443' },
      upstream_proxy: 'http://proxy.corp.example:8080',
      tls: { upstream_ca: ['./corp-root.pem'] },
      dns: { servers: ['10.0.0.2:53'], timeout_ms: 5000 },
      timeouts: { connect_ms: 10_000, first_byte_ms: 120_000, idle_ms: 300_000, headers_ms: 15_000, shutdown_ms: 10_000 },
      limits: { max_header_bytes: 16_384, max_connections: 10_000, per_principal: { max_tunnels: 1000, max_concurrent_requests: 256, requests_per_second: 50, burst: 100 } },
      log: { level: 'info' },
      sso: { issuers: [{ name: 'okta', issuer: 'https://acme.okta.com', client_id: 'tollgate', preset: 'okta' }] },
      metering: { unknown_model: 'refuse', thresholds: [50, 80, 100] },
      audit: { retention_days: 365 },
      metrics: { bearer_token_secret: 'metrics-token' },
      alerts: { webhooks: [{ name: 'finops', url: '${SLACK_WEBHOOK_URL}' }, { name: 'oncall', url_secret: 'oncall-webhook', percents: [100] }] },
    }],
  },
);

export type GatewayConfigFile = Static<typeof GatewayConfigSchema>;

export interface ListenAddress { host: string; port: number }

export interface GatewayConfig {
  file: string;
  baseDir: string;
  listen: { proxy: ListenAddress; admin: ListenAddress };
  dataDir: string;
  ca: { cert: string; key: string };
  org: string;
  policies: string;
  /** `policy_reload.allow_non_public`: a hot reload may widen into non-public address space. */
  policyReload: { allowNonPublic: boolean };
  prices: string;
  secrets: { envPrefix: string; dir: string };
  /** canonical host name → address to dial */
  upstreams: ReadonlyMap<string, ListenAddress>;
  upstreamProxy: string | undefined;
  tls: { upstreamCa: readonly string[] };
  dns: { servers: readonly ListenAddress[]; timeoutMs: number };
  timeouts: { connectMs: number; firstByteMs: number; idleMs: number; headersMs: number; shutdownMs: number };
  limits: { maxHeaderBytes: number; maxConnections: number; perPrincipal: PrincipalLimitsConfig };
  sso: SsoConfig;
  log: { level: 'debug' | 'info' | 'warn' | 'error' };
  audit: { retentionDays: number; failOpenNonMetered: boolean; groupCommitMs: number; busyTimeoutMs: number; walCapBytes: number };
  metering: MeteringConfig;
  /** `alerts:` — webhooks for budget threshold events (src/alerts, docs/metering.md). */
  alerts: AlertsConfig;
  /** `metrics.bearer_token_secret`: the secret /metrics requires as a bearer token (undefined: none). */
  metrics: { bearerTokenSecret: string | undefined };
}

export type IssuerPreset = 'okta' | 'entra' | 'jumpcloud' | 'generic';

export interface SsoIssuerConfig {
  name: string;
  issuer: string;
  clientId: string;
  clientSecret?: string;
  preset: IssuerPreset;
  /** Claim holding the groups; undefined = the preset's default. */
  groupsClaim?: string;
  /** IdP group value → org.yaml group name (Entra object ids). */
  groupMap: Readonly<Record<string, string>>;
  /** Scopes to request; undefined = the preset's default. */
  scopes?: readonly string[];
}

export interface SsoConfig {
  issuers: readonly SsoIssuerConfig[];
  /** Lifetime of tokens issued by `tollgate login`, ms (default 12 h). */
  tokenTtlMs: number;
  /** Admin session lifetime, ms (default 8 h). */
  sessionTtlMs: number;
  publicUrl: string | undefined;
  proxyUrl: string | undefined;
}

export interface MeteringConfig {
  unknownModel: 'refuse' | 'fallback';
  /** $/MTok; present when unknownModel is 'fallback' */
  fallbackPrice: { input: number; output: number; cacheWrite?: number; cacheRead?: number; maxOutputTokens?: number } | undefined;
  openaiCompatible: ReadonlyArray<{ name: string; host: string; port: number; pathPrefix: string; priceTable: string }>;
  drainMs: number;
  drainBytes: number;
  /** Input tokens reserved at least for a request with provider-side input (LlmRequest.providerSideInput). */
  providerSideInputTokens: number;
  /** Billable endpoints Tollgate cannot meter (src/metering/unmetered-spend.ts): refused, or let past every budget. */
  unmeteredEndpoints: 'refuse' | 'allow';
  maxRequestBytes: number;
  thresholds: readonly number[];
}

function meteringConfig(m: GatewayConfigFile['metering'], source: YamlSource, problems: Problem[]): MeteringConfig {
  const compatible: Array<MeteringConfig['openaiCompatible'][number]> = [];
  (m?.openai_compatible ?? []).forEach((o, i) => {
    let url: URL;
    try {
      url = new URL(o.base_url);
    } catch {
      problems.push({ ...source.positionOf(['metering', 'openai_compatible', i, 'base_url']), severity: 'error', message: `metering.openai_compatible[${i}].base_url is not a URL` });
      return;
    }
    const host = url.hostname.toLowerCase().replace(/\.$/, '').replace(/^\[|\]$/g, '');
    if (host === 'api.openai.com' || host === 'api.anthropic.com') {
      problems.push({ ...source.positionOf(['metering', 'openai_compatible', i, 'base_url']), severity: 'error', message: `metering.openai_compatible[${i}]: ${host} is metered already` });
      return;
    }
    compatible.push({
      name: o.name, host, port: url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80,
      pathPrefix: url.pathname.replace(/\/+$/, ''), priceTable: o.prices ?? o.name,
    });
  });
  const unknownModel = m?.unknown_model ?? 'refuse';
  if (unknownModel === 'fallback' && !m?.fallback_price) {
    problems.push({ ...source.positionOf(['metering', 'unknown_model']), severity: 'error', message: 'metering.unknown_model: fallback needs metering.fallback_price: { input, output } in US dollars per million tokens' });
  }
  const f = m?.fallback_price;
  return {
    unknownModel,
    fallbackPrice: f ? {
      input: f.input, output: f.output,
      ...(f.cache_write === undefined ? {} : { cacheWrite: f.cache_write }),
      ...(f.cache_read === undefined ? {} : { cacheRead: f.cache_read }),
      ...(f.max_output_tokens === undefined ? {} : { maxOutputTokens: f.max_output_tokens }),
    } : undefined,
    openaiCompatible: compatible,
    drainMs: m?.drain_ms ?? 30_000,
    drainBytes: m?.drain_bytes ?? 16 * 1024 * 1024,
    providerSideInputTokens: m?.provider_side_input_tokens ?? 200_000,
    unmeteredEndpoints: m?.unmetered_endpoints ?? 'refuse',
    maxRequestBytes: m?.max_request_bytes ?? 32 * 1024 * 1024,
    thresholds: [...new Set(m?.thresholds ?? [50, 80, 100])].sort((a, b) => a - b),
  };
}

function ssoConfig(s: GatewayConfigFile['sso'], source: YamlSource, problems: Problem[]): SsoConfig {
  const duration = (key: 'token_ttl' | 'session_ttl', fallback: number, max: number): number => {
    const text = s?.[key];
    if (text === undefined) return fallback;
    const ms = parseDuration(text);
    if (ms === undefined || ms > max) {
      problems.push({ ...source.positionOf(['sso', key]), severity: 'error', message: `sso.${key}: "${text}" is not a duration of at most ${max / 86_400_000} days (e.g. 12h)` });
      return fallback;
    }
    return ms;
  };
  const names = new Set<string>();
  const issuers = (s?.issuers ?? []).map((i, n): SsoIssuerConfig => {
    if (names.has(i.name)) problems.push({ ...source.positionOf(['sso', 'issuers', n, 'name']), severity: 'error', message: `sso.issuers: the name "${i.name}" is used twice` });
    names.add(i.name);
    let url: URL | undefined;
    try {
      url = new URL(i.issuer);
    } catch {
      problems.push({ ...source.positionOf(['sso', 'issuers', n, 'issuer']), severity: 'error', message: `sso.issuers[${n}].issuer is not a URL` });
    }
    if (url && url.protocol === 'http:' && !/^(127\.\d+\.\d+\.\d+|\[::1\]|localhost)$/.test(url.hostname)) {
      problems.push({ ...source.positionOf(['sso', 'issuers', n, 'issuer']), severity: 'error', message: `sso.issuers[${n}].issuer must use https (http is allowed only on loopback, for tests and dev mode)` });
    }
    return {
      name: i.name, issuer: i.issuer, clientId: i.client_id, preset: i.preset ?? 'generic', groupMap: { ...(i.group_map ?? {}) },
      ...(i.client_secret === undefined ? {} : { clientSecret: i.client_secret }),
      ...(i.groups_claim === undefined ? {} : { groupsClaim: i.groups_claim }),
      ...(i.scopes === undefined ? {} : { scopes: [...i.scopes] }),
    };
  });
  return {
    issuers,
    tokenTtlMs: duration('token_ttl', 12 * 3_600_000, 30 * 86_400_000),
    sessionTtlMs: duration('session_ttl', 8 * 3_600_000, 7 * 86_400_000),
    publicUrl: s?.public_url?.replace(/\/+$/, ''),
    proxyUrl: s?.proxy_url?.replace(/\/+$/, ''),
  };
}

export function parseListenAddress(s: string): ListenAddress {
  const i = s.lastIndexOf(':');
  let host = s.slice(0, i);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host, port: Number(s.slice(i + 1)) };
}

/** Replaces ${NAME} in every string scalar; unknown variables are problems at their position. */
function substituteEnv(source: YamlSource, env: NodeJS.ProcessEnv, problems: Problem[]): unknown {
  const walk = (v: unknown, p: PathSegment[]): unknown => {
    if (typeof v === 'string') {
      return v.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => {
        const val = env[name];
        if (val === undefined) {
          problems.push({ ...source.positionOf(p), severity: 'error', message: `environment variable ${name} is not set` });
          return '';
        }
        return val;
      });
    }
    if (Array.isArray(v)) return v.map((x, i) => walk(x, [...p, i]));
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = walk(x, [...p, k]);
      return out;
    }
    return v;
  };
  return walk(source.value, []);
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v as object)) deepFreeze(x);
  }
  return v;
}

export function parseGatewayConfig(file: string, text: string, env: NodeJS.ProcessEnv = process.env): { ok: true; config: GatewayConfig } | { ok: false; problems: Problem[] } {
  const parsed = parseYamlSource(file, text);
  if (!parsed.ok) return parsed;
  const source = parsed.source;
  if (source.value === null) return { ok: false, problems: [{ file, line: 1, col: 1, severity: 'error', message: 'the file is empty; see README "Configuration"' }] };
  const problems: Problem[] = [];
  const substituted = substituteEnv(source, env, problems);
  if (problems.length) return { ok: false, problems };
  const checked = validateAgainstSchema(source, GatewayConfigSchema, substituted);
  if (!checked.ok) return checked;
  const c = checked.value;
  const baseDir = path.dirname(path.resolve(file));
  const abs = (p: string) => path.resolve(baseDir, p);
  const upstreams = new Map<string, ListenAddress>();
  for (const [host, addr] of Object.entries(c.upstreams ?? {})) {
    const canonical = host.toLowerCase().replace(/\.$/, '');
    if (!/^[a-z0-9.-]+$/.test(canonical)) {
      problems.push({ ...source.positionOf(['upstreams', host], { key: true }), severity: 'error', message: `upstreams: "${host}" is not a host name` });
      continue;
    }
    upstreams.set(canonical, parseListenAddress(addr));
  }
  for (const [key, addr] of [['proxy', c.listen?.proxy], ['admin', c.listen?.admin]] as const) {
    if (addr && parseListenAddress(addr).port > 65535) problems.push({ ...source.positionOf(['listen', key]), severity: 'error', message: `listen.${key}: port out of range` });
  }
  if (c.upstream_proxy !== undefined) {
    const why = upstreamProxyProblem(c.upstream_proxy);
    if (why) problems.push({ ...source.positionOf(['upstream_proxy']), severity: 'error', message: `upstream_proxy: ${why}` });
  }
  const metering = meteringConfig(c.metering, source, problems);
  const sso = ssoConfig(c.sso, source, problems);
  const alerts = alertsConfig(c.alerts, metering.thresholds, source, problems);
  if (problems.length) return { ok: false, problems };
  const config: GatewayConfig = {
    file: path.resolve(file),
    baseDir,
    listen: {
      proxy: parseListenAddress(c.listen?.proxy ?? '127.0.0.1:3128'),
      admin: parseListenAddress(c.listen?.admin ?? '127.0.0.1:9090'),
    },
    dataDir: abs(c.data_dir ?? './data'),
    ca: { cert: abs(c.ca?.cert ?? './certs/ca.pem'), key: abs(c.ca?.key ?? './certs/ca.key') },
    org: abs(c.org ?? './org.yaml'),
    policies: abs(c.policies ?? './policies'),
    policyReload: { allowNonPublic: c.policy_reload?.allow_non_public ?? false },
    prices: abs(c.prices ?? './prices.yaml'),
    secrets: { envPrefix: c.secrets?.env_prefix ?? 'TOLLGATE_SECRET_', dir: abs(c.secrets?.dir ?? './secrets') },
    upstreams,
    upstreamProxy: c.upstream_proxy,
    tls: { upstreamCa: (c.tls?.upstream_ca ?? []).map(abs) },
    dns: { servers: (c.dns?.servers ?? []).map(parseListenAddress), timeoutMs: c.dns?.timeout_ms ?? 5000 },
    timeouts: {
      connectMs: c.timeouts?.connect_ms ?? 10_000,
      firstByteMs: c.timeouts?.first_byte_ms ?? 120_000,
      idleMs: c.timeouts?.idle_ms ?? 300_000,
      headersMs: c.timeouts?.headers_ms ?? 15_000,
      shutdownMs: c.timeouts?.shutdown_ms ?? 10_000,
    },
    limits: {
      maxHeaderBytes: c.limits?.max_header_bytes ?? 16_384,
      maxConnections: c.limits?.max_connections ?? 10_000,
      perPrincipal: {
        maxTunnels: c.limits?.per_principal?.max_tunnels ?? 1000,
        maxConcurrentRequests: c.limits?.per_principal?.max_concurrent_requests ?? 256,
        requestsPerSecond: c.limits?.per_principal?.requests_per_second ?? 0,
        burst: c.limits?.per_principal?.burst ?? Math.max(1, Math.ceil(2 * (c.limits?.per_principal?.requests_per_second ?? 0))),
      },
    },
    sso,
    log: { level: c.log?.level ?? 'info' },
    audit: {
      retentionDays: c.audit?.retention_days ?? 365,
      failOpenNonMetered: c.audit?.fail_open_non_metered ?? false,
      groupCommitMs: c.audit?.group_commit_ms ?? 0,
      busyTimeoutMs: c.audit?.busy_timeout_ms ?? 5000,
      walCapBytes: (c.audit?.wal_cap_mb ?? 64) * 1024 * 1024,
    },
    metering,
    alerts,
    metrics: { bearerTokenSecret: c.metrics?.bearer_token_secret },
  };
  return { ok: true, config: deepFreeze(config) };
}


/** Why a corporate proxy URL cannot be used (never quoting its credentials), or undefined. */
function upstreamProxyProblem(text: string): string | undefined {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return 'not a URL (http://host:port or https://host:port)';
  }
  if (!u.hostname) return 'names no host';
  if ((u.pathname !== '/' && u.pathname !== '') || u.search || u.hash) return 'a proxy URL has no path, query or fragment';
  try {
    decodeURIComponent(u.username);
    decodeURIComponent(u.password);
  } catch {
    return 'the user name or password holds a malformed %-escape';
  }
  return undefined;
}

/** Reads and validates the gateway config file; throws TollgateError with file:line:col problems. */
export function loadGatewayConfig(file: string, env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new TollgateError('TOLLGATE_ERR_CONFIG_NOT_FOUND', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const r = parseGatewayConfig(file, text, env);
  if (!r.ok) throw new TollgateError('TOLLGATE_ERR_CONFIG_INVALID', `invalid configuration in ${file}`, { problems: r.problems });
  return r.config;
}

/** The SQLite file of tokens, spend and audit: `<data_dir>/tollgate.db`. */
export function databasePath(config: Pick<GatewayConfig, 'dataDir'>): string {
  return path.join(config.dataDir, 'tollgate.db');
}
