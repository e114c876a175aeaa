// Owns: strict parsing of request targets and authorities (CONNECT host:port, proxy absolute-form
// URLs, Host header values) into a canonical host, kind and port. Parsed by hand, never by new URL().
import { malformed, type Malformed } from './malformed.ts';
import { normalizeHost, type HostKind } from './normalize-host.ts';

export type ConnectTarget = { ok: true; host: string; kind: HostKind; port: number };
export type UrlScheme = 'http' | 'https' | 'ws' | 'wss';
export type AbsoluteUrl = {
  ok: true;
  scheme: UrlScheme;
  host: string;
  kind: HostKind;
  port: number;
  portExplicit: boolean;
  /** The path as sent (not normalised); "/" when the URL has none. */
  rawPath: string;
  /** The query without "?"; "" when absent. */
  query: string;
};
export type HostHeader = { ok: true; host: string; kind: HostKind; port: number | undefined };

type Authority = { ok: true; host: string; kind: HostKind; port: number };
const NO_PORT = -1;

/** Port digits s[start, end): decimal 1–65535, no sign, no leading zero; or a refusal message. */
function parsePort(s: string, start: number, end: number): number | string {
  const n = end - start;
  if (n === 0) return 'the port is empty';
  if (n > 5 || s.charCodeAt(start) === 0x30) return 'the port must be a decimal number from 1 to 65535';
  let v = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return 'the port must be a decimal number from 1 to 65535';
    v = v * 10 + (c - 0x30);
  }
  return v <= 65535 ? v : 'the port must be a decimal number from 1 to 65535';
}

/** `host`, `host:port`, `[v6]` or `[v6]:port` in s[start, end); port NO_PORT when absent. */
function parseAuthority(s: string, start: number, end: number, needPort: boolean): Authority | Malformed {
  if (start >= end) return malformed('the host is empty');
  let hostEnd: number;
  let portStart: number;
  if (s.charCodeAt(start) === 0x5b) {
    const close = s.indexOf(']', start);
    if (close < 0 || close >= end) return malformed('an IPv6 host must be closed with "]"');
    hostEnd = close + 1;
    if (hostEnd === end) portStart = NO_PORT;
    else if (s.charCodeAt(hostEnd) === 0x3a) portStart = hostEnd + 1;
    else return malformed('only ":port" may follow a bracketed IPv6 host');
  } else {
    const colon = s.indexOf(':', start);
    if (colon < 0 || colon >= end) {
      hostEnd = end;
      portStart = NO_PORT;
    } else {
      const second = s.indexOf(':', colon + 1);
      if (second >= 0 && second < end) return malformed('an IPv6 host must be written in brackets, e.g. "[2001:db8::1]:443"');
      hostEnd = colon;
      portStart = colon + 1;
    }
  }
  if (hostEnd === start) return malformed('the host is empty');
  let port = NO_PORT;
  if (portStart === NO_PORT) {
    if (needPort) return malformed('the target needs a port, as "host:port"');
  } else {
    const p = parsePort(s, portStart, end);
    if (typeof p === 'string') return malformed(p);
    port = p;
  }
  const h = normalizeHost(s.slice(start, hostEnd));
  if (!h.ok) return h;
  return { ok: true, host: h.host, kind: h.kind, port };
}

/**
 * A CONNECT request-target: strictly `host:port` or `[v6]:port`. Refuses a missing or bad port, a
 * scheme, a path, userinfo, zone ids and bare IPv6.
 */
export function parseConnectTarget(target: string): ConnectTarget | Malformed {
  if (target.includes('://')) return malformed('a CONNECT target is "host:port", not a URL');
  if (target.includes('/')) return malformed('a CONNECT target has no path');
  const a = parseAuthority(target, 0, target.length, true);
  if (!a.ok) return a;
  return { ok: true, host: a.host, kind: a.kind, port: a.port };
}

/** Scheme s[0, end) lower-cased, if it is one a proxy forwards. */
function schemeOf(s: string, end: number): UrlScheme | null {
  const name = s.slice(0, end).toLowerCase();
  return name === 'http' || name === 'https' || name === 'ws' || name === 'wss' ? name : null;
}

function defaultPort(scheme: UrlScheme): number {
  return scheme === 'https' || scheme === 'wss' ? 443 : 80;
}

/**
 * A proxy absolute-form request-target `scheme://authority[/path][?query]`. Refuses userinfo and
 * backslashes in the authority, fragments, empty hosts, bad ports, whitespace and control
 * characters, and non-ASCII outside the host.
 */
export function parseAbsoluteUrl(target: string): AbsoluteUrl | Malformed {
  const len = target.length;
  const colon = target.indexOf(':');
  if (colon <= 0 || colon > 5) return malformed('the request target is not an absolute http(s) or ws(s) URL');
  const scheme = schemeOf(target, colon);
  if (scheme === null) return malformed('only http, https, ws and wss URLs can be proxied');
  if (target.charCodeAt(colon + 1) !== 0x2f || target.charCodeAt(colon + 2) !== 0x2f) {
    return malformed('an absolute URL must have "//" after the scheme');
  }
  const authStart = colon + 3;
  let authEnd = len;
  for (let i = authStart; i < len; i++) {
    const c = target.charCodeAt(i);
    if (c === 0x2f || c === 0x3f) {
      authEnd = i;
      break;
    }
    if (c === 0x40) return malformed('userinfo ("@") is not allowed in the URL authority');
    if (c === 0x5c) return malformed('a backslash is not allowed in the URL authority');
    if (c === 0x23) return malformed('a fragment ("#") is not allowed in a request target');
  }
  for (let i = authEnd; i < len; i++) {
    const c = target.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return malformed('whitespace, control and non-ASCII characters are not allowed in the path or query');
    if (c === 0x23) return malformed('a fragment ("#") is not allowed in a request target');
  }
  const a = parseAuthority(target, authStart, authEnd, false);
  if (!a.ok) return a;
  const q = target.indexOf('?', authEnd);
  const pathEnd = q < 0 ? len : q;
  return {
    ok: true,
    scheme,
    host: a.host,
    kind: a.kind,
    port: a.port === NO_PORT ? defaultPort(scheme) : a.port,
    portExplicit: a.port !== NO_PORT,
    rawPath: pathEnd > authEnd ? target.slice(authEnd, pathEnd) : '/',
    query: q < 0 ? '' : target.slice(q + 1),
  };
}

/** A Host header value: `host`, `host:port`, `[v6]` or `[v6]:port`, validated like a target. */
export function parseHostHeader(value: string): HostHeader | Malformed {
  const a = parseAuthority(value, 0, value.length, false);
  if (!a.ok) return a;
  return { ok: true, host: a.host, kind: a.kind, port: a.port === NO_PORT ? undefined : a.port };
}
