// Owns: writing a refusal to the client — on an HTTP response, or as raw bytes on a socket for
// CONNECT and upgrade requests (status line, then close).
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import { RequestRefusal } from '../errors.ts';
import type { Exchange } from './exchange.ts';
import { renderRefusal } from './refusal-response.ts';

/** How long a socket that was ended may stay half-open before it is destroyed. */
const CLOSE_GRACE_MS = 2000;

export function toRefusal(err: unknown): RequestRefusal {
  if (err instanceof RequestRefusal) return err;
  return new RequestRefusal('internal_error', undefined, { detail: err instanceof Error ? (err.stack ?? err.message) : String(err), cause: err });
}

function rendered(ex: Exchange, r: RequestRefusal) {
  ex.outcome.status = r.status;
  ex.outcome.reason = r.reason;
  ex.outcome.error ??= r.detail ?? r.publicMessage;
  return renderRefusal({
    requestId: ex.id,
    status: r.status,
    reason: r.reason,
    message: r.publicMessage,
    rule: ex.decision?.rule ?? null,
    host: ex.host || undefined,
    team: ex.principal?.team,
    retryAfterMs: r.retryAfterMs,
  });
}

/** Sends the refusal on an HTTP response. `close` asks the client to open a new connection. */
export function sendRefusal(res: ServerResponse, ex: Exchange, err: unknown, close: boolean): void {
  const r = toRefusal(err);
  const out = rendered(ex, r);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (close) {
    out.headers.push(['Connection', 'close']);
    res.shouldKeepAlive = false;
  }
  res.writeHead(out.status, out.headers.flat());
  res.end(out.body);
}

/** Writes the refusal as a raw HTTP/1.1 response on a socket, then closes it. */
export function sendRawRefusal(socket: Duplex, ex: Exchange, err: unknown): void {
  const r = toRefusal(err);
  const out = rendered(ex, r);
  if (socket.destroyed || !socket.writable) return;
  let head = `HTTP/1.1 ${out.status} ${STATUS_CODES[out.status] ?? 'Error'}\r\n`;
  for (const [n, v] of out.headers) head += `${n}: ${v}\r\n`;
  head += 'Connection: close\r\n\r\n';
  socket.end(head + out.body);
  setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
}

/** Ends the socket (what was written still flushes) and destroys it if the peer keeps its side open. */
export function endThenDestroy(socket: Duplex): void {
  socket.end();
  setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
}
