// Test-only raw socket client: sends exact bytes (no HTTP library to "fix" them) and returns
// everything received until the peer closes or the time limit passes.
import net from 'node:net';
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
