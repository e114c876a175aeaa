// Owns: turning a policy path glob into a matcher over normalised paths, with the documented
// semantics: `*` matches within one segment, `**` (a whole segment) across segments including
// none (`/v1/**` matches `/v1`, `/v1/` and `/v1/a/b`), every other character literal, case-
// insensitive unless the rule says otherwise. Matching uses picomatch on escaped input. PURE.
import picomatch from 'picomatch';
import type { PathMatcher } from '../types.ts';

const ESCAPE = /[+()[\]{}|!@$^,]/g;

export type PathGlobResult = { ok: true; matcher: PathMatcher; warning?: string } | { ok: false; message: string };

export function compilePathGlob(glob: string, caseSensitive = false): PathGlobResult {
  if (!glob.startsWith('/')) return { ok: false, message: `path "${glob}" must start with "/"` };
  if (glob.includes('?')) return { ok: false, message: `path "${glob}" contains "?": the query string is not part of the path, and "?" is not a wildcard here` };
  if (glob.includes('#')) return { ok: false, message: `path "${glob}" contains "#": fragments are never sent to a server` };
  if (glob.includes('\\')) return { ok: false, message: `path "${glob}" contains a backslash; paths with backslashes are refused before policy is consulted` };
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x20\x7f]/.test(glob)) return { ok: false, message: `path "${glob}" contains a space or control character` };
  const segments = glob.split('/').slice(1);
  for (const seg of segments) {
    if (seg.includes('**') && seg !== '**') {
      return { ok: false, message: `path "${glob}": "**" must be a whole segment (write /a/**/b or /a/*b for one segment)` };
    }
    if (seg === '.' || seg === '..') return { ok: false, message: `path "${glob}" contains a dot segment; paths are matched after "." and ".." are resolved` };
  }
  if (/%(?:[46][1-9a-fA-F]|[57][0-9aA]|3[0-9]|2[dDeE]|5[fF]|7[eE])/.test(glob)) {
    return { ok: false, message: `path "${glob}" percent-encodes an unreserved character; paths are matched after decoding, so write the character itself` };
  }
  let warning: string | undefined;
  if (glob.length > 2 && glob.endsWith('/*')) {
    warning = `path "${glob}" ends with "/*", which matches one segment only — did you mean ${glob.slice(0, -1)}**?`;
  }
  const escaped = glob.replace(ESCAPE, (c) => `\\${c}`);
  const re = picomatch.makeRe(escaped, { nocase: !caseSensitive, dot: true, nobrace: true, noextglob: true, posix: true });
  const matcher: PathMatcher = { glob, test: RegExp.prototype.test.bind(re) as (path: string) => boolean };
  return warning ? { ok: true, matcher, warning } : { ok: true, matcher };
}

/** Whether every path `inner` matches is matched by `outer` (conservative: false when unsure). */
export function pathGlobCovers(outer: string, inner: string): boolean {
  if (outer === inner || outer === '/**') return true;
  if (outer.endsWith('/**')) {
    const prefix = outer.slice(0, -3);
    if (prefix.includes('*')) return false;
    return inner === prefix || inner.startsWith(`${prefix}/`);
  }
  return false;
}
