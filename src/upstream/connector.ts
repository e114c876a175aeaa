// Owns: opening the socket to the one address that was checked — directly or through a
// corporate upstream proxy (HTTP CONNECT) — and the TLS handshake with the real host name as SNI
// and verification against the system CAs plus `tls.upstream_ca`, or, for a host of an org.yaml
// connection with its own `ca:`, against exactly that CA (connection-trust.ts).
import net from 'node:net';
import tls from 'node:tls';

/**
 * How much an upstream socket buffers before it asks its writer to wait (default 16 KiB). A request
 * body arrives in TLS records of 16 KiB: with the default, every record filled the buffer, paused
 * the client's stream until 'drain', and uploads crawled at one record per loop turn. Still a
 * bound: a 1 GiB upload never holds more than this (plus one record) in memory.
 */
const UPSTREAM_HIGH_WATER_MARK = 256 * 1024;
// documented for tls.connect (Node ≥ 12) and taken by net.Socket (it hands its options to
// stream.Duplex); not in @types/node's option types
const BUFFERING = { highWaterMark: UPSTREAM_HIGH_WATER_MARK } as object;

export interface DialTarget {
  /** The vetted IP address to dial (for the gateway's own calls out, outbound-dispatcher.ts: the configured host name). */
  address: string;
  port: number;
  /** The real host name: SNI and certificate identity. */
  servername: string;
  tls: boolean;
}

/** The trust one TLS connection is verified with; `key` tells pools with different trust apart. */
export interface UpstreamTrustChoice {
  readonly key: string;
  readonly context: tls.SecureContext | undefined;
  /** Set when the pinned CA cannot be used (unreadable since start): the dial fails closed. */
  readonly failure?: string;
}

export interface DialOptions {
  connectTimeoutMs: number;
  /** Built once (parsing hundreds of CA certificates per connection costs ~100 ms of CPU). */
  trust: tls.SecureContext | undefined;
  /** Trust pinned for a host (a connection's own CA), or undefined for `trust`. */
  pinnedTrust?: ((servername: string) => UpstreamTrustChoice | undefined) | undefined;
  upstreamProxy: URL | undefined;
  /** ALPN to offer upstream; http/1.1 for HTTP forwarding, none for raw tunnels. */
  alpn?: string[];
}

function isIp(s: string): boolean {
  return net.isIP(s) !== 0;
}

/**
 * A socket to `address:port` through the corporate proxy (HTTP CONNECT). An https:// proxy is
 * reached over TLS, verified against the upstream trust like any upstream.
 */
function viaProxy(proxy: URL, address: string, port: number, timeoutMs: number, trust: tls.SecureContext | undefined): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const overTls = proxy.protocol === 'https:';
    const proxyPort = Number(proxy.port || (overTls ? 443 : 80));
    const proxyHost = proxy.hostname.replace(/^\[|\]$/g, '');
    const sock = overTls
      ? tls.connect({
        host: proxyHost, port: proxyPort, rejectUnauthorized: true, ALPNProtocols: ['http/1.1'],
        ...(isIp(proxyHost) ? {} : { servername: proxyHost }),
        ...(trust ? { secureContext: trust } : {}),
        ...BUFFERING,
      })
      : net.connect({ host: proxyHost, port: proxyPort, ...BUFFERING });
    const authority = address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
    const named = `upstream proxy ${proxyHost}:${proxyPort}`; // never its credentials
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      reject(err);
    };
    // Settled here, not through the socket's 'error': a socket already closed emits nothing more.
    const timer = setTimeout(() => fail(Object.assign(new Error(`${named} did not set up the tunnel within ${timeoutMs} ms`), { code: 'TOLLGATE_UPSTREAM_PROXY_TIMEOUT' })), timeoutMs);
    // Name the proxy, not the upstream, as what failed.
    const onError = (e: NodeJS.ErrnoException) => fail(Object.assign(new Error(`${named} failed: ${e.code ?? e.message}`), { code: 'TOLLGATE_UPSTREAM_PROXY' }));
    // A proxy that hangs up without answering (some do on an auth or ACL failure)
    const onClose = () => fail(Object.assign(new Error(`${named} closed the connection without answering CONNECT`), { code: 'TOLLGATE_UPSTREAM_PROXY' }));
    sock.once('error', onError);
    sock.once('close', onClose);
    sock.once(overTls ? 'secureConnect' : 'connect', () => {
      let head = `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n`;
      const auth = proxyAuthorization(proxy);
      if (auth) head += `Proxy-Authorization: ${auth}\r\n`;
      sock.write(head + '\r\n');
    });
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) {
        if (buf.length > 16_384) fail(Object.assign(new Error(`${named} sent an oversized answer to CONNECT`), { code: 'TOLLGATE_UPSTREAM_PROXY' }));
        return;
      }
      sock.off('data', onData);
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(buf.subarray(0, end).toString('latin1'));
      if (!status || status[1] !== '200') {
        fail(Object.assign(new Error(`upstream proxy answered ${status?.[1] ?? 'garbage'} to CONNECT`), { code: 'TOLLGATE_UPSTREAM_PROXY' }));
        return;
      }
      settled = true;
      clearTimeout(timer);
      sock.off('error', onError);
      sock.off('close', onClose);
      const rest = buf.subarray(end + 4);
      if (rest.length) sock.unshift(rest);
      resolve(sock);
    };
    sock.on('data', onData);
  });
}

