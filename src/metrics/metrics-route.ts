// Owns: `GET /metrics` on the admin listener — the registry in the Prometheus text format — and
// its optional bearer token (`metrics.bearer_token_secret`, resolved through the secret source on
// every scrape so a rotated secret applies at once). With a token configured but no value behind
// it, the route fails closed (503).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import type { AdminRoute } from '../admin/admin-server.ts';

export interface MetricsRouteOptions {
  registry: Registry;
  /**
   * Undefined: no token required (the admin listener is loopback or a management network).
   * Otherwise returns the current token, or undefined when the secret has no value.
   */
  bearerToken?: (() => string | undefined) | undefined;
}

function sendError(res: ServerResponse, status: number, code: string, message: string, extra: Record<string, string> = {}): void {
  const text = JSON.stringify({ error: { code, message } });
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    ...extra,
  });
  res.end(text);
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** Constant-time comparison of an `Authorization` header with `Bearer <token>`. */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header ?? '');
  const presented = m?.[1] ?? '';
  // Compare digests: equal length whatever was sent, and no early exit on the first difference.
  return timingSafeEqual(digest(presented), digest(token)) && presented !== '';
}

export function metricsRoute(opts: MetricsRouteOptions): AdminRoute {
  return {
    method: 'GET',
    path: '/metrics',
    async handle(req, res) {
      if (opts.bearerToken) {
        const token = opts.bearerToken();
        if (token === undefined) {
          sendError(res, 503, 'metrics_token_unavailable', 'metrics.bearer_token_secret is set but the secret has no value; set it to scrape /metrics.');
          return;
        }
        if (!bearerMatches(req.headers.authorization, token)) {
          sendError(res, 401, 'unauthorized', 'GET /metrics requires Authorization: Bearer <token>.', { 'WWW-Authenticate': 'Bearer realm="tollgate-metrics"' });
          return;
        }
      }
      const text = await opts.registry.metrics();
      res.writeHead(200, {
        'Content-Type': opts.registry.contentType,
        'Content-Length': Buffer.byteLength(text),
        'Cache-Control': 'no-store',
        'X-Content-Type-Options': 'nosniff',
      });
      res.end(text);
    },
  };
}
