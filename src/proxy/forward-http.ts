// Owns: sending one admitted request upstream through the pool for its vetted address and
// streaming the response back — both bodies streamed with backpressure, never buffered whole.
// A client that goes away aborts the upstream request, unless the exchange asks for a bounded
// drain (metered requests: the final usage arrives at the end of the stream).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { RequestRefusal } from '../errors.ts';
import { upstreamRefusal } from '../upstream/upstream-error.ts';
import type { UpstreamPools } from '../upstream/upstream-pools.ts';
import type { Exchange, RequestBodyCheck, ResponseObserver } from './exchange.ts';
import { relayableResponseHeaders } from './header-filter.ts';

export function hostHeaderValue(host: string, kind: Exchange['hostKind'], port: number, scheme: 'http' | 'https'): string {
  const h = kind === 'ipv6' ? `[${host}]` : host;
  const defaultPort = scheme === 'https' ? 443 : 80;
  return port === defaultPort ? h : `${h}:${port}`;
}

/** Counts request body bytes from the moment the upstream client starts reading the body. */
function countRequestBytes(req: IncomingMessage, ex: Exchange): IncomingMessage {
  const onNewListener = (event: string | symbol) => {
    if (event !== 'data') return;
    req.off('newListener', onNewListener);
    req.on('data', (c: Buffer) => { ex.outcome.bytesIn += c.length; });
  };
  req.on('newListener', onNewListener);
  return req;
}

/**
 * The request body through the exchange's body check: each chunk is checked before it is sent, and
 * the last one is held back until the check has seen the end — a body the check refuses never
 * reaches the upstream whole, so the upstream never acts on it. The client's stream is left open
 * (not destroyed) when the check throws, so the refusal can still be answered.
 */
async function* checkedBody(req: IncomingMessage, ex: Exchange, check: RequestBodyCheck): AsyncGenerator<Buffer> {
  let held: Buffer | undefined;
  for await (const c of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    ex.outcome.bytesIn += c.length;
    check.push(c);
    if (held) yield held;
    held = c;
  }
  check.end();
  if (held) yield held;
}

/** Streams (SSE, chunked) get their headers at once; fixed bodies let headers ride with the first chunk. */
function isStreaming(headers: Record<string, string | string[] | undefined>): boolean {
  const type = headers['content-type'];
  return headers['content-length'] === undefined || (typeof type === 'string' && type.startsWith('text/event-stream'));
}

function safely(f: () => void): void {
  try {
    f();
  } catch {
    // an observer must never break the stream it watches
  }
}

function notifyEnd(observers: readonly ResponseObserver[], result: { complete: boolean; error?: string }): void {
  for (const o of observers) safely(() => o.onEnd(result));
}

/** Why the client's side ended: the gateway's own cut of a client that stopped sending its body, or the client leaving. */
function clientLeft(ex: Exchange, when: 'before' | 'during'): string {
  return typeof ex.notes['clientStalled'] === 'string' ? ex.notes['clientStalled'] : `client disconnected ${when} the response`;
}

