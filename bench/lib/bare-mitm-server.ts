// Owns: the bench's reference "bare Node MITM" (issue 2 names it next to Squid ssl-bump and
// mitmproxy as what this machine reaches): the least a Node.js intercepting proxy does — answer
// CONNECT, terminate TLS with one pre-made EC P-256 leaf, parse HTTP/1.1 with node:http, forward
// over an undici keep-alive pool with upstream TLS verified, stream the response back. No
// authentication, policy, audit, logging, metrics or header hygiene: the floor Node sets, so
// Tollgate's own pipeline cost is the difference. Run as its own child process.
// Protocol with the parent (IPC): ← {type:'start', upstreamPort, upstreamCaPem, certPem, keyPem}
// → {type:'ready', port}.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { Pool } from 'undici';

interface Start { type: 'start'; upstreamPort: number; upstreamCaPem: string; certPem: string; keyPem: string }

const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host']);

function start(m: Start): void {
  const secureContext = tls.createSecureContext({ cert: m.certPem, key: m.keyPem });
  const pools = new Map<string, Pool>();
  const poolFor = (host: string): Pool => {
    let p = pools.get(host);
    if (!p) {
      p = new Pool(`https://127.0.0.1:${m.upstreamPort}`, {
        connect: { ca: [m.upstreamCaPem], servername: host },
        keepAliveTimeout: 60_000,
      });
      pools.set(host, p);
    }
    return p;
  };
  const handle = (host: string, req: IncomingMessage, res: ServerResponse): void => {
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP.has(k)) headers[k] = v;
    headers['host'] = host;
    const ac = new AbortController();
    res.once('close', () => { if (!res.writableFinished) ac.abort(); });
    poolFor(host).request({
      path: req.url ?? '/', method: req.method ?? 'GET', headers, signal: ac.signal,
      body: req.method === 'GET' || req.method === 'HEAD' ? null : req,
    }).then((up) => {
      const out: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && !HOP.has(k)) out[k] = v;
      res.writeHead(up.statusCode, out);
      up.body.pipe(res);
    }, (err: Error) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`upstream error: ${err.message}\n`);
    });
  };
  const hostOf = new WeakMap<object, string>();
  const inner = http.createServer((req, res) => handle(hostOf.get(req.socket) ?? 'localhost', req, res));
  const front = http.createServer();
  front.on('connect', (req: IncomingMessage, socket, head: Buffer) => {
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) socket.unshift(head);
    const t = new tls.TLSSocket(socket, { isServer: true, secureContext, ALPNProtocols: ['http/1.1'] });
    hostOf.set(t, (req.url ?? '').replace(/:\d+$/, ''));
    t.on('error', () => t.destroy());
    inner.emit('connection', t);
  });
  front.listen(0, '127.0.0.1', () => {
    process.send?.({ type: 'ready', port: (front.address() as AddressInfo).port });
  });
}

process.on('message', (m: { type: string }) => {
  if (m.type === 'start') start(m as Start);
});
process.on('disconnect', () => process.exit(0));
// A normal exit on SIGTERM, so that --cpu-prof (TOLLGATE_BENCH_BARE_PROF) writes its profile.
process.on('SIGTERM', () => process.exit(0));
