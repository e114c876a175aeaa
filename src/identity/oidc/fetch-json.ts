// Owns: one bounded HTTP exchange with an identity provider: a deadline for the whole exchange
// (headers and body), a cap on the body size, no redirects, JSON only. Errors become OidcError
// idp_unavailable with the URL in the private detail.
import { OidcError } from './oidc-error.ts';

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface FetchJsonOptions {
  method?: 'GET' | 'POST';
  /** application/x-www-form-urlencoded body. */
  form?: Record<string, string>;
  /** JSON request body. */
  json?: unknown;
  headers?: Record<string, string>;
  timeoutMs?: number;
  maxBytes?: number;
  fetch?: FetchLike;
  /** Return 4xx/5xx JSON bodies instead of throwing (token endpoints answer errors as JSON 400). */
  acceptErrorStatus?: boolean;
}

export interface JsonResponse {
  status: number;
  body: unknown;
}

async function readCapped(res: Response, maxBytes: number, url: string): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > maxBytes) throw new OidcError('idp_unavailable', 'The identity provider sent an oversized response.', { detail: `${url}: content-length ${declared}` });
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new OidcError('idp_unavailable', 'The identity provider sent an oversized response.', { detail: `${url}: more than ${maxBytes} bytes` });
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export async function fetchJson(url: string, opts: FetchJsonOptions = {}): Promise<JsonResponse> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const doFetch = opts.fetch ?? fetch;
  const signal = AbortSignal.timeout(timeoutMs);
  const headers: Record<string, string> = { accept: 'application/json', ...opts.headers };
  const init: RequestInit = { method: opts.method ?? 'GET', headers, redirect: 'manual', signal };
  if (opts.form) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    init.body = new URLSearchParams(opts.form).toString();
  } else if (opts.json !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(opts.json);
  }
  const host = (() => {
    try {
      return new URL(url).host;
    } catch {
      return url;
    }
  })();
  try {
    const res = await doFetch(url, init);
    const text = await readCapped(res, opts.maxBytes ?? 512 * 1024, url);
    if (res.status >= 300 && !(opts.acceptErrorStatus && res.status >= 400)) {
      throw new OidcError('idp_unavailable', `The identity provider at ${host} answered HTTP ${res.status}.`, { detail: `${init.method} ${url} → ${res.status}` });
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new OidcError('idp_unavailable', `The identity provider at ${host} did not answer with JSON.`, { detail: `${init.method} ${url}: not JSON` });
    }
    return { status: res.status, body };
  } catch (err) {
    if (err instanceof OidcError) throw err;
    const timedOut = signal.aborted;
    throw new OidcError(
      'idp_unavailable',
      timedOut ? `The identity provider at ${host} did not answer within ${timeoutMs} ms.` : `The identity provider at ${host} cannot be reached.`,
      { detail: `${init.method} ${url}: ${err instanceof Error ? `${err.message}${err.cause instanceof Error ? ` (${err.cause.message})` : ''}` : String(err)}`, cause: err },
    );
  }
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
