// Owns: sending one admitted request upstream through the pool for its vetted address and
// streaming the response back — both bodies streamed with backpressure, never buffered whole;
// a client that goes away aborts the upstream request.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Dispatcher } from 'undici';
import { upstreamRefusal } from '../upstream/upstream-error.ts';
import type { UpstreamPools } from '../upstream/upstream-pools.ts';
import type { Exchange, ResponseObserver } from './exchange.ts';
import { relayableResponseHeaders } from './header-filter.ts';

export function hostHeaderValue(host: string, kind: Exchange['hostKind'], port: number, scheme: 'http' | 'https'): string {
  const h = kind === 'ipv6' ? `[${host}]` : host;
  const defaultPort = scheme === 'https' ? 443 : 80;
  return port === defaultPort ? h : `${h}:${port}`;
}

async function* countingBody(req: IncomingMessage, ex: Exchange): AsyncGenerator<Buffer> {
  for await (const chunk of req) {
    ex.outcome.bytesIn += (chunk as Buffer).length;
    yield chunk as Buffer;
  }
}

export async function forwardHttp(ex: Exchange, req: IncomingMessage, res: ServerResponse, pools: UpstreamPools, hasBody: boolean): Promise<void> {
  const target = ex.target;
  if (!target) throw new Error('forwardHttp: no vetted target');
  const pool = pools.poolFor({ address: target.address, port: target.port, servername: ex.host, tls: ex.scheme === 'https' });
  const headers: string[] = ['host', hostHeaderValue(ex.host, ex.hostKind, ex.port, ex.scheme)];
  for (const [n, v] of ex.headers) headers.push(n, v);
  const ac = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) ac.abort(new Error('client went away'));
  };
  res.once('close', onClose);
  const started = performance.now();
  let response: Dispatcher.ResponseData;
  try {
    response = await pool.request({
      method: ex.method as Dispatcher.HttpMethod,
      path: ex.query ? `${ex.path}?${ex.query}` : (ex.path as string),
      headers,
      body: ex.body.buffered ?? (hasBody ? Readable.from(countingBody(req, ex), { objectMode: false }) : null),
      signal: ac.signal,
      blocking: false,
    });
  } catch (err) {
    const observers = ex.responseObservers;
    if (ac.signal.aborted) {
      ex.outcome.error = 'client disconnected before the response';
      ex.outcome.status = 499;
      notifyEnd(observers, { complete: false, error: ex.outcome.error });
      return;
    }
    const refusal = upstreamRefusal(err, `${ex.host}:${ex.port}`);
    notifyEnd(observers, { complete: false, error: refusal.reason });
    throw refusal;
  }
  ex.outcome.upstreamMs = performance.now() - started;
  ex.outcome.status = response.statusCode;
  const observers = ex.responseObservers;
  for (const o of observers) safely(() => o.onResponseStart(response.statusCode, response.headers));
  res.writeHead(response.statusCode, relayableResponseHeaders(response.headers as Record<string, string | string[]>));
  res.flushHeaders();
  response.body.on('data', (c: Buffer) => {
    ex.outcome.bytesOut += c.length;
    for (const o of observers) safely(() => o.onChunk(c));
  });
  try {
    await pipeline(response.body, res);
    notifyEnd(observers, { complete: true });
  } catch (err) {
    if (!ac.signal.aborted) ex.outcome.error = upstreamRefusal(err, `${ex.host}:${ex.port}`).publicMessage;
    else ex.outcome.error = 'client disconnected during the response';
    notifyEnd(observers, { complete: false, error: ex.outcome.error });
    res.destroy();
  } finally {
    res.off('close', onClose);
  }
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
