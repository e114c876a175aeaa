// Test-only raw socket client: sends exact bytes (no HTTP library to "fix" them) and returns
// everything received until the peer closes or the time limit passes.
import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';

export function rawExchange(port: number, bytes: string | Buffer, opts: { waitMs?: number; host?: string } = {}): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const sock = net.connect({ host: opts.host ?? '127.0.0.1', port });
    let closed = false;
    const done = () => resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    const timer = setTimeout(() => { sock.destroy(); done(); }, opts.waitMs ?? 1500);
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', () => undefined);
    sock.on('close', () => { closed = true; clearTimeout(timer); done(); });
    sock.write(bytes);
  });
}

/** Opens a CONNECT tunnel and returns the raw socket after the 200 (or throws with the status line). */
export function openTunnel(proxyPort: number, authority: string, headers: Record<string, string> = {}): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port: proxyPort });
    let buf = Buffer.alloc(0);
    sock.on('error', reject);
    sock.on('connect', () => {
      let head = `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n`;
      for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
      sock.write(head + '\r\n');
    });
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      sock.off('data', onData);
      const status = buf.subarray(0, end).toString('latin1');
      if (!/^HTTP\/1\.1 200/.test(status)) {
        sock.destroy();
        reject(new Error(`tunnel refused: ${status.split('\r\n')[0]} :: ${buf.subarray(end + 4).toString('latin1')}`));
        return;
      }
      resolve(sock);
    };
    sock.on('data', onData);
  });
}

/** TLS over an open tunnel, trusting `caPem`; `servername` defaults to the host part. */
export function tlsOverTunnel(sock: net.Socket, caPem: string, servername: string | undefined, alpn: string[] = ['http/1.1']): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const t = tls.connect({ socket: sock, ca: caPem, ...(servername === undefined ? {} : { servername }), ALPNProtocols: alpn, checkServerIdentity: () => undefined });
    t.once('secureConnect', () => resolve(t));
    t.once('error', reject);
  });
}

/** Sends bytes on an established (TLS) socket and collects the answer until close or timeout. */
export function exchangeOn(sock: net.Socket, bytes: string, waitMs = 1500): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => { sock.destroy(); resolve(Buffer.concat(chunks).toString('latin1')); }, waitMs);
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', () => undefined);
    sock.on('close', () => { clearTimeout(timer); resolve(Buffer.concat(chunks).toString('latin1')); });
    sock.write(bytes);
  });
}

export interface Collected {
  text: string;
  /** The peer closed (or reset) the connection before the time limit. */
  closed: boolean;
}

// A reset is seen as the close that follows it. One no-op listener per socket, however many
// collect() calls it sees (a listener per call piled up past Node's warning limit on kept-alive
// sockets), and it stays between calls: a reset while no call is waiting must not throw.
const ignoring = new WeakSet<net.Socket>();
function ignoreErrors(sock: net.Socket): void {
  if (ignoring.has(sock)) return;
  ignoring.add(sock);
  sock.on('error', () => undefined);
}

/**
 * Writes `bytes` (or nothing) on an open socket and collects what comes back until the peer
 * closes, `until(text)` holds, or `waitMs` passes. The socket is left open unless it timed out.
 */
export function collect(sock: net.Socket, bytes: string | Buffer | undefined, opts: { waitMs?: number; until?: (text: string) => boolean; destroyOnTimeout?: boolean } = {}): Promise<Collected> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const text = () => Buffer.concat(chunks).toString('latin1');
    const finish = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('close', onClose);
      resolve({ text: text(), closed });
    };
    const onData = (c: Buffer) => {
      chunks.push(c);
      if (opts.until?.(text())) finish(false);
    };
    const onClose = () => finish(true);
    const timer = setTimeout(() => {
      if (opts.destroyOnTimeout ?? true) sock.destroy();
      finish(false);
    }, opts.waitMs ?? 2000);
    sock.on('data', onData);
    ignoreErrors(sock);
    sock.once('close', onClose);
    if (sock.destroyed) { finish(true); return; }
    if (bytes !== undefined && bytes.length > 0) sock.write(bytes);
  });
}

/** A raw exchange on a fresh connection that stops early once `until` holds (see `collect`). */
export function rawSend(port: number, bytes: string | Buffer, opts: { waitMs?: number; until?: (text: string) => boolean } = {}): Promise<Collected> {
  const sock = net.connect({ host: '127.0.0.1', port });
  sock.on('error', () => undefined);
  return collect(sock, bytes, opts).finally(() => sock.destroy());
}

