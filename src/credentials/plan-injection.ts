// Owns: the injection plan for one request — which client headers and query parameters to drop,
// which to set from which secret (by name), or which keys sign it (AWS SigV4, done elsewhere).
// The client's own credentials for a bound host are always removed: every header the provider
// accepts a key in, not only the one injected. Also the placeholder checks: a binding can require
// its placeholder, and a placeholder on its way to a host with no binding is refused.
// PURE: secret values appear only in renderHeaderValue / renderQueryValue, which the shell calls.
import type { CredentialBindingRef } from '../policy/types.ts';

export type HeaderList = readonly (readonly [string, string])[];

export interface HeaderToSet {
  /** lower-case header name. */
  readonly name: string;
  readonly secret: string;
  /** `{secret}` marks where the secret goes; for basic, the value is computed from username and secret. */
  readonly format: 'template' | 'basic';
  readonly template: string;
  readonly username: string | undefined;
  readonly binding: string;
}

export interface QueryToSet {
  readonly name: string;
  readonly secret: string;
  readonly binding: string;
}

export interface InjectionPlan {
  readonly ok: true;
  /** lower-case header names to remove (every copy) before anything is set. */
  readonly removeHeaders: readonly string[];
  readonly setHeaders: readonly HeaderToSet[];
  /** query parameter names to remove (every copy). */
  readonly removeQuery: readonly string[];
  readonly setQuery: readonly QueryToSet[];
  /** SigV4 re-signing with these keys, when an aws binding applies. */
  readonly aws: { readonly secret: string; readonly region: string | undefined; readonly service: string | undefined; readonly binding: string } | null;
  /** names of the bindings that apply, for the audit row. */
  readonly bindings: readonly string[];
}

export interface InjectionRefusal {
  readonly ok: false;
  readonly reason: 'placeholder_required' | 'credential_reflected';
  readonly message: string;
}

/** Headers in which each provider accepts a key; all are removed when the host is bound. */
const PROVIDER_KEY_HEADERS: ReadonlyArray<{ readonly host: (h: string) => boolean; readonly headers: readonly string[]; readonly query?: readonly string[] }> = [
  { host: (h) => h === 'api.anthropic.com', headers: ['x-api-key', 'authorization'] },
  { host: (h) => h === 'api.openai.com', headers: ['authorization', 'api-key'] },
  { host: (h) => h.endsWith('.openai.azure.com'), headers: ['api-key', 'authorization'] },
  { host: (h) => h === 'generativelanguage.googleapis.com', headers: ['x-goog-api-key', 'authorization'], query: ['key'] },
  { host: (h) => h === 'api.github.com' || h === 'uploads.github.com', headers: ['authorization'] },
  { host: (h) => h.endsWith('.amazonaws.com'), headers: ['authorization', 'x-amz-security-token'] },
];

/** Always removed: the gateway's own credentials never go upstream. */
const ALWAYS_REMOVE: readonly string[] = ['proxy-authorization'];

function lower(s: string): string {
  // ASCII-only lower-casing: header names are tokens; never fold non-ASCII look-alikes.
  return s.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}

function carriesPlaceholder(value: string, placeholder: string): boolean {
  return value.includes(placeholder);
}

function queryValues(query: string, name: string): string[] {
  if (!query) return [];
  const out: string[] = [];
  for (const part of query.split('&')) {
    const eq = part.indexOf('=');
    const k = eq < 0 ? part : part.slice(0, eq);
    if (k === name) out.push(eq < 0 ? '' : part.slice(eq + 1));
  }
  return out;
}

/**
 * The plan for one request. `bindings` are the decision's credentials (already narrowed by host,
 * method, path and project). The request's host is the canonical host the decision was made on.
 */
