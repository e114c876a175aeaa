// Owns: the one canonical form of an admin request path, computed before any route is chosen, so
// every spelling of a path (`/API/v1/audit`, `/api/v1/../api/v1/audit`, `/api//v1/audit`,
// `/api/v1/audit;x`, `/api/v1/audit/`, `/api/v1/%61udit`) reaches the same route and the same
// authorisation check (security case 9.02). PURE.

export type CanonicalPath =
  | { ok: true; path: string }
  | { ok: false; reason: string };

/**
 * The query string is dropped (routes read it from req.url). Each segment is percent-decoded once,
 * loses any `;parameters`, and is lower-cased; empty and `.` segments vanish; `..` removes the
 * previous segment (never above the root); a trailing slash is dropped. Refused: a target that is
 * not origin-form, a malformed escape, and a decoded segment holding `/`, `\`, `%`, `?`, `#` or a
 * control character (an encoded separator would otherwise mean two different paths).
 */
export function canonicalAdminPath(target: string): CanonicalPath {
  const raw = target.split(/[?#]/, 1)[0] ?? '';
  if (!raw.startsWith('/')) return { ok: false, reason: 'the request target must be a path starting with /' };
  if (raw.length > 2048) return { ok: false, reason: 'the path is longer than 2048 characters' };
  if (raw.includes('\\')) return { ok: false, reason: 'the path holds a backslash' };
  const out: string[] = [];
  for (const piece of raw.split('/')) {
    let seg: string;
    try {
      seg = decodeURIComponent(piece);
    } catch {
      return { ok: false, reason: 'the path holds a malformed percent escape' };
    }
    // eslint-disable-next-line no-control-regex
    if (/[/\\%?#\u0000-\u001f\u007f]/.test(seg)) return { ok: false, reason: 'the path holds an encoded separator or control character' };
    const semi = seg.indexOf(';');
    if (semi >= 0) seg = seg.slice(0, semi);
    seg = seg.toLowerCase();
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      out.pop();
      continue;
    }
    out.push(seg);
  }
  return { ok: true, path: `/${out.join('/')}` };
}
