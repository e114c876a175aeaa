// Test-only upstream origins: HTTP or HTTPS servers on loopback that record every request they
// receive (method, url, headers, body bytes) and answer with a programmable handler.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type net from 'node:net';

export interface SeenRequest {
  method: string;
  url: string;
  rawHeaders: string[];
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** The whole request (head and body) arrived; false while streaming or when it was aborted. */
  complete: boolean;
  /** The request's connection closed before the response was finished. */
  aborted: boolean;
}

export interface TestUpstream {
  port: number;
  seen: SeenRequest[];
  /** Connections that can carry HTTP (TCP accepts; for TLS, completed handshakes) — "nothing reached the upstream". */
  connections: number;
  /** Raw TCP accepts (for TLS upstreams this also counts handshakes that failed). */
  tcpConnections: number;
  /** Requests the upstream's own HTTP parser refused (bytes that arrived but were not a valid request). */
  clientErrors: number;
  server: http.Server;
  close(): Promise<void>;
}

export type UpstreamHandler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void | Promise<void>;

const echo: UpstreamHandler = (req, res, body) => {
  const text = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, bodyLength: body.length });
  res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'yes' });
  res.end(text);
};

export async function startUpstream(opts: { tls?: { certPem: string; keyPem: string }; handler?: UpstreamHandler; streamBody?: boolean } = {}): Promise<TestUpstream> {
  const seen: SeenRequest[] = [];
  const handler = opts.handler ?? echo;
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const record: SeenRequest = { method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders, headers: req.headers, body: Buffer.alloc(0), complete: false, aborted: false };
    seen.push(record);
    req.once('end', () => { record.complete = true; });
    res.once('close', () => { if (!res.writableFinished) record.aborted = true; });
    if (opts.streamBody) {
      void handler(req, res, Buffer.alloc(0));
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      record.body = Buffer.concat(chunks);
      void handler(req, res, record.body);
    });
  };
  const server = opts.tls
    ? https.createServer({ cert: opts.tls.certPem, key: opts.tls.keyPem }, onRequest)
    : http.createServer(onRequest);
  const up: TestUpstream = { port: 0, seen, connections: 0, tcpConnections: 0, clientErrors: 0, server, close: async () => undefined };
  server.on(opts.tls ? 'secureConnection' : 'connection', () => { up.connections++; });
  server.on('connection', () => { up.tcpConnections++; });
  server.on('clientError', (_err, socket) => {
    up.clientErrors++;
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  up.port = (server.address() as net.AddressInfo).port;
  up.close = () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); });
  return up;
}

/** A raw TCP listener that counts accepted connections (a "canary": any accept is a failure). */
export async function startCanary(host = '127.0.0.1'): Promise<{ port: number; accepts: () => number; close(): Promise<void> }> {
  const { createServer } = await import('node:net');
  let n = 0;
  const sockets = new Set<net.Socket>();
  const server = createServer((s) => { n++; sockets.add(s); s.on('error', () => undefined); s.destroy(); });
  await new Promise<void>((r) => server.listen(0, host, () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    accepts: () => n,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
