// Owns: the request `tollgate setup --check` sends through the gateway, as a client configured by
// `tollgate env` would: CONNECT to the probe host with the proxy URL's credentials, TLS inside
// the tunnel verified with the client's CA file (so interception is trusted only if the file holds
// Tollgate's CA), then one GET. It records what each step saw (status, X-Request-Id, reason),
// never the token. The probe host is reserved (.invalid): no policy allows it, so the gateway
// answers the request itself with a readable, audited 403 and nothing leaves for the Internet.
import net from 'node:net';
import tls from 'node:tls';

export const PROBE_HOST = 'tollgate-setup-check.invalid';

export interface ProbeAnswer {
  status: number;
  requestId: string | undefined;
  reason: string | undefined;
}

export interface ProbeResult {
  /** TCP to the proxy: undefined when it connected, else the error code. */
  unreachable: string | undefined;
  /** The answer to CONNECT. */
  connect: ProbeAnswer | undefined;
  /** TLS inside the tunnel (after a 200): undefined when it was not tried, else ok or the error code. */
  tls: { ok: true } | { ok: false; error: string } | undefined;
  /** The answer to the GET inside the tunnel. */
  inner: ProbeAnswer | undefined;
  /** What stopped the probe early (timeout, closed connection), when something did. */
  error: string | undefined;
}

export interface ProbeOptions {
  proxy: { host: string; port: number };
  /** Proxy user and password as the client sends them (decoded). */
  username: string;
  password: string;
  /** CA certificates (PEM) the TLS check trusts. */
  ca: string | string[];
  host?: string;
  timeoutMs?: number;
}

function parseHead(head: string): ProbeAnswer {
  const lines = head.split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
  const header = (name: string) => {
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      if (i > 0 && l.slice(0, i).trim().toLowerCase() === name) return l.slice(i + 1).trim();
    }
    return undefined;
  };
  return { status, requestId: header('x-request-id'), reason: header('x-tollgate-reason') };
}

/** Resolves with the response head (up to the blank line) read from `sock`. */
function readHead(sock: net.Socket, deadline: number): Promise<ProbeAnswer> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => done(new Error('timeout waiting for the gateway to answer')), Math.max(1, deadline - Date.now()));
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf('\r\n\r\n');
      if (end >= 0) done(undefined, parseHead(buf.subarray(0, end).toString('latin1')));
      else if (buf.length > 65_536) done(new Error('the answer head is larger than 64 KiB'));
    };
    const onClose = () => done(new Error('the gateway closed the connection without an answer'));
    const onError = (e: Error) => done(e);
    function done(err: Error | undefined, answer?: ProbeAnswer) {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('close', onClose);
      sock.off('error', onError);
      if (err) reject(err);
      else resolve(answer as ProbeAnswer);
    }
    sock.on('data', onData);
    sock.once('close', onClose);
    sock.once('error', onError);
  });
}

function connectTcp(host: string, port: number, deadline: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port });
    const timer = setTimeout(() => { sock.destroy(); reject(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })); }, Math.max(1, deadline - Date.now()));
    sock.once('connect', () => { clearTimeout(timer); resolve(sock); });
    sock.once('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

function startTls(sock: net.Socket, servername: string, ca: string | string[], deadline: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const t = tls.connect({ socket: sock, servername, ca, rejectUnauthorized: true, ALPNProtocols: ['http/1.1'] });
    const timer = setTimeout(() => { t.destroy(); reject(Object.assign(new Error('TLS handshake timeout'), { code: 'ETIMEDOUT' })); }, Math.max(1, deadline - Date.now()));
    t.once('secureConnect', () => { clearTimeout(timer); resolve(t); });
    t.once('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

const codeOf = (e: unknown) => (e as NodeJS.ErrnoException).code ?? (e as Error).message;

export async function probeGateway(opts: ProbeOptions): Promise<ProbeResult> {
  const host = opts.host ?? PROBE_HOST;
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  const result: ProbeResult = { unreachable: undefined, connect: undefined, tls: undefined, inner: undefined, error: undefined };
  let sock: net.Socket;
  try {
    sock = await connectTcp(opts.proxy.host, opts.proxy.port, deadline);
  } catch (err) {
    result.unreachable = codeOf(err);
    return result;
  }
  let inner: tls.TLSSocket | undefined;
  try {
    const auth = Buffer.from(`${opts.username}:${opts.password}`).toString('base64');
    sock.write(`CONNECT ${host}:443 HTTP/1.1\r\nHost: ${host}:443\r\nProxy-Authorization: Basic ${auth}\r\nUser-Agent: tollgate-setup-check\r\n\r\n`);
    result.connect = await readHead(sock, deadline);
    if (result.connect.status !== 200) return result;
    try {
      inner = await startTls(sock, host, opts.ca, deadline);
      result.tls = { ok: true };
    } catch (err) {
      result.tls = { ok: false, error: codeOf(err) };
      return result;
    }
    inner.write(`GET / HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: tollgate-setup-check\r\nConnection: close\r\n\r\n`);
    result.inner = await readHead(inner, deadline);
    return result;
  } catch (err) {
    result.error = (err as Error).message;
    return result;
  } finally {
    inner?.destroy();
    sock.destroy();
  }
}
