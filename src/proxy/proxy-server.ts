// Owns: the proxy listener — plain absolute-form requests, CONNECT (intercepted, direct or
// denied-but-readable), WebSocket upgrades, inner requests of intercepted tunnels — and the
// bookkeeping of every socket and exchange so that shutdown can drain and then close.
import { newRequestId } from './request-id.ts';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { peekClientHello } from '../classify/tls-client-hello.ts';
import { normalizeHost } from '../classify/normalize-host.ts';
import { parseConnectTarget } from '../classify/parse-target.ts';
import { checkRequestFraming, asciiLower } from '../classify/request-framing.ts';
import { RequestRefusal } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { LeafMinter } from '../tls/leaf-minter.ts';
import { dial, type DialOptions } from '../upstream/connector.ts';
import { upstreamRefusal } from '../upstream/upstream-error.ts';
import type { UpstreamPools } from '../upstream/upstream-pools.ts';
import type { CredentialWatch } from './credential-watch.ts';
import { NO_BODY, admissionChecksPassed, markClientLeft, markExchangeEnded, newOutcome, type Exchange, type ExchangeBody, type Stage, type TunnelContext } from './exchange.ts';
import { forwardHttp, hostHeaderValue } from './forward-http.ts';
import { rawHeaderValues, relayableRawHead } from './header-filter.ts';
import { requestFacts } from './request-facts.ts';
import { endThenDestroy, sendRawRefusal, sendRefusal, toRefusal } from './send-refusal.ts';

export interface ProxyServerDeps {
  logger: Logger;
  minter: LeafMinter;
  pools: UpstreamPools;
  dialOptions: Omit<DialOptions, 'alpn'>;
  /** Admission stages for a CONNECT (path undefined) and for each HTTP request. */
  stages: { tunnel: readonly Stage[]; request: readonly Stage[] };
  /** Called once per exchange when it ends (log line, audit row). */
  onExchangeEnd: (ex: Exchange) => void;
  timeouts: { headersMs: number; idleMs: number; handshakeMs?: number; /** the upstream's first-byte timeout (default: idleMs) */ firstByteMs?: number };
  maxHeaderBytes: number;
  maxConnections: number;
  /** Ends pass-through tunnels and WebSockets whose token is revoked or expires (they carry no further requests to authenticate). */
  credentialWatch?: CredentialWatch;
  /** Why the policy in force would no longer admit a watched connection as it was opened (undefined: it would). */
  noLongerAllowed?: (ex: Exchange) => string | undefined;
}

export interface ProxyServer {
  listen(host: string, port: number): Promise<{ host: string; port: number }>;
  /** Stop accepting; let in-flight exchanges finish until the deadline; then close everything. */
  shutdown(deadlineMs: number): Promise<void>;
  stats(): { connections: number; tunnels: number; activeExchanges: number };
}

/** How much longer a client connection may stay idle than a response body it waits for (undici's timers are coarse). */
const UPSTREAM_FIRST_GRACE_MS = 2000;

interface StallWatched { sample: () => { progress: number; waitingOnClient: boolean }; seen: number; since: number; cut: () => void }

/**
 * Cuts clients that keep the gateway waiting for `idleMs`: each watched one gives a counter that
 * moves while the client does its part, and whether the gateway is waiting on the client at all
 * (not while it holds the client back itself, or waits on the upstream). One timer for all of them,
 * running only while something is watched: a watch costs a Set insertion per request.
 */
function createStallWatch(idleMs: number): (sample: StallWatched['sample'], cut: () => void) => () => void {
  const watched = new Set<StallWatched>();
  let timer: NodeJS.Timeout | undefined;
  const tick = () => {
    const now = performance.now();
    for (const w of watched) {
      const { progress, waitingOnClient } = w.sample();
      if (progress !== w.seen || !waitingOnClient) {
        w.seen = progress;
        w.since = now;
      } else if (now - w.since >= idleMs) {
        watched.delete(w);
        w.cut();
      }
    }
    if (watched.size === 0 && timer) {
      clearInterval(timer);
      timer = undefined;
    }
  };
  return (sample, cut) => {
    const w: StallWatched = { sample, seen: sample().progress, since: performance.now(), cut };
    watched.add(w);
    if (!timer) {
      timer = setInterval(tick, Math.max(50, Math.min(1000, Math.floor(idleMs / 4))));
      timer.unref();
    }
    return () => { watched.delete(w); };
  };
}

