// Owns: the HTTP client for the gateway's own calls out — the identity provider (discovery, signing
// keys, token exchanges) and alert webhooks. They leave the way proxied traffic does, through the
// same dialer (connector.ts): `upstream_proxy` when one is set, TLS verified against the same trust
// (Node's bundled roots, the system bundle, `tls.upstream_ca`), the same connect deadline — so an
// on-premises IdP behind a corporate proxy and with a company CA works without a second
// configuration.
import { Agent, fetch as undiciFetch, type Dispatcher } from 'undici';
import type { FetchLike } from '../identity/oidc/fetch-json.ts';
import { dial, type DialOptions } from './connector.ts';

export function createOutboundDispatcher(dialOptions: DialOptions): Dispatcher {
  return new Agent({
    keepAliveTimeout: 10_000,
    connect: (o, cb) => {
      const overTls = o.protocol === 'https:';
      const host = o.hostname.replace(/^\[|\]$/g, '');
      // operator-configured hosts: dialled by name (the proxy, or the system resolver, resolves it)
      dial({ address: host, port: Number(o.port) || (overTls ? 443 : 80), servername: o.servername || host, tls: overTls }, dialOptions)
        .then((socket) => cb(null, socket), (err: Error) => cb(err, null));
    },
  });
}

/** `fetch` over `dispatcher` (the shape the OIDC client takes). */
export function fetchVia(dispatcher: Dispatcher): FetchLike {
  return async (input, init) => {
    // undici's own fetch: the global one is a different undici build and cannot take this dispatcher.
    const res = await undiciFetch(input, { ...(init as Parameters<typeof undiciFetch>[1]), dispatcher });
    return res as unknown as Response;
  };
}
