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
}

export interface TestUpstream {
  port: number;
  seen: SeenRequest[];
  /** Raw TCP connections accepted (to prove "nothing reached the upstream"). */
  connections: number;
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
    const record: SeenRequest = { method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders, headers: req.headers, body: Buffer.alloc(0) };
    seen.push(record);
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
  const up: TestUpstream = { port: 0, seen, connections: 0, server, close: async () => undefined };
  server.on(opts.tls ? 'secureConnection' : 'connection', () => { up.connections++; });
  if (opts.tls) server.on('connection', () => undefined);
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
