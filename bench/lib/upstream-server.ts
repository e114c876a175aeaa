// Owns: the benchmark's upstream origin, run as its own child process (so the load generator, the
// gateway and the origin each have their own event loop). One loopback port speaks both plain
// HTTP and HTTPS (the first byte decides), so one `upstreams:` entry per host name serves every
// scenario. Routes: GET /1k, GET /1m, POST /upload, GET /sse?n=&every=, POST /v1/messages (Anthropic SSE).
// Protocol with the parent (IPC): ← {type:'start', certPem, keyPem} → {type:'ready', port};
// ← {type:'stats'} → {type:'stats', ...counters}.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { STREAM_HEAD, streamDelta, streamTail } from './anthropic-stream.ts';

const KiB = Buffer.alloc(1024, 'a');
const MiB = Buffer.alloc(1024 * 1024, 'b');

const stats = { tcp: 0, tls: 0, requests: 0, uploadBytes: 0 };

function handle(req: IncomingMessage, res: ServerResponse): void {
  stats.requests++;
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const route = q === -1 ? url : url.slice(0, q);
  if (req.method === 'POST' && route === '/upload') {
    let n = 0;
    req.on('data', (c: Buffer) => { n += c.length; });
    req.on('end', () => {
      stats.uploadBytes += n;
      const body = `{"bytes":${n}}`;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    return;
  }
  if (req.method === 'POST' && route === '/v1/messages') {
    req.resume();
    req.on('end', () => anthropicStream(req, res));
    return;
  }
  // A GET body, if any, is drained so the connection stays usable.
  req.resume();
  if (route === '/1k') {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': KiB.length });
    res.end(KiB);
  } else if (route === '/1m') {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': MiB.length });
    res.end(MiB);
  } else if (route === '/sse') {
    const params = new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
    const n = Math.max(1, Number(params.get('n') ?? 5));
    const every = Math.max(1, Number(params.get('every') ?? 50));
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    let i = 0;
    const send = () => {
      res.write(`event: tick\ndata: {"i":${i}}\n\n`);
      i++;
      if (i >= n) {
        clearInterval(timer);
        res.end();
      }
    };
    const timer = setInterval(send, every);
    res.once('close', () => clearInterval(timer));
    send(); // the first event goes out at once, with the headers
  } else {
    res.writeHead(404, { 'content-length': 0 });
    res.end();
  }
}

/**
 * An Anthropic Messages SSE stream (message_start with usage, `x-bench-events` text deltas — each
 * written on its own turn of the event loop, so each is its own chunk as from a real model —
 * message_delta with the final usage, message_stop). Served for any host: the bench sends the same
 * request to api.anthropic.com (metered by the gateway) and to bench.test (not metered).
 */
function anthropicStream(req: IncomingMessage, res: ServerResponse): void {
  const n = Math.max(1, Number(req.headers['x-bench-events'] ?? 100));
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
  res.write(STREAM_HEAD);
  let i = 0;
  const next = () => {
    if (res.destroyed) return;
    if (i < n) {
      res.write(streamDelta(i));
      i++;
      setImmediate(next);
      return;
    }
    res.end(streamTail(n));
  };
  next();
}

function start(certPem: string, keyPem: string): Promise<number> {
  const opts = { keepAliveTimeout: 120_000, headersTimeout: 60_000, requestTimeout: 0 };
  const plain = http.createServer(opts, handle);
  const secure = https.createServer({ ...opts, cert: certPem, key: keyPem }, handle);
  secure.on('secureConnection', () => { stats.tls++; });
  const front = net.createServer({ noDelay: true }, (socket) => {
    stats.tcp++;
    socket.once('data', (first: Buffer) => {
      socket.pause();
      socket.unshift(first);
      (first[0] === 0x16 ? secure : plain).emit('connection', socket);
      process.nextTick(() => socket.resume());
    });
    socket.on('error', () => socket.destroy());
  });
  front.maxConnections = 100_000;
  return new Promise((resolve) => {
    front.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => resolve((front.address() as net.AddressInfo).port));
  });
}

process.on('message', (msg: { type: string; certPem?: string; keyPem?: string }) => {
  if (msg.type === 'start' && msg.certPem && msg.keyPem) {
    void start(msg.certPem, msg.keyPem).then((port) => process.send?.({ type: 'ready', port }));
  } else if (msg.type === 'stats') {
    process.send?.({ type: 'stats', ...stats });
  }
});
process.on('disconnect', () => process.exit(0));