export async function forwardHttp(ex: Exchange, req: IncomingMessage, res: ServerResponse, pools: UpstreamPools, hasBody: boolean): Promise<void> {
  const target = ex.target;
  if (!target) throw new Error('forwardHttp: no vetted target');
  const upstreamName = `${ex.host}:${ex.port}`;
  const pool = pools.poolFor({ address: target.address, port: target.port, servername: ex.host, tls: ex.scheme === 'https' });
  const headers: string[] = ['host', hostHeaderValue(ex.host, ex.hostKind, ex.port, ex.scheme)];
  for (const [n, v] of ex.headers) headers.push(n, v);
  const observers = ex.responseObservers;
  const ac = new AbortController();
  let body: Readable | undefined;
  let clientGone = false;

  let headersDeadline: NodeJS.Timeout | undefined;
  const onClientClose = () => {
    if (res.writableFinished) return;
    clientGone = true;
    const drain = ex.drainOnClientAbort;
    if (!drain) {
      ac.abort(new Error('client went away'));
      return;
    }
    if (!body) {
      // A metered request the provider may already be generating: wait for its answer (bounded like
      // the drain) and read its usage, rather than abort and leave it uncharged.
      if (!headersDeadline) {
        headersDeadline = setTimeout(() => ac.abort(new Error('client went away')), drain.maxMs);
        headersDeadline.unref();
      }
      return;
    }
    if (headersDeadline) clearTimeout(headersDeadline);
    // Keep reading the upstream (bounded in time and bytes) so the final usage is seen.
    const upstream = body;
    upstream.unpipe(res);
    const timer = setTimeout(() => upstream.destroy(new Error('drain deadline')), drain.maxMs);
    timer.unref();
    let drained = 0;
    upstream.on('data', (c: Buffer) => {
      drained += c.length;
      if (drained > drain.maxBytes) upstream.destroy(new Error('drain byte limit'));
    });
    upstream.once('close', () => clearTimeout(timer));
    upstream.resume();
  };
  res.once('close', onClientClose);

  if (ex.bodyCheck && ex.body.buffered) {
    // a stage read the body whole after the check was set (request signing): check that copy
    try {
      ex.bodyCheck.push(ex.body.buffered);
      ex.bodyCheck.end();
    } catch (err) {
      res.off('close', onClientClose);
      throw err;
    }
  }
  const started = performance.now();
  for (const o of observers) safely(() => o.onRequestSent?.());
  let response: Dispatcher.ResponseData;
  try {
    response = await pool.request({
      method: ex.method as Dispatcher.HttpMethod,
      path: ex.query ? `${ex.path}?${ex.query}` : (ex.path as string),
      headers,
      body: ex.body.buffered ?? (!hasBody ? null : ex.bodyCheck ? Readable.from(checkedBody(req, ex, ex.bodyCheck), { objectMode: false }) : countRequestBytes(req, ex)),
      signal: ac.signal,
      blocking: false,
    });
  } catch (err) {
    res.off('close', onClientClose);
    if (headersDeadline) clearTimeout(headersDeadline);
    if (err instanceof RequestRefusal) {
      // the body check refused the request mid-body: the client's connection cannot be reused
      ex.notes['bodyRefused'] = true;
      notifyEnd(observers, { complete: false, error: err.message });
      throw err;
    }
    if (ac.signal.aborted) {
      ex.outcome.error = clientLeft(ex, 'before');
      ex.outcome.status = 499;
      notifyEnd(observers, { complete: false, error: ex.outcome.error });
      return;
    }
    const refusal = upstreamRefusal(err, upstreamName);
    notifyEnd(observers, { complete: false, error: refusal.reason });
    throw refusal;
  }
  ex.outcome.upstreamMs = performance.now() - started;
  ex.outcome.status = response.statusCode;
  body = response.body;
  for (const o of observers) safely(() => o.onResponseStart(response.statusCode, response.headers));
  if (clientGone) {
    // the client left while the headers were on their way
    onClientClose();
  } else {
    res.writeHead(response.statusCode, relayableResponseHeaders(response.headers as Record<string, string | string[]>));
    if (isStreaming(response.headers)) res.flushHeaders();
  }
  const upstream = response.body;
  const result = await new Promise<{ complete: boolean; error?: string }>((resolve) => {
    let settled = false;
    const settle = (r: { complete: boolean; error?: string }) => {
      if (!settled) {
        settled = true;
        resolve(r);
      }
    };
    const outcome = ex.outcome;
    upstream.on('data', observers.length === 0
      ? (c: Buffer) => { outcome.bytesOut += c.length; }
      : (c: Buffer) => {
        outcome.bytesOut += c.length;
        for (let i = 0; i < observers.length; i++) {
          try {
            (observers[i] as ResponseObserver).onChunk(c);
          } catch {
            // an observer must never break the stream it watches
          }
        }
      });
    upstream.once('end', () => {
      if (!clientGone) res.end();
      settle(clientGone ? { complete: false, error: clientLeft(ex, 'during') } : { complete: true });
    });
    upstream.once('error', (err: Error) => {
      settle({ complete: false, error: clientGone ? clientLeft(ex, 'during') : upstreamRefusal(err, upstreamName).publicMessage });
    });
    upstream.once('close', () => settle({ complete: false, error: clientGone ? clientLeft(ex, 'during') : `upstream ${upstreamName} closed the response early` }));
    if (!clientGone) upstream.pipe(res, { end: false });
  });
  res.off('close', onClientClose);
  if (!result.complete) {
    ex.outcome.error = result.error;
    if (!res.writableEnded) res.destroy();
  }
  notifyEnd(observers, result);
}
