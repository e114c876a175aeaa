// Owns: serving the web dashboard on the admin listener — `GET /` (admins only: a visitor who is
// not signed in is sent to the SSO sign-in and back; a signed-in non-admin gets 403) and its
// static assets under `/dashboard/` (plain ES modules, CSS and SVG drawn in the browser; no CDN,
// no build step, works offline). Every page carries a strict Content-Security-Policy with no
// inline script or style. The assets hold no data: all data comes from the /api/v1 routes.
import { readdirSync, readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { AuthenticateAdmin } from './admin-auth.ts';
import type { AdminRoute } from './admin-server.ts';
import { canonicalAdminPath } from './canonical-path.ts';

export const DASHBOARD_CSP = [
  "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'",
  "font-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'", "form-action 'self'",
].join('; ');

const PAGE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'Content-Security-Policy': DASHBOARD_CSP,
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
});

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml',
};

export const DASHBOARD_DIR = fileURLToPath(new URL('./dashboard/', import.meta.url));

interface Asset { type: string; body: Buffer }

/** Reads the asset folder once: only these files, by their lower-case names, are ever served. */
export function loadDashboardAssets(dir = DASHBOARD_DIR): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const name of readdirSync(dir)) {
    const ext = name.slice(name.lastIndexOf('.'));
    const type = TYPES[ext];
    if (type !== undefined && /^[a-z0-9-]+\.[a-z]+$/.test(name)) assets.set(name, { type, body: readFileSync(`${dir}/${name}`) });
  }
  return assets;
}

function send(res: ServerResponse, status: number, type: string, body: Buffer | string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { ...PAGE_HEADERS, 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-cache', ...extra });
  res.end(body);
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function createDashboardRoutes(deps: { authenticate: AuthenticateAdmin; assets?: Map<string, Asset> }): AdminRoute[] {
  const assets = deps.assets ?? loadDashboardAssets();
  const index = assets.get('index.html');
  const page: AdminRoute = {
    method: 'GET',
    path: '/',
    async handle(req, res) {
      const d = await deps.authenticate(req);
      if (!d.ok && d.status === 401) {
        res.writeHead(303, { ...PAGE_HEADERS, Location: '/auth/login?return_to=%2F', 'Cache-Control': 'no-store', 'Content-Length': 0 });
        res.end();
        return;
      }
      if (!d.ok) {
        send(res, 403, 'text/html; charset=utf-8',
          `<!doctype html><html><head><meta charset="utf-8"><title>Tollgate: not an admin</title></head><body><h1>Not an admin</h1><p>${esc(d.message)}</p>` +
          '<p>Ask for a place in an admin group of org.yaml, then <a href="/auth/login?return_to=%2F">sign in again</a>.</p></body></html>',
          { 'Cache-Control': 'no-store' });
        return;
      }
      if (!index) {
        send(res, 500, 'text/plain; charset=utf-8', 'The dashboard assets are missing from this build.');
        return;
      }
      send(res, 200, index.type, index.body, { 'Cache-Control': 'no-store' });
    },
  };
  const asset: AdminRoute = {
    method: 'GET',
    path: '/dashboard/*',
    handle(req, res) {
      const canon = canonicalAdminPath(req.url ?? '/');
      const name = canon.ok ? canon.path.slice('/dashboard/'.length) : '';
      const a = name === 'index.html' ? undefined : assets.get(name);
      if (!a) {
        send(res, 404, 'text/plain; charset=utf-8', 'Not found.');
        return;
      }
      send(res, 200, a.type, a.body);
    },
  };
  return [page, asset];
}