/** `Proxy-Authorization` for the proxy URL's credentials (a user name alone is sent too), or undefined. */
function proxyAuthorization(proxy: URL): string | undefined {
  if (!proxy.username && !proxy.password) return undefined;
  return `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')}`;
}

/** The upstream trust store as one reusable TLS context (TLS 1.2 at least). */
export function createUpstreamTrust(caPems: readonly string[]): tls.SecureContext {
  return tls.createSecureContext({ ca: caPems as string[], minVersion: 'TLSv1.2' });
}

/** The trust for TLS to `servername`: the host's pinned CA when it has one, else the shared trust. */
export function chooseTrust(servername: string, opts: Pick<DialOptions, 'trust' | 'pinnedTrust'>): UpstreamTrustChoice {
  return opts.pinnedTrust?.(servername) ?? { key: 'default', context: opts.trust };
}

/**
 * Dials the checked address; resolves once TCP (and TLS, when asked) is established. A pool passes
 * the `trust` it was keyed by, so every connection it holds was verified the same way.
 */
export async function dial(target: DialTarget, opts: DialOptions, trust?: UpstreamTrustChoice): Promise<net.Socket> {
  const choice = target.tls ? (trust ?? chooseTrust(target.servername, opts)) : undefined;
  if (choice?.failure !== undefined) {
    throw Object.assign(new Error(choice.failure), { code: 'ERR_TLS_PINNED_CA_UNAVAILABLE' });
  }
  const raw = opts.upstreamProxy ? await viaProxy(opts.upstreamProxy, target.address, target.port, opts.connectTimeoutMs, opts.trust) : undefined;
  return new Promise((resolve, reject) => {
    let socket: net.Socket;
    const timer = setTimeout(() => {
      socket.destroy(Object.assign(new Error(`connect timeout after ${opts.connectTimeoutMs} ms`), { code: 'TOLLGATE_CONNECT_TIMEOUT' }));
    }, opts.connectTimeoutMs);
    const fail = (e: Error) => { clearTimeout(timer); reject(e); };
    if (target.tls) {
      const servername = isIp(target.servername) ? undefined : target.servername;
      socket = tls.connect({
        ...(raw ? { socket: raw } : { host: target.address, port: target.port }),
        ...(servername === undefined ? {} : { servername }),
        ...(choice?.context ? { secureContext: choice.context } : {}),
        ALPNProtocols: opts.alpn ?? ['http/1.1'],
        rejectUnauthorized: true,
        ...BUFFERING,
        // verify against the real host name (or the IP literal when there is no name)
        checkServerIdentity: (_host, cert) => tls.checkServerIdentity(target.servername, cert),
      });
      socket.once('secureConnect', () => { clearTimeout(timer); socket.off('error', fail); resolve(socket); });
    } else if (raw) {
      clearTimeout(timer);
      resolve(raw);
      return;
    } else {
      socket = net.connect({ host: target.address, port: target.port, ...BUFFERING });
      socket.once('connect', () => { clearTimeout(timer); socket.off('error', fail); resolve(socket); });
    }
    socket.once('error', fail);
  });
}