export function planInjection(
  bindings: readonly CredentialBindingRef[],
  req: {
    readonly host: string;
    readonly headers: HeaderList;
    readonly query?: string | undefined;
    /** the decision's hostBound: a binding names this host even if none applies to this path. */
    readonly hostBound?: boolean | undefined;
  },
): InjectionPlan | InjectionRefusal {
  const remove = new Set<string>(ALWAYS_REMOVE);
  const removeQuery = new Set<string>();
  const setHeaders: HeaderToSet[] = [];
  const setQuery: QueryToSet[] = [];
  let aws: InjectionPlan['aws'] = null;
  const provider = PROVIDER_KEY_HEADERS.find((p) => p.host(req.host));
  if (bindings.length === 0) {
    // A bound host on a path its binding does not cover (Claude Code telemetry on
    // api.anthropic.com): no key is injected, and the client's key or placeholder is still dropped.
    if (req.hostBound) {
      for (const h of provider?.headers ?? ['authorization']) remove.add(h);
      for (const q of provider?.query ?? []) removeQuery.add(q);
    }
    return { ok: true, removeHeaders: [...remove], setHeaders, removeQuery: [...removeQuery], setQuery, aws, bindings: [] };
  }
  for (const h of provider?.headers ?? ['authorization']) remove.add(h);
  for (const q of provider?.query ?? []) removeQuery.add(q);
  const used: string[] = [];
  for (const b of bindings) {
    if (b.kind === 'aws') {
      remove.add('authorization');
      remove.add('x-amz-security-token');
      if (aws) continue; // first aws binding wins
      aws = { secret: b.secret, region: b.awsRegion, service: b.awsService, binding: b.name };
    } else if (b.kind === 'query') {
      const name = b.queryName as string;
      removeQuery.add(name);
      if (setQuery.some((q) => q.name === name)) continue;
      setQuery.push({ name, secret: b.secret, binding: b.name });
    } else {
      const name = lower(b.headerName ?? 'authorization');
      remove.add(name);
      if (setHeaders.some((h) => h.name === name)) continue; // first binding for a header wins
      setHeaders.push({
        name,
        secret: b.secret,
        format: b.kind === 'basic' ? 'basic' : 'template',
        template: b.template ?? '{secret}',
        username: b.username,
        binding: b.name,
      });
    }
    used.push(b.name);
  }
  // A binding that requires its placeholder injects only when the client sent it.
  for (const b of bindings) {
    const p = b.requirePlaceholder;
    if (!p) continue;
    const inHeaders = req.headers.some(([n, v]) => remove.has(lower(n)) && carriesPlaceholder(v, p));
    const inQuery = b.kind === 'query' && queryValues(req.query ?? '', b.queryName as string).some((v) => carriesPlaceholder(v, p));
    if (!inHeaders && !inQuery) {
      return {
        ok: false,
        reason: 'placeholder_required',
        message: `The gateway injects the key for ${req.host} (binding ${b.name}) only when the client sends the placeholder "${p}" as its key; configure the tool with that placeholder instead of a real key.`,
      };
    }
  }
  return { ok: true, removeHeaders: [...remove], setHeaders, removeQuery: [...removeQuery], setQuery, aws, bindings: used };
}

/**
 * A placeholder on its way to a host that has no binding means the agent was pointed somewhere
 * else with the placeholder as its key: refuse (fail closed). Returns null when nothing leaks.
 */
export function findPlaceholderLeak(
  headers: HeaderList,
  placeholderValues: readonly string[],
  hostHasBinding: boolean,
  query?: string,
): { reason: 'credential_reflected'; header: string | null; message: string } | null {
  if (hostHasBinding) return null;
  for (const [name, value] of headers) {
    for (const p of placeholderValues) {
      if (carriesPlaceholder(value, p)) {
        return { reason: 'credential_reflected', header: lower(name), message: `The ${lower(name)} header carries the gateway placeholder key, but no credential is bound to this host; the request is refused so that a misdirected client fails loudly.` };
      }
    }
  }
  if (query) {
    let decoded = query;
    try {
      decoded = decodeURIComponent(query);
    } catch {
      // keep the raw text
    }
    for (const p of placeholderValues) {
      if (decoded.includes(p)) return { reason: 'credential_reflected', header: null, message: 'The query string carries the gateway placeholder key, but no credential is bound to this host.' };
    }
  }
  return null;
}

// eslint-disable-next-line no-control-regex
const UNSAFE = /[\r\n\x00]/;

/** The header value for a secret; null when the secret could not be sent safely (CR, LF, NUL). */
export function renderHeaderValue(h: HeaderToSet, secretValue: string): string | null {
  if (UNSAFE.test(secretValue) || (h.username !== undefined && UNSAFE.test(h.username))) return null;
  if (h.format === 'basic') return `Basic ${Buffer.from(`${h.username ?? ''}:${secretValue}`, 'utf8').toString('base64')}`;
  return h.template.replace('{secret}', () => secretValue);
}

/** The encoded query pair for a secret. */
export function renderQueryPair(q: QueryToSet, secretValue: string): string {
  return `${encodeURIComponent(q.name)}=${encodeURIComponent(secretValue)}`;
}
