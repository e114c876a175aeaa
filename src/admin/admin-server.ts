// Owns: the admin listener — health, readiness, and the routes mounted on it (sign-in, admin API,
// metrics, dashboard). Refuses foreign Host headers (DNS rebinding) before any route runs, and
// routes on the canonical path (canonical-path.ts): exact routes first, then `/prefix/*` routes.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type net from 'node:net';
import { canonicalAdminPath } from './canonical-path.ts';

export interface ReadinessCheck { name: string; ok: boolean; detail?: string }

export interface AdminRoute {
  /** An HTTP method, or `*` for every method (prefix routes). */
  method: string;
  /** A canonical path (lower case, no trailing slash), or `/prefix/*` for every path under it. */
  path: string;
  handle(req: IncomingMessage, res: ServerResponse): void | Promise<void>;
}

export interface AdminServerDeps {
  readiness: () => ReadinessCheck[];
  routes?: AdminRoute[];
  /** Host names (without port) the admin UI may be reached as, besides loopback literals. */
  allowedHosts?: readonly string[];
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(text);
}

export function createAdminServer(deps: AdminServerDeps): { listen(host: string, port: number): Promise<{ host: string; port: number }>; close(): Promise<void> } {
  const allowed = new Set(['localhost', '127.0.0.1', '[::1]', ...(deps.allowedHosts ?? [])]);
  const server = http.createServer({ maxHeaderSize: 16_384, headersTimeout: 15_000, requestTimeout: 30_000 }, (req, res) => {
    const hostHeader = (req.headers.host ?? '').toLowerCase();
    const hostOnly = hostHeader.startsWith('[') ? hostHeader.slice(0, hostHeader.indexOf(']') + 1) : hostHeader.split(':')[0] ?? '';
    if (!allowed.has(hostOnly)) {
      sendJson(res, 403, { error: { code: 'host_not_allowed', message: 'The admin listener answers only to its own host names.' } });
      return;
    }
    // Route on the canonical path only, so every spelling of a path gets the same answer (9.02).
    const canon = canonicalAdminPath(req.url ?? '/');
    if (!canon.ok) {
      sendJson(res, 400, { error: { code: 'bad_path', message: `The path is refused: ${canon.reason}.` } });
      return;
    }
    const path = canon.path;
    if (req.method === 'GET' && path === '/healthz') {
      sendJson(res, 200, { status: 'ok' });
      return;
    }
    if (req.method === 'GET' && path === '/readyz') {
      const checks = deps.readiness();
      const ok = checks.every((c) => c.ok);
      sendJson(res, ok ? 200 : 503, { status: ok ? 'ready' : 'not_ready', checks });
      return;
    }
    const route = deps.routes?.find((r) => r.method === req.method && r.path === path)
      ?? deps.routes?.find((r) => r.path.endsWith('/*') && (r.method === '*' || r.method === req.method) && `${path}/`.startsWith(r.path.slice(0, -1)));
    if (route) {
      void Promise.resolve(route.handle(req, res)).catch(() => {
        if (!res.headersSent) sendJson(res, 500, { error: { code: 'internal_error', message: 'The admin request failed.' } });
      });
      return;
    }
    sendJson(res, 404, { error: { code: 'not_found', message: `No route for ${req.method ?? ''} ${path}.` } });
  });
  return {
    listen(host, port) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host, port }, () => {
          server.off('error', reject);
          const a = server.address() as net.AddressInfo;
          resolve({ host: a.address, port: a.port });
        });
      });
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