export function createProxyServer(deps: ProxyServerDeps): ProxyServer {
  const watchStall = createStallWatch(deps.timeouts.idleMs);
  const sockets = new Set<Duplex>();
  const tunnelOf = new WeakMap<object, { ctx: TunnelContext; scheme: 'http' | 'https'; raw?: net.Socket }>();
  let tunnels = 0;
  let activeExchanges = 0;
  let draining = false;
  let drainWaiters: Array<() => void> = [];
  const track = (s: Duplex) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  };

  const serverOptions: http.ServerOptions = {
    maxHeaderSize: deps.maxHeaderBytes,
    headersTimeout: deps.timeouts.headersMs,
    requestTimeout: 0, // bodies and streams may take long; idle time is bounded instead
    keepAliveTimeout: Math.min(deps.timeouts.idleMs, 120_000), // agents pause between calls; keep their tunnels
    insecureHTTPParser: false,
    joinDuplicateHeaders: false,
    requireHostHeader: false, // checked by checkRequestFraming with a clearer message
    // Node enforces headersTimeout by sweeping its connections every connectionsCheckingInterval
    // (30 s by default): a slowloris head would outlive headers_ms by up to 30 s.
    connectionsCheckingInterval: Math.max(50, Math.min(500, Math.floor(deps.timeouts.headersMs / 3))),
  } as http.ServerOptions;

  const outer = http.createServer(serverOptions);
  const inner = http.createServer(serverOptions);
  // `inner` never listens: intercepted tunnels are handed to it with emit('connection'). Node starts
  // the sweep that enforces headersTimeout on 'listening', so without this a request head dribbled
  // inside a tunnel would be bounded only by idle_ms, which every byte resets (security case 8.01).
  // close() in shutdown stops the sweep again.
  inner.emit('listening');
  outer.maxConnections = deps.maxConnections;
  for (const s of [outer, inner]) {
    // Node sets a kept-alive socket's timeout back to server.timeout when its next request arrives:
    // the idle bound must hold for every request of a connection, not only the first.
    s.timeout = deps.timeouts.idleMs;
    s.on('connection', (sock: net.Socket) => {
      track(sock);
      sock.setTimeout(deps.timeouts.idleMs, () => sock.destroy());
    });
    s.on('clientError', onClientError);
  }

  /** `req`: the parsed request, or only its connection when the parser refused the bytes. */
  function newExchange(kind: Exchange['kind'], via: Exchange['via'], req: Pick<IncomingMessage, 'socket'> & { method?: string | undefined }, tunnel: TunnelContext | undefined): Exchange {
    activeExchanges++;
    return {
      id: newRequestId(),
      startedAt: Date.now(),
      kind,
      via,
      tunnel,
      clientAddress: tunnel?.clientAddress ?? req.socket.remoteAddress ?? '',
      method: req.method ?? '',
      scheme: 'http',
      host: tunnel?.host ?? '',
      hostKind: tunnel?.hostKind ?? 'dns',
      port: tunnel?.port ?? 0,
      path: undefined,
      query: '',
      proxyAuthorization: [],
      headers: [],
      principal: tunnel?.principal,
      decision: undefined,
      target: undefined,
      outcome: newOutcome(),
      body: NO_BODY,
      bodyCheck: undefined,
      responseObservers: [],
      usage: undefined,
      drainOnClientAbort: undefined,
      settlements: [],
      admissionChecks: [],
      onClientEnd: [],
      notes: {},
    };
  }

  const pendingEnds = new Set<Promise<void>>();

  function endExchange(ex: Exchange): void {
    if (!markExchangeEnded(ex)) return;
    const report = () => {
      try {
        deps.onExchangeEnd(ex);
      } catch (err) {
        deps.logger.error('exchange end hook failed', { request_id: ex.id, error: String(err) });
      }
      activeExchanges--;
      if (draining && activeExchanges === 0) {
        const w = drainWaiters;
        drainWaiters = [];
        for (const f of w) f();
      }
    };
    for (const f of ex.onClientEnd) {
      try {
        f();
      } catch (err) {
        deps.logger.error('exchange client-end hook failed', { request_id: ex.id, error: String(err) });
      }
    }
    if (ex.settlements.length === 0) {
      report();
      return;
    }
    // e.g. metering still draining the upstream after the client left: report once settled
    const p = Promise.allSettled(ex.settlements).then(report);
    pendingEnds.add(p);
    void p.finally(() => pendingEnds.delete(p));
  }

  async function runStages(stages: readonly Stage[], ex: Exchange): Promise<void> {
    for (const stage of stages) await stage(ex);
    // The audit stage has awaited (and cleared) them already; this keeps any pipeline fail-closed without one.
    if (ex.admissionChecks.length > 0) await admissionChecksPassed(ex);
  }

  /** Connections whose close after a parser error is already arranged. */
  const closeArranged = new WeakSet<object>();

  function onClientError(err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Duplex): void {
    // The connection already answered (e.g. a refusal is flushing, or a response is in progress):
    // write nothing more, mark it closing, and let what is pending flush before it closes.
    const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
    // A request whose body broke the parser is dropped too; requests before it are still answered.
    const st = connState(socket);
    const brokenBody = st.last !== undefined && !st.last.complete;
    if (isClosing(socket) || (inFlight && inFlight.headersSent)) {
      markClosing(socket, brokenBody ? st.seq - 1 : st.seq);
      // The parser fails again on every later packet of such a connection: its close is arranged
      // once (a listener and a timer per packet would let a client pile them up).
      if (closeArranged.has(socket)) return;
      closeArranged.add(socket);
      if (inFlight && !inFlight.writableFinished) {
        inFlight.shouldKeepAlive = false;
        inFlight.once('finish', () => socket.end());
      } else if (!socket.writableEnded) {
        socket.end();
      }
      setTimeout(() => socket.destroy(), inFlight && !inFlight.writableFinished ? deps.timeouts.idleMs : 1000).unref();
      return;
    }
    markClosing(socket, brokenBody ? st.seq - 1 : st.seq);
    if (!socket.writable || err.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
    const timedOut = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    const status = tooLarge ? 431 : timedOut ? 408 : 400;
    const text = tooLarge ? 'Request Header Fields Too Large' : timedOut ? 'Request Timeout' : 'Bad Request';
    const reason = tooLarge ? 'header_too_large' : timedOut ? 'request_timeout' : 'malformed_request';
    const body = `Tollgate: ${text} (${reason}${err.code ? `, ${err.code}` : ''})\n`;
    // A head the parser refused is an exchange like any other: a log line and an audit row
    // (smuggling and parsing attacks belong in the audit trail). Nothing of the request is known
    // but its connection — and, inside an intercepted tunnel, the tunnel's host and principal.
    // Not for a body that broke the parser (its request already has its exchange, which records
    // the failure), and not for a head that never arrived: Node times out connections that sent
    // nothing at all (health checks, pre-connects, idle tunnels), which are logged only.
    let requestId = '';
    if (!brokenBody && !timedOut) {
      const t = tunnelOf.get(socket);
      const ex = newExchange('request', t ? 'intercepted' : 'plain', { socket: socket as net.Socket }, t?.ctx);
      if (t) ex.scheme = t.scheme;
      ex.outcome.status = status;
      ex.outcome.reason = reason;
      ex.outcome.error = `the HTTP parser refused the request (${err.code ?? 'no code'})`;
      endExchange(ex);
      requestId = `X-Request-Id: ${ex.id}\r\n`;
    } else {
      deps.logger.info('request refused by the HTTP parser', { reason, code: err.code });
    }
    socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain; charset=utf-8\r\nX-Tollgate-Decision: error\r\nX-Tollgate-Reason: ${reason}\r\n${requestId}Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    setTimeout(() => socket.destroy(), 1000).unref();
  }

  // ---- HTTP requests (plain and inside tunnels) -------------------------------------------
  /**
   * Connections that were refused with "Connection: close" (or broke the parser). Node may already
   * have parsed a request that followed in the same write; it must never be processed.
   */
  /**
   * Per connection: how many requests the parser has handed us, the newest one, and — once a
   * refusal closes the connection — the last request number that may still be answered.
   */
  const conn = new WeakMap<object, { seq: number; last: IncomingMessage | undefined; closeAfter: number | undefined }>();
  const connState = (socket: object) => {
    let st = conn.get(socket);
    if (!st) {
      st = { seq: 0, last: undefined, closeAfter: undefined };
      conn.set(socket, st);
    }
    return st;
  };
  /** Nothing after request number `after` on this connection is processed. */
  function markClosing(socket: object, after?: number): void {
    const st = connState(socket);
    const limit = after ?? st.seq;
    st.closeAfter = st.closeAfter === undefined ? limit : Math.min(st.closeAfter, limit);
  }
  const isClosing = (socket: object) => conn.get(socket)?.closeAfter !== undefined;
  const isDropped = (socket: object, seq: number) => {
    const limit = conn.get(socket)?.closeAfter;
    return limit !== undefined && seq > limit;
  };
  /** Responses in progress: on shutdown those not yet started are told to close the connection. */
  const activeResponses = new Set<ServerResponse>();

  async function onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // The connection, held here: Node clears req.socket once the request is destroyed (a body
    // refused mid-read), and the refusal still has to mark and answer the connection.
    const socket = req.socket;
    const st = connState(socket);
    const seq = ++st.seq;
    st.last = req;
    if (isDropped(socket, seq)) {
      // pipelined after a refusal that closes the connection: drop it unanswered
      res.destroy();
      return;
    }
    const t = tunnelOf.get(socket);
    const ex = newExchange('request', t ? 'intercepted' : 'plain', req, t?.ctx);
    activeResponses.add(res);
    // The exchange is reported once its outcome is known: a client that leaves closes the response
    // before the forwarder has recorded why (499, "client disconnected during the response").
    let forwarding: Promise<void> | undefined;
    res.once('close', () => {
      activeResponses.delete(res);
      if (forwarding) void forwarding.then(() => endExchange(ex), () => endExchange(ex));
      else endExchange(ex);
    });
    let closeAfter = false;
    try {
      if (draining) throw new RequestRefusal('shutting_down');
      let facts;
      try {
        facts = requestFacts(req, t?.ctx, t?.scheme);
      } catch (err) {
        // Broken framing or a request for another authority: the rest of the connection is not trusted.
        const r0 = toRefusal(err);
        closeAfter = r0.status === 400 || r0.reason === 'host_mismatch';
        throw err;
      }
      Object.assign(ex, {
        scheme: facts.scheme, host: facts.host, hostKind: facts.hostKind, port: facts.port,
        path: facts.path, query: facts.query, headers: facts.headers, proxyAuthorization: facts.proxyAuthorization,
      });
      closeAfter = facts.hasBody; // a refused request's unread body must not be parsed as a request
      if (facts.hasBody) ex.body = bufferableBody(req, ex, facts.expectContinue ? res : undefined);
      if (t?.ctx.denial) {
        // The tunnel was opened only to show this denial, decided once at CONNECT: the connection
        // closes after it, so the client's next request comes on a new CONNECT, decided by the
        // policy in force then (a reload that allows the host takes effect at once).
        closeAfter = true;
        const d = t.ctx.denial;
        ex.decision = { effect: 'deny', reason: d.reason, rule: d.rule, explanation: d.message, intercept: true };
        throw new RequestRefusal(d.reason, d.message, { status: d.status });
      }
      await runStages(deps.stages.request, ex);
      // The stages are asynchronous: the parser may have failed on this request's body meanwhile.
      if (isDropped(socket, seq) || req.errored !== null || socket.destroyed) {
        ex.outcome.reason = 'malformed_request';
        ex.outcome.error = 'the request broke off or its body was malformed before it was forwarded';
        res.destroy();
        return;
      }
      if (facts.expectContinue && !ex.notes['continued']) res.writeContinue();
      if (draining) res.shouldKeepAlive = false;
      closeAfter = false;
      // While the upstream is being asked and answers, its own timers (first byte, body idle) bound
      // the wait: the client connection's idle timer waits a little longer than either, so a slow or
      // stalled upstream is reported as such rather than as a client that went away. A client that
      // stops sending its request body is cut after `idle_ms` by a watch of the bytes the gateway
      // reads from it (time the gateway holds the body back for a slow upstream does not count).
      // A client that stops reading the response is not told apart from a slow reader that soon:
      // the kernel wakes a blocked writer only when a third of its send buffer has drained (steps of
      // a megabyte and more), so the connection's idle timer, at the stretched bound, ends it.
      const clientSockets = t?.raw ? [socket, t.raw] : [socket];
      const forwardingIdleMs = Math.max(deps.timeouts.idleMs, deps.timeouts.firstByteMs ?? 0) + UPSTREAM_FIRST_GRACE_MS;
      for (const s of clientSockets) s.setTimeout(forwardingIdleMs);
      const stopWatch = facts.hasBody && ex.body.buffered === undefined && !req.complete
        ? watchStall(() => ({ progress: ex.outcome.bytesIn, waitingOnClient: !req.complete && (ex.bodyCheck !== undefined || !req.isPaused()) && req.readableLength === 0 }), () => {
          const why = `the client stopped sending its request body for ${deps.timeouts.idleMs} ms (timeouts.idle_ms)`;
          ex.notes['clientStalled'] = why;
          ex.outcome.error = why;
          for (const s of clientSockets) s.destroy();
        })
        : undefined;
      forwarding = forwardHttp(ex, req, res, deps.pools, facts.hasBody);
      try {
        await forwarding;
      } finally {
        stopWatch?.();
        // (unless Node has moved on to its keep-alive timeout meanwhile)
        for (const s of clientSockets) if (!s.destroyed && s.timeout === forwardingIdleMs) s.setTimeout(deps.timeouts.idleMs);
      }
    } catch (err) {
      const r = toRefusal(err);
      if (r.reason === 'internal_error') deps.logger.error('request failed', { request_id: ex.id, error: r.detail });
      if (r.status === 400 || r.status === 431 || ex.notes['bodyRefused'] === true) closeAfter = true;
      if (closeAfter) markClosing(socket, seq);
      sendRefusal(res, ex, r, closeAfter);
    }
  }
  /**
   * The handlers answer every failure themselves; a rejection that still escapes one is a bug in
   * the gateway, and it costs that one exchange (logged, its connection closed) — never the
   * process and everyone else's traffic with it.
   */
  const contained = (what: string, p: Promise<void>, close: () => void) => {
    p.catch((err: unknown) => {
      deps.logger.error(`${what} handler failed; its connection is closed`, { error: err instanceof Error ? err.stack ?? err.message : String(err) });
      close();
    });
  };
  const handleRequest = (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    contained('request', onRequest(req, res), () => { res.destroy(); socket.destroy(); });
  };
  outer.on('request', handleRequest);
  outer.on('checkContinue', handleRequest);
  inner.on('request', handleRequest);
  inner.on('checkContinue', handleRequest);

  function bufferableBody(req: IncomingMessage, ex: Exchange, continueRes: ServerResponse | undefined): ExchangeBody {
    const body: ExchangeBody = {
      present: true,
      buffered: undefined,
      async buffer(limit) {
        if (body.buffered) return body.buffered;
        const declared = Number(req.headers['content-length'] ?? NaN);
        // A declared length past the limit is refused before anything is read (and, with
        // Expect: 100-continue, before the client is asked to send the body at all).
        if (declared > limit) throw new RequestRefusal('payload_too_large', `The request body is larger than ${limit} bytes, the most this route can buffer.`);
        if (continueRes) { continueRes.writeContinue(); continueRes = undefined; ex.notes['continued'] = true; }
        if (Number.isSafeInteger(declared) && declared === req.readableLength && !req.destroyed && req.readableFlowing !== true && !req.readableEnded) {
          // The whole declared body has arrived (the usual small JSON body) and waits in the
          // stream's buffer — often before the parser has marked the message complete: taken in
          // one read, without an async iterator's machinery. Its end follows from the parser.
          const whole = (req.read() as Buffer | null) ?? Buffer.alloc(0);
          body.buffered = whole;
          ex.outcome.bytesIn = whole.length;
          return whole;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        for await (const chunk of req) {
          size += (chunk as Buffer).length;
          if (size > limit) throw new RequestRefusal('payload_too_large', `The request body is larger than ${limit} bytes, the most this route can buffer.`);
          chunks.push(chunk as Buffer);
        }
        body.buffered = Buffer.concat(chunks);
        ex.outcome.bytesIn = size;
        return body.buffered;
      },
    };
    return body;
  }

  // ---- CONNECT ---------------------------------------------------------------------------
  async function onConnect(req: IncomingMessage, socket: net.Socket, head: Buffer): Promise<void> {
    socket.pause();
    track(socket);
    socket.on('error', () => socket.destroy());
    const ex = newExchange('tunnel', 'connect', req, undefined);
    ex.proxyAuthorization = rawHeaderValues(req.rawHeaders, 'proxy-authorization');
    // From the start: a client that goes away while the stages run (a DNS lookup, the audit commit)
    // still ends its exchange, so its row completes and its tunnel slot is given back.
    socket.once('close', () => {
      markClientLeft(ex, 'the client closed the connection before the tunnel was set up');
      endExchange(ex);
    });
    try {
      if (draining) throw new RequestRefusal('shutting_down');
      const framing = checkRequestFraming(req.rawHeaders, req.httpVersion);
      if (!framing.ok) throw new RequestRefusal('malformed_request', `Bad request: ${framing.message}.`);
      if (framing.contentLength !== undefined || framing.chunked) throw new RequestRefusal('malformed_request', 'Bad request: CONNECT must not carry a body.');
      const target = parseConnectTarget(req.url ?? '');
      if (!target.ok) throw new RequestRefusal('malformed_request', `Bad request: ${target.message}.`);
      ex.host = target.host;
      ex.hostKind = target.kind;
      ex.port = target.port;
      ex.scheme = 'https';
      try {
        await runStages(deps.stages.tunnel, ex);
      } catch (err) {
        const r = toRefusal(err);
        // A policy denial on a TLS port is shown readably: intercept and answer every request with
        // the 403 (Claude Code and others show nothing useful for a refused CONNECT).
        const readable = r.status === 403 && ex.principal !== undefined && looksLikeTlsPort(ex.port) && !draining;
        if (!readable) throw r;
        ex.outcome.status = r.status;
        ex.outcome.reason = r.reason;
        const denial = { status: r.status, reason: r.reason, message: r.publicMessage, rule: ex.decision?.rule ?? null };
        if (socket.destroyed) return;
        await intercept(ex, socket, head, denial);
        return;
      }
      const decision = ex.decision;
      if (socket.destroyed) return; // the client left meanwhile: its close ended the exchange
      if (decision && decision.effect === 'direct') {
        await directTunnel(ex, socket, head);
      } else {
        await intercept(ex, socket, head, undefined);
      }
    } catch (err) {
      sendRawRefusal(socket, ex, err);
      endExchange(ex);
    }
  }
  outer.on('connect', (req, socket, head) => contained('CONNECT', onConnect(req, socket as net.Socket, head), () => socket.destroy()));

  function looksLikeTlsPort(port: number): boolean {
    return port === 443 || port === 8443;
  }

  async function intercept(ex: Exchange, socket: net.Socket, head: Buffer, denial: TunnelContext['denial']): Promise<void> {
    const ctx: TunnelContext = {
      id: ex.id, host: ex.host, hostKind: ex.hostKind, port: ex.port, clientAddress: ex.clientAddress,
      proxyAuthorization: ex.proxyAuthorization, principal: ex.principal, denial,
    };
    ex.outcome.status ??= 200;
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length) socket.unshift(head);
    tunnels++;
    socket.once('close', () => tunnels--);
    // Peek the first byte: TLS (0x16) is terminated with a minted leaf; anything else is parsed as HTTP.
    const first = await firstChunk(socket, deps.timeouts.headersMs);
    if (!first) { socket.destroy(); return; }
    socket.unshift(first);
    if (first[0] !== 0x16) {
      tunnelOf.set(socket, { ctx, scheme: 'http' });
      inner.emit('connection', socket);
      socket.resume();
      return;
    }
    let secureContext: tls.SecureContext;
    try {
      secureContext = await deps.minter.contextFor(ex.host, ex.hostKind);
    } catch (err) {
      deps.logger.error('leaf minting failed', { host: ex.host, error: String(err) });
      socket.destroy();
      return;
    }
    const tlsSocket = new tls.TLSSocket(socket, {
      isServer: true,
      secureContext,
      ALPNProtocols: ['http/1.1'],
      SNICallback: (servername, cb) => {
        const n = normalizeHost(servername);
        if (n.ok && n.host === ex.host) cb(null, secureContext);
        else {
          deps.logger.info('TLS server name does not match the CONNECT authority', { request_id: ex.id, reason: 'sni_mismatch', connect_host: ex.host });
          ex.outcome.reason = 'sni_mismatch';
          cb(new Error('sni_mismatch'), undefined);
        }
      },
    } as tls.TLSSocketOptions);
    const hsTimer = setTimeout(() => tlsSocket.destroy(), deps.timeouts.handshakeMs ?? 10_000);
    hsTimer.unref();
    tlsSocket.once('secure', () => clearTimeout(hsTimer));
    tlsSocket.on('error', () => { clearTimeout(hsTimer); tlsSocket.destroy(); socket.destroy(); });
    tlsSocket.once('close', () => { clearTimeout(hsTimer); socket.destroy(); });
    tunnelOf.set(tlsSocket, { ctx, scheme: 'https', raw: socket });
    inner.emit('connection', tlsSocket);
  }

  function firstChunk(socket: net.Socket, timeoutMs: number): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => { cleanup(); resolve(undefined); }, timeoutMs);
      const onReadable = () => {
        const chunk = socket.read() as Buffer | null;
        if (chunk) { cleanup(); resolve(chunk); }
      };
      const onEnd = () => { cleanup(); resolve(undefined); };
      const cleanup = () => { clearTimeout(timer); socket.off('readable', onReadable); socket.off('end', onEnd); socket.off('close', onEnd); };
      socket.on('readable', onReadable);
      socket.once('end', onEnd);
      socket.once('close', onEnd);
      onReadable();
    });
  }

  async function directTunnel(ex: Exchange, socket: net.Socket, head: Buffer): Promise<void> {
    const target = ex.target;
    if (!target) throw new Error('directTunnel: no vetted target');
    ex.outcome.status ??= 200;
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    // Require a ClientHello whose SNI is the CONNECT host (domain fronting, pass-through mode).
    let buf = head;
    const deadline = Date.now() + deps.timeouts.headersMs;
    for (;;) {
      const peek = peekClientHello(buf);
      if (peek.kind === 'client_hello') {
        const sni = peek.serverName === undefined ? undefined : normalizeHost(peek.serverName);
        if (!sni || !sni.ok || sni.host !== ex.host) {
          ex.outcome.reason = 'sni_mismatch';
          ex.outcome.error = 'pass-through tunnel without a matching TLS server name';
          socket.destroy();
          return;
        }
        break;
      }
      if (peek.kind === 'not_tls') {
        ex.outcome.reason = 'malformed_request';
        ex.outcome.error = 'pass-through tunnels carry TLS only';
        socket.destroy();
        return;
      }
      const more = await firstChunk(socket, Math.max(1, deadline - Date.now()));
      if (!more) { socket.destroy(); return; }
      buf = Buffer.concat([buf, more]);
      if (buf.length > 20_000) { socket.destroy(); return; }
    }
    let upstream: net.Socket;
    try {
      upstream = await dial({ address: target.address, port: target.port, servername: ex.host, tls: false }, deps.dialOptions);
    } catch (err) {
      const r = upstreamRefusal(err, `${ex.host}:${ex.port}`);
      ex.outcome.reason = r.reason;
      ex.outcome.error = r.publicMessage;
      socket.destroy();
      return;
    }
    if (socket.destroyed) { upstream.destroy(); return; } // the client left while the gateway dialled
    tunnels++;
    track(upstream);
    upstream.once('close', () => { tunnels--; socket.destroy(); });
    socket.once('close', () => upstream.destroy());
    upstream.on('error', () => upstream.destroy());
    upstream.write(buf);
    ex.outcome.bytesIn += buf.length;
    socket.on('data', (c: Buffer) => { ex.outcome.bytesIn += c.length; });
    upstream.on('data', (c: Buffer) => { ex.outcome.bytesOut += c.length; });
    socket.pipe(upstream);
    upstream.pipe(socket);
    socket.resume();
    watchCredentials(ex, socket, upstream);
  }

  /** A connection that carries no further requests: ended when its credentials stop being valid or the policy stops admitting it. */
  function watchCredentials(ex: Exchange, client: Duplex, upstream: Duplex): void {
    if (!deps.credentialWatch || ex.principal === undefined || ex.principal.kind === 'anonymous') return;
    const recheck = deps.noLongerAllowed;
    if (ex.proxyAuthorization.length === 0 && !recheck) return;
    const unwatch = deps.credentialWatch.watch(ex.proxyAuthorization, (why) => {
      ex.outcome.error = `closed by the gateway: ${why}`;
      client.destroy();
      upstream.destroy();
    }, recheck ? () => recheck(ex) : undefined);
    client.once('close', unwatch);
    upstream.once('close', unwatch);
  }

  // ---- Upgrades (WebSocket only; other upgrades are proxied as plain HTTP/1.1) -----------
  async function onUpgrade(req: IncomingMessage, socket: net.Socket, head: Buffer): Promise<void> {
    const upgrade = asciiLower(String(req.headers['upgrade'] ?? '')).trim();
    if (upgrade !== 'websocket') {
      // h2c and friends: never a 101. Answer as a normal request on this socket, then close it.
      const res = new http.ServerResponse(req);
      res.shouldKeepAlive = false;
      res.assignSocket(socket);
      // Not detached: when the socket closes Node emits the response's 'close', which ends the
      // exchange (its audit row, its slot of limits.per_principal).
      res.once('finish', () => endThenDestroy(socket));
      if (head.length) socket.unshift(head);
      handleRequest(req, res);
      return;
    }
    if (isClosing(socket)) {
      socket.destroy();
      return;
    }
    const t = tunnelOf.get(socket);
    const ex = newExchange('upgrade', t ? 'intercepted' : 'plain', req, t?.ctx);
    socket.on('error', () => socket.destroy());
    socket.once('close', () => {
      markClientLeft(ex, 'the client closed the connection before the upgrade was answered');
      endExchange(ex);
    });
    try {
      if (draining) throw new RequestRefusal('shutting_down');
      const facts = requestFacts(req, t?.ctx, t?.scheme);
      Object.assign(ex, {
        scheme: facts.scheme, host: facts.host, hostKind: facts.hostKind, port: facts.port,
        path: facts.path, query: facts.query, headers: facts.headers, proxyAuthorization: facts.proxyAuthorization,
      });
      if (t?.ctx.denial) {
        const d = t.ctx.denial;
        ex.decision = { effect: 'deny', reason: d.reason, rule: d.rule, explanation: d.message, intercept: true };
        throw new RequestRefusal(d.reason, d.message, { status: d.status });
      }
      await runStages(deps.stages.request, ex);
      if (socket.destroyed) return; // the client left while the stages ran: nothing goes upstream
      const target = ex.target;
      if (!target) throw new Error('upgrade: no vetted target');
      let upstream: net.Socket;
      try {
        upstream = await dial({ address: target.address, port: target.port, servername: ex.host, tls: ex.scheme === 'https' }, { ...deps.dialOptions, alpn: ['http/1.1'] });
      } catch (err) {
        throw upstreamRefusal(err, `${ex.host}:${ex.port}`);
      }
      if (socket.destroyed) { upstream.destroy(); return; }
      track(upstream);
      let headText = `${ex.method} ${ex.query ? `${ex.path}?${ex.query}` : ex.path} HTTP/1.1\r\nHost: ${hostHeaderValue(ex.host, ex.hostKind, ex.port, ex.scheme)}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n`;
      for (const [n, v] of ex.headers) headText += `${n}: ${v}\r\n`;
      upstream.write(headText + '\r\n');
      if (head.length) upstream.write(head);
      upstream.on('error', () => upstream.destroy());
      socket.once('close', () => upstream.destroy());
      upstream.once('close', () => socket.destroy());
      // Relay the upstream's answer; only after a 101 may client bytes flow upstream again.
      let buf = Buffer.alloc(0);
      const onHead = (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) { if (buf.length > 65_536) upstream.destroy(); return; }
        upstream.off('data', onHead);
        const headText = buf.subarray(0, end + 2).toString('latin1');
        if (/(^|[^\r])\n/.test(headText)) {
          // bare LF: the head's lines cannot be told apart reliably, so nothing of it is relayed
          upstream.destroy();
          sendRawRefusal(socket, ex, new RequestRefusal('upstream_protocol_error', `The upstream ${ex.host} answered the upgrade with a malformed response head (a bare LF line end).`));
          return;
        }
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(headText)?.[1] ?? 0);
        ex.outcome.status = status;
        const relayed = Buffer.concat([Buffer.from(relayableRawHead(headText), 'latin1'), buf.subarray(end + 2)]);
        socket.write(relayed);
        ex.outcome.bytesOut += relayed.length;
        if (status === 101) {
          upstream.on('data', (c: Buffer) => { ex.outcome.bytesOut += c.length; });
          socket.on('data', (c: Buffer) => { ex.outcome.bytesIn += c.length; });
          upstream.pipe(socket);
          socket.pipe(upstream);
          watchCredentials(ex, socket, upstream);
        } else {
          upstream.pipe(socket); // the rest of this response, then close
        }
      };
      upstream.on('data', onHead);
    } catch (err) {
      sendRawRefusal(socket, ex, err);
    }
  }
  outer.on('upgrade', (req, socket, head) => contained('upgrade', onUpgrade(req, socket as net.Socket, head), () => socket.destroy()));
  inner.on('upgrade', (req, socket, head) => contained('upgrade', onUpgrade(req, socket as net.Socket, head), () => socket.destroy()));

  return {
    listen(host, port) {
      return new Promise((resolve, reject) => {
        outer.once('error', reject);
        outer.listen({ host, port }, () => {
          outer.off('error', reject);
          const a = outer.address() as net.AddressInfo;
          resolve({ host: a.address, port: a.port });
        });
      });
    },
    async shutdown(deadlineMs) {
      draining = true;
      for (const res of activeResponses) if (!res.headersSent) res.shouldKeepAlive = false;
      outer.close();
      inner.close(() => undefined); // stops the header sweep; "not running" is expected
      outer.closeIdleConnections();
      inner.closeIdleConnections();
      if (activeExchanges > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, deadlineMs);
          timer.unref();
          drainWaiters.push(() => { clearTimeout(timer); resolve(); });
        });
      }
      for (const s of sockets) s.destroy();
      outer.closeAllConnections();
      inner.closeAllConnections();
      // Destroyed sockets report their exchanges' ends on later ticks; wait (bounded) until every
      // end hook has run, including those waiting on a settlement, so audit can flush them all.
      const until = Date.now() + Math.max(deadlineMs, 1000);
      while ((activeExchanges > 0 || pendingEnds.size > 0) && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    stats: () => ({ connections: sockets.size, tunnels, activeExchanges }),
  };
}
