// Owns: which header lines cross the proxy. Pure: raw header pairs in, the forwarded list out.
// Hop-by-hop headers (RFC 9110 §7.6.1), headers named in Connection, every Proxy-* header and the
// gateway's own X-Tollgate-* namespace are dropped in both directions: an agent cannot send the
// gateway's headers upstream, and an upstream cannot speak for the gateway (security case 4.06).
// Requests also lose the headers by which a client could steer what a server behind the upstream
// believes about the request — who sent it and which URL it is for (security case 4.07): the
// policy decided on the request line's host and path, so X-Original-URL / X-Rewrite-URL (honoured
// by IIS and Symfony as the path to route) would undo that decision.
import { asciiLower } from '../classify/request-framing.ts';

const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate',
  'te', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings', 'expect', 'host',
]);

/** Client-supplied forwarding and routing claims, never forwarded. */
const STEERING = new Set([
  'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-forwarded-prefix', 'forwarded',
  'x-forwarded-scheme', 'x-forwarded-ssl', 'x-forwarded-server', 'x-forwarded-uri', 'x-host', 'x-http-host-override',
  'x-real-ip', 'x-client-ip', 'true-client-ip', 'x-original-url', 'x-rewrite-url', 'x-original-host',
]);

const GATEWAY_PREFIX = 'x-tollgate-';

/** Proxy-* and the gateway's own X-Tollgate-* headers: never relayed, whatever the path. */
function gatewayOwned(lower: string): boolean {
  return lower.startsWith('proxy-') || lower.startsWith(GATEWAY_PREFIX);
}

function dropped(lower: string, named: ReadonlySet<string>): boolean {
  return HOP_BY_HOP.has(lower) || named.has(lower) || gatewayOwned(lower);
}

function connectionTokens(rawHeaders: readonly string[]): Set<string> {
  const named = new Set<string>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    if (name.length === 10 && asciiLower(name) === 'connection') {
      for (const tok of (rawHeaders[i + 1] as string).split(',')) {
        const t = asciiLower(tok.trim());
        if (t) named.add(t);
      }
    }
  }
  return named;
}

/** Request headers to forward, in order and original case, without Host (the caller sets it). */
export function forwardableRequestHeaders(rawHeaders: readonly string[], keep: ReadonlySet<string> = new Set()): Array<[string, string]> {
  const named = connectionTokens(rawHeaders);
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    const lower = asciiLower(name);
    if (keep.has(lower)) { out.push([name, rawHeaders[i + 1] as string]); continue; }
    if (dropped(lower, named) || STEERING.has(lower)) continue;
    out.push([name, rawHeaders[i + 1] as string]);
  }
  return out;
}

/** Response headers (undici's object form) to relay to the client, flattened for writeHead. */
export function relayableResponseHeaders(headers: Record<string, string | string[] | undefined>): string[] {
  const named = new Set<string>();
  const conn = headers['connection'];
  for (const v of Array.isArray(conn) ? conn : conn ? [conn] : []) {
    for (const tok of v.split(',')) named.add(asciiLower(tok.trim()));
  }
  const out: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const lower = asciiLower(name);
    if (dropped(lower, named)) continue;
    if (Array.isArray(value)) for (const v of value) out.push(name, v);
    else out.push(name, value);
  }
  return out;
}

export function headerValues(headers: ReadonlyArray<readonly [string, string]>, lowerName: string): string[] {
  const out: string[] = [];
  for (const [n, v] of headers) if (asciiLower(n) === lowerName) out.push(v);
  return out;
}

export function rawHeaderValues(rawHeaders: readonly string[], lowerName: string): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) if (asciiLower(rawHeaders[i] as string) === lowerName) out.push(rawHeaders[i + 1] as string);
  return out;
}

/**
 * A raw response head as an upstream sent it (status line and header lines, each ending in CRLF,
 * without the blank line), for the paths that relay bytes rather than parsed headers (a WebSocket
 * upgrade's answer): drops the gateway's X-Tollgate-* lines and every Proxy-* line, with their
 * obs-fold continuations. Framing and upgrade headers stay: the bytes after the head depend on them.
 */
export function relayableRawHead(head: string): string {
  const lines = head.split('\r\n');
  const out: string[] = [];
  let dropping = false;
  for (const [i, line] of lines.entries()) {
    if (i > 0 && (line.startsWith(' ') || line.startsWith('\t'))) {
      if (!dropping) out.push(line);
      continue;
    }
    const colon = line.indexOf(':');
    const lower = i === 0 || colon < 0 ? '' : asciiLower(line.slice(0, colon).trim());
    dropping = gatewayOwned(lower);
    if (!dropping) out.push(line);
  }
  return out.join('\r\n');
}
