// A corporate forward proxy on loopback, for `upstream_proxy` tests: it answers CONNECT only (like
// Squid in front of an egress firewall), optionally over TLS, optionally demanding Basic
// credentials, records every tunnel it was asked for, and splices accepted tunnels to the target.
import net from 'node:net';
import tls from 'node:tls';

export interface ProxyAsk {
  /** The CONNECT authority, as sent. */
  authority: string;
  /** Proxy-Authorization, as sent (undefined when absent). */
  proxyAuthorization: string | undefined;
  /** The status the proxy answered. */
  status: number;
  /** Request lines seen inside an accepted tunnel (readable when the tunnel carries plain HTTP). */
  requests?: string[];
}

export interface CorporateProxy {
  port: number;
  url: (credentials?: string) => string;
  asks: ProxyAsk[];
  close(): Promise<void>;
}

export interface CorporateProxyOptions {
  /** Expected Proxy-Authorization value; anything else gets 407. */
  requireAuthorization?: string;
  /** Answer every CONNECT with this status (e.g. 403) instead of tunnelling. */
  refuseWith?: number;
  /** Serve the proxy itself over TLS (an https:// upstream_proxy). */
  tls?: { certPem: string; keyPem: string };
  /** Read the CONNECT, then hang up without a word (`close`) or never answer (`silent`). */
  misbehave?: 'close' | 'silent';
}

export async function startCorporateProxy(o: CorporateProxyOptions = {}): Promise<CorporateProxy> {
  const asks: ProxyAsk[] = [];
  const sockets = new Set<net.Socket>();
  const onClient = (client: net.Socket) => {
    sockets.add(client);
    client.once('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > 16_384) client.destroy();
        return;
      }
      client.off('data', onData);
      const lines = head.subarray(0, end).toString('latin1').split('\r\n');
      const rest = head.subarray(end + 4);
      const [method, authority = ''] = (lines[0] ?? '').split(' ');
      const auth = lines.find((l) => /^proxy-authorization:/i.test(l))?.replace(/^proxy-authorization:\s*/i, '');
      const answer = (status: number, text: string) => {
        asks.push({ authority, proxyAuthorization: auth, status });
        client.end(`HTTP/1.1 ${status} ${text}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
      };
      if (o.misbehave === 'close') {
        asks.push({ authority, proxyAuthorization: auth, status: 0 });
        client.destroy();
        return;
      }
      if (o.misbehave === 'silent') {
        asks.push({ authority, proxyAuthorization: auth, status: 0 });
        return;
      }
      if (method !== 'CONNECT') return answer(405, 'Method Not Allowed');
      if (o.requireAuthorization !== undefined && auth !== o.requireAuthorization) return answer(407, 'Proxy Authentication Required');
      if (o.refuseWith !== undefined) return answer(o.refuseWith, 'Refused');
      const at = authority.lastIndexOf(':');
      const host = authority.slice(0, at).replace(/^\[|\]$/g, '');
      const upstream = net.connect({ host, port: Number(authority.slice(at + 1)) });
      sockets.add(upstream);
      upstream.once('close', () => { sockets.delete(upstream); client.destroy(); });
      upstream.once('error', () => {
        if (!client.destroyed) answer(502, 'Bad Gateway');
      });
      upstream.once('connect', () => {
        const requests: string[] = [];
        asks.push({ authority, proxyAuthorization: auth, status: 200, requests });
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        const readLines = (c: Buffer) => {
          for (const m of c.toString('latin1').matchAll(/^(?:GET|POST|PUT|DELETE|HEAD|PATCH) \S+ HTTP\/1\.[01]$/gm)) requests.push(m[0]);
        };
        client.on('data', readLines);
        if (rest.length > 0) {
          readLines(rest);
          upstream.write(rest);
        }
        client.pipe(upstream);
        upstream.pipe(client);
      });
      client.once('close', () => upstream.destroy());
    };
    client.on('data', onData);
  };
  const server = o.tls ? tls.createServer({ cert: o.tls.certPem, key: o.tls.keyPem }, onClient) : net.createServer(onClient);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    url: (credentials) => `${o.tls ? 'https' : 'http'}://${credentials ? `${credentials}@` : ''}127.0.0.1:${port}`,
    asks,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
