// Owns: the HTTP plumbing of the admin API — JSON answers and errors with the same security
// headers everywhere, and reading a JSON request body under the 1 MB limit (413) through the
// parser that refuses prototype keys and non-finite numbers.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseAdminJson } from './parse-admin-json.ts';

export const MAX_ADMIN_BODY_BYTES = 1024 * 1024;

/** Headers every admin API answer carries: never cached, never sniffed, never framed. */
export const API_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'",
  'Referrer-Policy': 'no-referrer',
});

export function sendJson(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...API_HEADERS, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...extra });
  res.end(text);
}

export function sendError(res: ServerResponse, status: number, code: string, message: string, extra: Record<string, string> = {}): void {
  sendJson(res, status, { error: { code, message } }, extra);
}

export type BodyResult =
  | { ok: true; value: unknown }
  | { ok: false; status: 400 | 413 | 415; code: string; message: string };

/** Reads and parses an application/json body of at most `limit` bytes. */
export async function readJsonBody(req: IncomingMessage, limit = MAX_ADMIN_BODY_BYTES): Promise<BodyResult> {
  const tooLarge = { ok: false as const, status: 413 as const, code: 'body_too_large', message: `The request body is larger than ${limit} bytes.` };
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) return tooLarge;
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json') return { ok: false, status: 415, code: 'unsupported_media_type', message: 'Send the request body as application/json.' };
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > limit) return tooLarge;
    chunks.push(chunk);
  }
  const parsed = parseAdminJson(Buffer.concat(chunks).toString('utf8'));
  return parsed.ok ? parsed : { ok: false, status: 400, code: parsed.code, message: parsed.message };
}
