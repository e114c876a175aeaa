// Owns: a hand-rolled CONNECT + TLS client with per-phase timings (CONNECT answered, TLS
// handshake done, response read). Used where the phases matter (leaf minting, interception
// probe) or where many idle connections must be held open (memory per connection).
import net from 'node:net';
import tls from 'node:tls';
import { ProxyRefusedError } from './failures.ts';

export interface TunnelTimings { connectMs: number; handshakeMs: number; requestMs: number; totalMs: number }

export interface OpenTunnel {
  socket: tls.TLSSocket;
  timings: TunnelTimings;
}

/** Sends CONNECT host:port to the proxy; resolves with the raw socket once 200 arrives. */
export function connectThrough(proxyPort: number, host: string, port: number, proxyAuthorization: string | undefined): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port: proxyPort, noDelay: true });
    let buf: Buffer = Buffer.alloc(0);
    const fail = (e: Error) => { sock.destroy(); reject(e); };
    sock.once('error', fail);
    sock.once('connect', () => {
      sock.write(`CONNECT ${host}:${port} HTTP/1.1\r\nHost: ${host}:${port}\r\n${proxyAuthorization ? `Proxy-Authorization: ${proxyAuthorization}\r\n` : ''}\r\n`);
    });
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      sock.off('data', onData);
      sock.off('error', fail);
      sock.pause();
      const head = buf.subarray(0, end).toString('latin1');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
      if (status !== 200) {
        sock.destroy();
        const decision = /x-tollgate-(?:decision|reason): [^\r\n]*/gi.exec(head)?.[0];
        reject(status === 407 || status === 403 ? new ProxyRefusedError(status, `CONNECT ${host}:${port}${decision ? `, ${decision}` : ''}`) : new Error(`CONNECT ${host}:${port} answered ${status || 'garbage'}`));
        return;
      }
      const rest = buf.subarray(end + 4);
      if (rest.length) sock.unshift(rest);
      resolve(sock);
    };
    sock.on('data', onData);
  });
}

/** Reads one HTTP/1.1 response with Content-Length from `s`; resolves with status and body length. */
export function readResponse(s: tls.TLSSocket): Promise<{ status: number; bodyBytes: number; headers: string }> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    let headerEnd = -1;
    let want = -1;
    let status = 0;
    let headers = '';
    const cleanup = () => { s.off('data', onData); s.off('error', onErr); s.off('end', onEnd); };
    const onErr = (e: Error) => { cleanup(); reject(e); };
    const onEnd = () => { cleanup(); reject(new Error('connection closed before the response ended')); };
    const onData = (c: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, c]) : c;
      if (headerEnd === -1) {
        headerEnd = buf.indexOf('\r\n\r\n');
        if (headerEnd === -1) return;
        headers = buf.subarray(0, headerEnd).toString('latin1');
        status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(headers)?.[1] ?? 0);
        const cl = /\r\ncontent-length:\s*(\d+)/i.exec(headers);
        if (!cl) { cleanup(); reject(new Error(`response without Content-Length (status ${status})`)); return; }
        want = Number(cl[1]);
      }
      const have = buf.length - headerEnd - 4;
      if (have >= want) { cleanup(); resolve({ status, bodyBytes: have, headers }); }
    };
    s.on('data', onData);
    s.once('error', onErr);
    s.once('end', onEnd);
  });
}

/** CONNECT, TLS handshake (SNI = host, trusting `ca`), then one keep-alive GET unless told not to. */
export async function openTlsTunnel(o: {
  proxyPort: number; host: string; port?: number; ca: string[]; proxyAuthorization: string | undefined; path?: string;
  sendRequest?: boolean;
}): Promise<OpenTunnel> {
  const t0 = performance.now();
  const raw = await connectThrough(o.proxyPort, o.host, o.port ?? 443, o.proxyAuthorization);
  const t1 = performance.now();
  const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
    const s = tls.connect({ socket: raw, servername: o.host, ca: o.ca, ALPNProtocols: ['http/1.1'] });
    s.once('secureConnect', () => { s.off('error', reject); resolve(s); });
    s.once('error', (e) => { raw.destroy(); reject(e); });
    raw.resume();
  });
  const t2 = performance.now();
  if (o.sendRequest !== false) {
    socket.write(`GET ${o.path ?? '/1k'} HTTP/1.1\r\nHost: ${o.host}\r\n\r\n`);
    const r = await readResponse(socket);
    if (r.status !== 200) {
      socket.destroy();
      const decision = /x-tollgate-decision: [^\r\n]*/i.exec(r.headers)?.[0];
      if (r.status === 407 || (r.status === 403 && decision)) throw new ProxyRefusedError(r.status, `GET https://${o.host}${o.path ?? '/1k'} inside the tunnel${decision ? `, ${decision}` : ''}`);
      throw new Error(`GET https://${o.host}${o.path ?? '/1k'} answered ${r.status}`);
    }
  }
  const t3 = performance.now();
  return {
    socket,
    timings: { connectMs: t1 - t0, handshakeMs: t2 - t1, requestMs: t3 - t2, totalMs: t3 - t0 },
  };
}

/** Sends one keep-alive GET on an open tunnel and reads the response. */
export async function getOnTunnel(socket: tls.TLSSocket, host: string, path = '/1k'): Promise<void> {
  socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
  const r = await readResponse(socket);
  if (r.status !== 200) throw new Error(`GET https://${host}${path} answered ${r.status}`);
}

/** Whether a tunnel to `host` is intercepted: the certificate seen does not verify against the upstream CA. */
export async function probeInterception(o: { proxyPort: number; host: string; upstreamCa: string; gatewayCa: string; proxyAuthorization: string | undefined }): Promise<{ intercepted: boolean; issuer: string }> {
  const raw = await connectThrough(o.proxyPort, o.host, 443, o.proxyAuthorization);
  return new Promise((resolve, reject) => {
    const s = tls.connect({ socket: raw, servername: o.host, ca: [o.upstreamCa], rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
    s.once('secureConnect', () => {
      const issuer = s.getPeerCertificate().issuer?.CN ?? '?';
      const intercepted = !s.authorized;
      s.destroy();
      resolve({ intercepted, issuer: String(issuer) });
    });
    s.once('error', (e) => { raw.destroy(); reject(e); });
    raw.resume();
  });
}
