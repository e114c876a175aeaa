// Owns: the HTTP client for the gateway's own calls out — the identity provider (discovery, signing
// keys, token exchanges) and alert webhooks. They leave the way proxied traffic does: through
// `upstream_proxy` when one is set, with TLS verified against the same trust (Node's bundled roots,
// the system bundle, `tls.upstream_ca`), so an on-premises IdP behind a corporate proxy and with a
// company CA works without a second configuration.
import type tls from 'node:tls';
import { Agent, ProxyAgent, fetch as undiciFetch, type Dispatcher } from 'undici';
import { proxyAuthorization } from './connector.ts';

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
  // Proxy-Authorization built as proxied traffic builds it (ProxyAgent itself skips a user name
  // without a password); an https:// proxy is itself verified against the same trust.
  const url = new URL(o.upstreamProxy);
  const auth = proxyAuthorization(url);
  url.username = '';
  url.password = '';
  return new ProxyAgent({ uri: url.href, ...(auth ? { token: auth } : {}), requestTls: verify, proxyTls: verify, connect: { timeout: o.connectTimeoutMs } });
}

/**
 * Closes `dispatcher`, waiting at most `graceMs` for calls in flight: a CONNECT a stalled proxy
 * never answers would otherwise hold shutdown until undici's own 300 s timeout.
 */
export async function closeOutbound(dispatcher: Dispatcher, graceMs = 1000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((r) => { timer = setTimeout(() => r('late'), graceMs); });
  const closed = dispatcher.close().then(() => 'closed' as const, () => 'closed' as const);
  const first = await Promise.race([closed, late]);
  clearTimeout(timer);
  if (first === 'late') await dispatcher.destroy().catch(() => undefined);
}

/** `fetch` over `dispatcher` (the shape the OIDC client takes). */
export function fetchVia(dispatcher: Dispatcher): (input: string, init?: RequestInit) => Promise<Response> {
  return async (input, init) => {
    // undici's own fetch: the global one is a different undici build and cannot take this dispatcher.
    const res = await undiciFetch(input, { ...(init as Parameters<typeof undiciFetch>[1]), dispatcher });
    return res as unknown as Response;
  };
}
