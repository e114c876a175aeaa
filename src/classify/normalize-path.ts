// Owns: the one canonical form of a request path, which is both matched by policy and forwarded
// upstream (percent-decoding of unreserved characters, slashes merged, dot segments resolved).
import { malformed, type Malformed } from './malformed.ts';

export type NormalizedPath = { ok: true; path: string };

const HEX = '0123456789ABCDEF';

// Per ASCII byte: 1 = unreserved (ALPHA DIGIT - . _ ~), decoded from %XX.
const UNRESERVED = (() => {
  const t = new Uint8Array(128);
  for (let c = 0x41; c <= 0x5a; c++) t[c] = 1;
  for (let c = 0x61; c <= 0x7a; c++) t[c] = 1;
  for (let c = 0x30; c <= 0x39; c++) t[c] = 1;
  t[0x2d] = 1;
  t[0x2e] = 1;
  t[0x5f] = 1;
  t[0x7e] = 1;
  return t;
})();

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

/** Refusal message for a raw character, or null when it may stay as is. */
function rawCharProblem(c: number): string | null {
  if (c === 0) return 'a NUL byte is not allowed in the path';
  if (c <= 0x20 || c >= 0x7f) return 'whitespace, control and non-ASCII characters must be percent-encoded in the path';
  if (c === 0x5c) return 'a backslash is not allowed in the path';
  if (c === 0x3f || c === 0x23) return 'the path must not contain a query or fragment';
  return null;
}

/** Refusal message for a decoded %XX byte that must not be in a path, or null. */
function escapeProblem(v: number): string | null {
  if (v === 0x2f) return 'an encoded slash (%2F) is not allowed in the path';
  if (v === 0x5c) return 'an encoded backslash (%5C) is not allowed in the path';
  if (v === 0) return 'a NUL byte (%00) is not allowed in the path';
  if (v < 0x20 || v === 0x7f) return 'an encoded control character is not allowed in the path';
  return null;
}

/** Whether the path is already canonical: printable ASCII, no `%`, `\`, `//` or segment starting with `.`. */
function isCanonical(p: string): boolean {
  let prev = 0;
  for (let i = 0; i < p.length; i++) {
    const c = p.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c === 0x25 || c === 0x5c || c === 0x3f || c === 0x23) return false;
    if (prev === 0x2f && (c === 0x2f || c === 0x2e)) return false;
    prev = c;
  }
  return true;
}

/** Adds a finished segment to the output stack; a message when it climbs above the root or is ambiguous. */
function pushSegment(out: string[], seg: string): string | null {
  if (seg === '' || seg === '.') return null;
  if (seg === '..') {
    if (out.length === 0) return 'the path climbs above the root';
    out.pop();
    return null;
  }
  if (seg.startsWith('.;') || seg.startsWith('..;')) return 'a dot segment with parameters (".;" or "..;") is ambiguous and not allowed';
  out.push(seg);
  return null;
}

/**
 * Canonical path: must start with `/`; decodes %XX of unreserved characters and upper-cases the
 * other escapes; merges repeated slashes; resolves `.` and `..` (also encoded) and keeps a trailing
 * slash (`/a/b/..` → `/a/`). Refuses encoded `/` or `\`, a literal `\`, NUL, controls, raw
 * non-ASCII, malformed escapes, `?`/`#`, and climbing above the root. Idempotent.
 */
export function normalizePath(rawPath: string): NormalizedPath | Malformed {
  if (rawPath.length === 0 || rawPath.charCodeAt(0) !== 0x2f) return malformed('the path must start with "/"');
  if (isCanonical(rawPath)) return { ok: true, path: rawPath };
  const out: string[] = [];
  let seg = '';
  const len = rawPath.length;
  for (let i = 1; i < len; i++) {
    const c = rawPath.charCodeAt(i);
    if (c === 0x2f) {
      const problem = pushSegment(out, seg);
      if (problem !== null) return malformed(problem);
      seg = '';
    } else if (c === 0x25) {
      const hi = i + 2 < len ? hexDigit(rawPath.charCodeAt(i + 1)) : -1;
      const lo = hi >= 0 ? hexDigit(rawPath.charCodeAt(i + 2)) : -1;
      if (lo < 0) return malformed('the path has a malformed percent-escape');
      const v = hi * 16 + lo;
      const problem = escapeProblem(v);
      if (problem !== null) return malformed(problem);
      seg += v < 0x80 && UNRESERVED[v] === 1 ? String.fromCharCode(v) : `%${HEX[hi]}${HEX[lo]}`;
      i += 2;
    } else {
      const problem = rawCharProblem(c);
      if (problem !== null) return malformed(problem);
      seg += rawPath[i];
    }
  }
  const trailing = seg === '' || seg === '.' || seg === '..';
  const problem = pushSegment(out, seg);
  if (problem !== null) return malformed(problem);
  if (out.length === 0) return { ok: true, path: '/' };
  return { ok: true, path: `/${out.join('/')}${trailing ? '/' : ''}` };
}