export interface ParsedResponse {
  status: number;
  reason: string;
  headers: Record<string, string>;
  body: string;
}

/**
 * Parses consecutive HTTP/1.1 responses from what a raw client received (Content-Length,
 * chunked, or read-to-close bodies; 1xx, 204 and 304 without a body). Stops at the first
 * incomplete response.
 */
export function parseResponses(text: string): ParsedResponse[] {
  const out: ParsedResponse[] = [];
  let pos = 0;
  for (let guard = 0; guard < 1000 && pos < text.length; guard++) {
    const end = text.indexOf('\r\n\r\n', pos);
    if (end === -1) break;
    const lines = text.slice(pos, end).split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(lines[0] ?? '');
    if (!m) break;
    const status = Number(m[1]);
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const c = l.indexOf(':');
      if (c > 0) headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
    }
    let bodyStart = end + 4;
    let body = '';
    // 1xx, 204, 304 and a CONNECT's 2xx ("Connection Established") have no body.
    if (status < 200 || status === 204 || status === 304 || (status < 300 && /connection established/i.test(m[2] ?? '') && headers['content-length'] === undefined)) {
      body = '';
    } else if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      if (text.length < bodyStart + n) break;
      body = text.slice(bodyStart, bodyStart + n);
      bodyStart += n;
    } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      let p = bodyStart;
      let complete = false;
      for (let g = 0; g < 100_000; g++) {
        const le = text.indexOf('\r\n', p);
        if (le === -1) break;
        const size = parseInt(text.slice(p, le), 16);
        if (Number.isNaN(size)) break;
        if (size === 0) {
          const te = text.indexOf('\r\n\r\n', le);
          if (te === -1) break;
          p = te + 4;
          complete = true;
          break;
        }
        body += text.slice(le + 2, le + 2 + size);
        p = le + 2 + size + 2;
      }
      if (!complete) break;
      bodyStart = p;
    } else {
      body = text.slice(bodyStart);
      bodyStart = text.length;
    }
    out.push({ status, reason: m[2] ?? '', headers, body });
    pos = bodyStart;
  }
  return out;
}

/** True once `n` complete final (non-1xx) responses are in `text`. */
export function hasResponses(n: number): (text: string) => boolean {
  return (text) => parseResponses(text).filter((r) => r.status >= 200).length >= n;
}

/**
 * CONNECT with a TLS ClientHello in the same TCP write as the CONNECT head (security case 1.09 B).
 * Resolves with the TLS socket once the handshake over the tunnel succeeds.
 */
export function connectWithEarlyClientHello(proxyPort: number, authority: string, headers: Record<string, string>, caPem: string, servername: string): Promise<{ tls: tls.TLSSocket; connectStatus: string; firstWriteBytes: number }> {
  return new Promise((resolve, reject) => {
    const raw = net.connect({ host: '127.0.0.1', port: proxyPort });
    let head = `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n`;
    for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
    head += '\r\n';
    let sentFirst = false;
    let firstWriteBytes = 0;
    let connectStatus = '';
    let buf = Buffer.alloc(0);
    let established = false;
    const duplex = new Duplex({
      read() {},
      write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void) {
        if (!sentFirst) {
          sentFirst = true;
          const first = Buffer.concat([Buffer.from(head, 'latin1'), chunk]);
          firstWriteBytes = first.length;
          raw.write(first);
        } else raw.write(chunk);
        cb();
      },
      final(cb: () => void) { raw.end(); cb(); },
      destroy(err: Error | null, cb: (err: Error | null) => void) { raw.destroy(); cb(err); },
    });
    raw.on('data', (c: Buffer) => {
      if (established) { duplex.push(c); return; }
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      connectStatus = buf.subarray(0, end).toString('latin1').split('\r\n')[0] ?? '';
      established = true;
      const rest = buf.subarray(end + 4);
      if (rest.length) duplex.push(rest);
    });
    raw.on('end', () => duplex.push(null));
    raw.on('error', (e) => duplex.destroy(e));
    const t = tls.connect({ socket: duplex as unknown as net.Socket, ca: caPem, servername, ALPNProtocols: ['http/1.1'] });
    t.once('secureConnect', () => resolve({ tls: t, connectStatus, firstWriteBytes }));
    t.once('error', (e) => reject(Object.assign(e, { connectStatus })));
  });
}
