// Owns: the HTTP client for the gateway's own calls out — the identity provider (discovery, signing
// keys, token exchanges) and alert webhooks. They leave the way proxied traffic does: through
// `upstream_proxy` when one is set, with TLS verified against the same trust (Node's bundled roots,
// the system bundle, `tls.upstream_ca`), so an on-premises IdP behind a corporate proxy and with a
// company CA works without a second configuration.
import type tls from 'node:tls';
import { Agent, ProxyAgent, fetch as undiciFetch, type Dispatcher } from 'undici';

export interface OutboundOptions {
  /** `upstream_proxy` (http:// or https://, credentials allowed), or undefined to connect directly. */
  upstreamProxy: string | undefined;
  /** The upstream trust, built once (createUpstreamTrust). */
  trust: tls.SecureContext | undefined;
  connectTimeoutMs: number;
}

export function createOutboundDispatcher(o: OutboundOptions): Dispatcher {
  const verify = { ...(o.trust ? { secureContext: o.trust } : {}), timeout: o.connectTimeoutMs };
  if (!o.upstreamProxy) return new Agent({ connect: verify, keepAliveTimeout: 10_000 });
  // ProxyAgent sends the URL's user:password as Proxy-Authorization (Basic) on CONNECT; an https://
  // proxy is itself verified against the same trust.
  return new ProxyAgent({ uri: o.upstreamProxy, requestTls: verify, proxyTls: verify, connect: { timeout: o.connectTimeoutMs } });
}

/** `fetch` over `dispatcher` (the shape the OIDC client takes). */
export function fetchVia(dispatcher: Dispatcher): (input: string, init?: RequestInit) => Promise<Response> {
  return async (input, init) => {
    // undici's own fetch: the global one is a different undici build and cannot take this dispatcher.
    const res = await undiciFetch(input, { ...(init as Parameters<typeof undiciFetch>[1]), dispatcher });
    return res as unknown as Response;
  };
}
