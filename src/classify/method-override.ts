// Owns: reading the methods a request asks its upstream to apply instead of its own. Many
// frameworks honour a method override: Rack and Express (`X-HTTP-Method-Override`), OData and
// Microsoft services (`X-HTTP-Method`), Google APIs and others (`X-Method-Override`), Laravel and
// Symfony (a `_method` parameter; in the query string too). A POST carrying `DELETE` in one of
// them is a DELETE to such an upstream, so the policy must allow every method the request names,
// not only its request line's (security case 3.05). Pure: forwarded headers and the raw query in,
// the distinct overriding methods out (upper-cased, without the request's own method).
import { malformed, type Malformed } from './malformed.ts';

/** The override headers Tollgate reads (lower-case). */
export const METHOD_OVERRIDE_HEADERS: readonly string[] = ['x-http-method-override', 'x-http-method', 'x-method-override'];

/** The override parameter read from the query string. */
export const METHOD_OVERRIDE_PARAMETER = '_method';

export interface MethodOverride {
  /** Where the method was named: a header name as received, or `?_method`. */
  readonly source: string;
  /** Upper-cased method token. */
  readonly method: string;
}

export type MethodOverrideReading = { readonly ok: true; readonly overrides: readonly MethodOverride[] } | Malformed;

const NONE: MethodOverrideReading = Object.freeze({ ok: true, overrides: Object.freeze([]) });
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/;
const HEADER_LENGTHS = new Set(METHOD_OVERRIDE_HEADERS.map((h) => h.length));

function isOverrideHeader(name: string): boolean {
  return HEADER_LENGTHS.has(name.length) && METHOD_OVERRIDE_HEADERS.includes(name.toLowerCase());
}

/**
 * The name PHP (Laravel, Symfony) files a query parameter under, lower-cased: leading spaces
 * dropped, `name[key]` filed under `name`, and space, `.` and an unmatched `[` turned into `_` —
 * so `.method`, `%20method` and `[method` all reach the application as `_method`.
 */
function phpParameterName(name: string): string {
  let n = name.replace(/^ +/, '');
  const open = n.indexOf('[');
  if (open > 0 && n.indexOf(']', open) > open) n = n.slice(0, open);
  return phpMangle(n);
}

/** PHP's last step on a parameter name (space, `.` and `[` filed as `_`), lower-cased. */
export function phpMangle(name: string): string {
  return name.replace(/[ .[]/g, '_').toLowerCase();
}

/**
 * Whether a decoded parameter name reaches a PHP or Rack application as `_method`: PHP ends a name
 * at a NUL byte and files it under phpParameterName; Rack 2 drops brackets around a plain name
 * (`[_method]`, `_method]`).
 */
export function isMethodParameterName(name: string): boolean {
  const nul = name.indexOf('\0');
  const php = nul === -1 ? name : name.slice(0, nul);
  return phpParameterName(php) === METHOD_OVERRIDE_PARAMETER || /^[[\]]*_method\]*$/.test(name);
}

/** The query's `_method` values, percent-decoded (`+` is a space, as in a form); undefined when one cannot be decoded. */
function queryOverrides(query: string): string[] | undefined {
  const out: string[] = [];
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=');
    const rawName = eq === -1 ? pair : pair.slice(0, eq);
    let name: string;
    try {
      name = decodeURIComponent(rawName.replace(/\+/g, ' '));
    } catch {
      continue; // a name that cannot be decoded is not `_method`: the upstream's business
    }
    if (!isMethodParameterName(name)) continue;
    let value: string;
    try {
      value = decodeURIComponent((eq === -1 ? '' : pair.slice(eq + 1)).replace(/\+/g, ' '));
    } catch {
      return undefined;
    }
    out.push(value);
  }
  return out;
}

/**
 * The methods `headers` (as forwarded) and `query` (raw, without `?`) name besides `method`.
 * An empty value names nothing; a comma-separated header value names each element. A value that
 * is not an HTTP method token, or a `_method` parameter that cannot be decoded, is malformed:
 * the request is refused rather than guessed at.
 */
export function readMethodOverrides(method: string, headers: ReadonlyArray<readonly [string, string]>, query: string): MethodOverrideReading {
  const named: Array<{ source: string; value: string }> = [];
  for (const [name, value] of headers) {
    if (isOverrideHeader(name)) for (const v of value.split(',')) named.push({ source: name, value: v });
  }
  if (query.length >= METHOD_OVERRIDE_PARAMETER.length && /method/i.test(query)) {
    const values = queryOverrides(query);
    if (values === undefined) return malformed(`The request's ${METHOD_OVERRIDE_PARAMETER} query parameter cannot be decoded; it would name the method the upstream applies.`);
    for (const v of values) named.push({ source: `?${METHOD_OVERRIDE_PARAMETER}`, value: v });
  }
  return overridesNamed(method, named);
}

/**
 * The distinct methods other than `method` that `named` values name (a value naming nothing is
 * skipped); malformed when a value is not an HTTP method token.
 */
export function overridesNamed(method: string, named: ReadonlyArray<{ source: string; value: string }>): MethodOverrideReading {
  if (named.length === 0) return NONE;
  const own = method.toUpperCase();
  const overrides: MethodOverride[] = [];
  for (const { source, value } of named) {
    const v = value.trim();
    if (v === '') continue;
    if (!TOKEN.test(v)) return malformed(`${source} names ${JSON.stringify(v.slice(0, 40))}, which is not an HTTP method; the upstream would apply it instead of ${method}.`);
    const m = v.toUpperCase();
    if (m !== own && !overrides.some((o) => o.method === m)) overrides.push({ source, method: m });
  }
  return overrides.length === 0 ? NONE : { ok: true, overrides };
}
