// Owns: turning a parsed request head (plain absolute-form, or origin-form inside a tunnel)
// into the canonical facts of an Exchange — or a refusal. Host/URL/path parsing is delegated to
// the pure classifiers; this module only applies the proxy's rules on top of them.
import type { IncomingMessage } from 'node:http';
import { checkRequestFraming } from '../classify/request-framing.ts';
import { normalizePath } from '../classify/normalize-path.ts';
import { parseAbsoluteUrl, parseHostHeader } from '../classify/parse-target.ts';
import { RequestRefusal } from '../errors.ts';
import type { Exchange, TunnelContext } from './exchange.ts';
import { forwardableRequestHeaders, rawHeaderValues } from './header-filter.ts';

export interface RequestFacts {
  scheme: 'http' | 'https';
  host: string;
  hostKind: Exchange['hostKind'];
  port: number;
  path: string;
  query: string;
  headers: Array<[string, string]>;
  proxyAuthorization: string[];
  hasBody: boolean;
  expectContinue: boolean;
}

function splitOriginForm(url: string): { rawPath: string; query: string } {
  const q = url.indexOf('?');
  const rawPath = q === -1 ? url : url.slice(0, q);
  const query = q === -1 ? '' : url.slice(q + 1);
  return { rawPath, query };
}

export function requestFacts(req: IncomingMessage, tunnel: TunnelContext | undefined, tunnelScheme: 'http' | 'https' = 'https'): RequestFacts {
  const framing = checkRequestFraming(req.rawHeaders, req.httpVersion);
  if (!framing.ok) throw new RequestRefusal(framing.reason, `Bad request: ${framing.message}.`);
  const url = req.url ?? '';
  if (url.includes('#')) throw new RequestRefusal('malformed_request', 'Bad request: the request target contains a fragment.');
  let scheme: 'http' | 'https';
  let host: string;
  let hostKind: Exchange['hostKind'];
  let port: number;
  let rawPath: string;
  let query: string;
  if (tunnel) {
    scheme = tunnelScheme;
    if (url.startsWith('/')) {
      ({ rawPath, query } = splitOriginForm(url));
    } else {
      const abs = parseAbsoluteUrl(url);
      if (!abs.ok) throw new RequestRefusal('malformed_request', `Bad request: ${abs.message}.`);
      if (abs.host !== tunnel.host || abs.port !== tunnel.port) {
        throw new RequestRefusal('host_mismatch', `The request names ${abs.host}:${abs.port}, but this tunnel was opened to ${tunnel.host}:${tunnel.port}.`);
      }
      ({ rawPath, query } = abs);
    }
    host = tunnel.host;
    hostKind = tunnel.hostKind;
    port = tunnel.port;
    if (framing.host !== undefined) {
      const h = parseHostHeader(framing.host);
      const defaultPort = scheme === 'https' ? 443 : 80;
      if (!h.ok || h.host !== tunnel.host || (h.port ?? defaultPort) !== tunnel.port) {
        throw new RequestRefusal('host_mismatch', `The Host header does not match the tunnel (${tunnel.host}:${tunnel.port}).`);
      }
    }
  } else {
    if (url.startsWith('/') || url === '*') {
      throw new RequestRefusal('malformed_request', 'Bad request: this is a forward proxy; send absolute-form requests (http://host/path) or use CONNECT.');
    }
    const abs = parseAbsoluteUrl(url);
    if (!abs.ok) throw new RequestRefusal('malformed_request', `Bad request: ${abs.message}.`);
    if (abs.scheme !== 'http' && abs.scheme !== 'https') throw new RequestRefusal('malformed_request', `Bad request: ${abs.scheme}: URLs are only valid for WebSocket upgrades.`);
    scheme = abs.scheme;
    host = abs.host;
    hostKind = abs.kind;
    port = abs.port;
    ({ rawPath, query } = abs);
    if (framing.host !== undefined) {
      const h = parseHostHeader(framing.host);
      if (!h.ok || h.host !== host || (h.port ?? (scheme === 'https' ? 443 : 80)) !== port) {
        throw new RequestRefusal('host_mismatch', `The Host header does not match the request URL (${host}:${port}).`, { status: 400 });
      }
    }
  }
  const norm = normalizePath(rawPath);
  if (!norm.ok) throw new RequestRefusal('malformed_request', `Bad request: ${norm.message}.`);
  const hasBody = framing.chunked || (framing.contentLength ?? 0) > 0;
  return {
    scheme,
    host,
    hostKind,
    port,
    path: norm.path,
    query,
    headers: forwardableRequestHeaders(req.rawHeaders),
    proxyAuthorization: tunnel ? tunnel.proxyAuthorization : rawHeaderValues(req.rawHeaders, 'proxy-authorization'),
    hasBody,
    expectContinue: framing.expectContinue,
  };
}
