// Owns: reading the `_method` parameter of a POST form body as the body streams past (security
// case 3.05). Rack (Rails, Sinatra, GitLab) and PHP frameworks (Laravel, Symfony) apply the method
// a POST form names in `_method` — urlencoded, multipart, and for Rack a POST without a
// Content-Type — so the policy must allow that method too. The scanner holds nothing back and
// keeps bounded state (a name's first NAME_KEEP bytes, a value's VALUE_MAX, a part's header block
// up to PART_HEADERS_MAX); the
// caller holds back the body's last bytes until `end()` has spoken, so a refused body never
// reaches its upstream whole. Pure: content type and body bytes in, overrides out.
import { malformed, type Malformed } from './malformed.ts';
import { METHOD_OVERRIDE_PARAMETER, isMethodParameterName, overridesNamed, phpMangle, type MethodOverrideReading } from './method-override.ts';

export interface FormOverrideScanner {
  /** The overrides whose value ended within `chunk` (or malformed). */
  push(chunk: Buffer): MethodOverrideReading;
  /** The body is over: a parameter still open is read now. */
  end(): MethodOverrideReading;
}

/** Raw bytes of a parameter name kept to judge it (longer names are judged on this prefix). */
export const NAME_KEEP = 4096;
/** Raw bytes a `_method` value may have (percent-encoded, a method token is at most 96). */
export const VALUE_MAX = 256;
/** Bytes a multipart part's header block may have. */
export const PART_HEADERS_MAX = 16 * 1024;

const SOURCE = `body ${METHOD_OVERRIDE_PARAMETER}`;
const NONE: MethodOverrideReading = Object.freeze({ ok: true, overrides: Object.freeze([]) });

/** What Tollgate makes of a request's Content-Type: scan the body as a form, or not (undefined), or refuse it. */
export type FormScannerChoice = FormOverrideScanner | undefined | Malformed;

/**
 * A scanner for a POST whose body an application may read as a form, else undefined: nothing in
 * that body names a method. Read as widely as Rack and PHP read it: the media type ends at `;`,
 * `,` or white space; no type at all is a form to Rack; any `multipart/*` is parsed by Rack. A
 * multipart type whose boundary Rack and PHP would read differently (or not at all) is refused.
 */
export function formOverrideScanner(method: string, contentType: string | undefined): FormScannerChoice {
  if (method !== 'POST') return undefined;
  const ct = contentType ?? '';
  const type = mediaType(ct);
  if (type === '' || type === 'application/x-www-form-urlencoded') return urlencodedScanner(method);
  if (!type.startsWith('multipart/')) return undefined;
  const boundary = multipartBoundary(ct);
  if (boundary === undefined) return malformed('The request\'s multipart Content-Type has no boundary that Tollgate and the upstream would read alike, so Tollgate cannot read its form fields.');
  return multipartScanner(method, boundary);
}

/** The media type of a Content-Type value, lower-cased: cut at `;`, `,` or white space. */
function mediaType(contentType: string): string {
  return (/^[^;,\s]*/.exec(contentType.trim()) as RegExpExecArray)[0].toLowerCase();
}

/** Whether a Content-Type names a body Rack or PHP reads as a form (formOverrideScanner reads it). */
export function isFormContentType(contentType: string): boolean {
  const type = mediaType(contentType);
  return type === '' || type === 'application/x-www-form-urlencoded' || type.startsWith('multipart/');
}

/**
 * The boundary, when Rack (the last `boundary=`, up to `"`, `;` or `,`) and PHP (after the first
 * `=` that follows the first `boundary`; quoted, or up to `,` or `;`) read the same one of 1 to 200
 * bytes.
 */
function multipartBoundary(ct: string): string | undefined {
  const rack = [...ct.matchAll(/boundary="?([^";,]+)"?/gi)].at(-1)?.[1];
  const at = ct.toLowerCase().indexOf('boundary');
  const eq = ct.indexOf('=', at);
  if (rack === undefined || at === -1 || eq === -1) return undefined;
  const v = ct.slice(eq + 1);
  const php = v.startsWith('"') ? v.slice(1, v.indexOf('"', 1) === -1 ? undefined : v.indexOf('"', 1)) : (/^[^,;]*/.exec(v) as RegExpExecArray)[0];
  return rack === php && rack.length <= 200 ? rack : undefined;
}

/** Form decoding that never throws: `+` is a space, `%XX` a byte (read as Latin-1), any other `%` itself. */
export function decodeForm(raw: string): string {
  if (raw.indexOf('%') === -1 && raw.indexOf('+') === -1) return raw;
  return raw.replace(/\+/g, ' ').replace(/%([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
}

/**
 * Whether a parameter name may reach the application as `_method`. A whole name is decoded and
 * compared; a name longer than NAME_KEEP is judged on its prefix: counted as `_method` when it
 * starts like one (PHP's `_method[…]`, or `_method` and a NUL), undecidable (undefined) while the
 * prefix, after the spaces PHP and the brackets Rack drop, is empty or still a beginning of `_method`.
 */
export function nameIsMethod(raw: string, whole: boolean): boolean | undefined {
  // every spelling of `_method` has its `d`, or an escape: most names are ruled out at once
  if (whole) return /[dD%]/.test(raw) && isMethodParameterName(decodeForm(raw));
  const rest = decodeForm(raw.replace(/%[0-9A-Fa-f]?$/, '')).replace(/^[ [\]]+/, '');
  const head = phpMangle(rest.slice(0, 7));
  if (head === METHOD_OVERRIDE_PARAMETER) return true;
  return rest.length < 7 && METHOD_OVERRIDE_PARAMETER.startsWith(head) ? undefined : false;
}

/**
 * What a scanner has found: `_method` values collected since the last report, or the refusal it
 * is stuck at. `report()` turns the values into overrides, each method once per body.
 */
interface Findings {
  failed: MethodOverrideReading | undefined;
  add(value: string): void;
  report(): MethodOverrideReading;
}

function findings(method: string): Findings {
  const named: Array<{ source: string; value: string }> = [];
  const reported = new Set<string>();
  const f: Findings = {
    failed: undefined,
    add: (value) => { named.push({ source: SOURCE, value }); },
    report() {
      if (f.failed) return f.failed;
      if (named.length === 0) return NONE;
      const r = overridesNamed(method, named);
      named.length = 0;
      if (!r.ok) return (f.failed = r);
      const fresh = r.overrides.filter((o) => !reported.has(o.method));
      for (const o of fresh) reported.add(o.method);
      return fresh.length === r.overrides.length ? r : { ok: true, overrides: fresh };
    },
  };
  return f;
}

const valueTooLong = () => malformed(`The request body's ${METHOD_OVERRIDE_PARAMETER} parameter is too long to name a method; the upstream would apply it instead of POST.`);
const undecidableName = () => malformed(`The request body starts a form parameter name with over ${NAME_KEEP} bytes that Tollgate cannot tell from ${METHOD_OVERRIDE_PARAMETER}.`);

/** `application/x-www-form-urlencoded` (and Rack's reading of a POST without a Content-Type). */
function urlencodedScanner(method: string): FormOverrideScanner {
  let state: 'name' | 'value' | 'skip' = 'name';
  let name = '';
  let value = '';
  const found = findings(method);

  const takeValue = (): void => {
    found.add(decodeForm(value));
    value = '';
  };
  /** A name that has passed NAME_KEEP: judged on its prefix (its value follows its `=`, if it is `_method`). */
  const overlong = (): boolean => {
    const isMethod = nameIsMethod(name.slice(0, NAME_KEEP), false);
    if (isMethod === undefined) found.failed = undecidableName();
    return isMethod === true;
  };

  const scan = (s: string): void => {
    let i = 0;
    // where the next `&` and `=` are (searched again only once passed: linear in the chunk)
    let amp = -2;
    let eq = -2;
    const nextAmp = () => (amp !== -1 && amp < i ? (amp = s.indexOf('&', i)) : amp);
    while (i < s.length && !found.failed) {
      if (state === 'skip') {
        if (nextAmp() === -1) return;
        state = 'name';
        i = amp + 1;
      } else if (state === 'value') {
        const end = nextAmp() === -1 ? s.length : amp;
        value += s.slice(i, end);
        if (value.length > VALUE_MAX) {
          found.failed = valueTooLong();
          return;
        }
        if (amp === -1) return;
        takeValue();
        state = 'name';
        i = amp + 1;
      } else {
        if (eq !== -1 && eq < i) eq = s.indexOf('=', i);
        const a = nextAmp();
        const j = a === -1 ? (eq === -1 ? s.length : eq) : eq === -1 ? a : Math.min(a, eq);
        if (name.length <= NAME_KEEP) name += s.slice(i, Math.min(j, i + NAME_KEEP + 1 - name.length));
        if (j === s.length) {
          // the name goes on in the next chunk; one already past NAME_KEEP is judged now
          if (name.length > NAME_KEEP && !overlong() && !found.failed) {
            state = 'skip';
            name = '';
          }
          return;
        }
        const isMethod = name.length > NAME_KEEP ? overlong() : nameIsMethod(name, true);
        if (found.failed) return;
        // `_method` without `=` names nothing; `_method=` starts its value
        state = j === eq ? (isMethod ? 'value' : 'skip') : 'name';
        name = '';
        i = j + 1;
      }
    }
  };

  return {
    push(chunk) {
      scan(chunk.toString('latin1'));
      return found.report();
    },
    end() {
      if (!found.failed && state === 'value') takeValue();
      state = 'skip';
      return found.report();
    },
  };
}

/** Rack's token: a `name=` value without quotes ends at any of these. */
const RACK_TOKEN = /^[^\s()<>,;:\\"/[\]?=]+/;

/**
 * Every name a part's header block may give it, read as loosely as Rack and PHP read one: each
 * `name=` or `name*=` anywhere (also inside another quoted value, and with line breaks removed, as
 * PHP joins a continuation line), its value quoted with `"` (closed, or open to the line's end),
 * `'`, or bare (whole, and cut as Rack cuts a token); and any Content-ID value.
 */
export function partNames(block: string): string[] {
  const names: string[] = [];
  for (const text of [block, block.replace(/\r?\n/g, '')]) {
    for (const m of text.matchAll(/(?<![\w*-])name\*?\s*=\s*(?=("(?:\\.|[^"\\\r\n])*"?|'[^'\r\n]*'?|[^;\s]*))/gi)) {
      const raw = m[1] as string;
      const quote = raw[0] === '"' || raw[0] === "'" ? raw[0] : '';
      const unquoted = quote ? raw.slice(1, raw.endsWith(quote) && raw.length > 1 ? -1 : undefined) : raw;
      const value = quote === '"' ? unquoted.replace(/\\(.)/g, '$1') : unquoted;
      // RFC 5987 `name*=UTF-8''%5Fmethod`
      names.push(decodeForm(value.replace(/^[\w-]*'[\w-]*'/, '')));
      if (!quote) names.push(RACK_TOKEN.exec(value)?.[0] ?? '');
    }
  }
  for (const m of block.matchAll(/content-id\s*:\s*<?([^>\r\n]*)>?/gi)) names.push((m[1] as string).trim());
  return names;
}

/**
 * `multipart/*`: the content of every part any of whose header-block names could be `_method`
 * (Rack takes the last `name=`, PHP the first; Rack also reads `X-Content-Disposition` and falls
 * back to Content-ID: all of them count). Parts after the closing delimiter count too (PHP reads
 * on). A header block is ended by CRLF CRLF; one that an LF-only blank line would end first (PHP)
 * is refused, as Rack and PHP would read different headers and values from it.
 */
function multipartScanner(method: string, boundary: string): FormOverrideScanner {
  // Any `--boundary` ends a part (Rack ends one mid-line, and takes a delimiter line with white
  // space before it): a legitimate body never holds its boundary elsewhere.
  const delim = Buffer.from(`--${boundary}`, 'latin1');
  // 'preamble': before the first delimiter; 'headers': a part's header block; 'content': a part's
  // body (kept when it is `_method`), or the text after a closing delimiter
  let state: 'preamble' | 'headers' | 'content' = 'preamble';
  let carry: Buffer = Buffer.alloc(0);
  let headers = '';
  let capture: string | undefined;
  const found = findings(method);

  const scan = (buf: Buffer): void => {
    let i = 0;
    while (!found.failed) {
      if (state === 'preamble' || state === 'content') {
        const at = buf.indexOf(delim, i);
        const end = at === -1 ? Math.max(i, buf.length - delim.length + 1) : at;
        if (capture !== undefined) {
          capture += buf.toString('latin1', i, end);
          if (capture.length > VALUE_MAX) {
            found.failed = valueTooLong();
            return;
          }
        }
        if (at === -1) {
          carry = buf.subarray(end);
          return;
        }
        if (capture !== undefined) found.add(capture);
        capture = undefined;
        state = 'headers';
        headers = '';
        i = at + delim.length;
      } else {
        const all = headers + buf.toString('latin1', i);
        // The delimiter line's rest comes first: `--` closes the body (what follows is read on).
        if (all.startsWith('--')) {
          state = 'content';
          i += 2 - headers.length;
          continue;
        }
        // (searched from where the last chunk's search stopped: a block sent byte by byte stays linear)
        const from = Math.max(0, headers.length - 3);
        const crlf = all.indexOf('\r\n\r\n', from);
        // PHP ends the block at the first empty line, CR or not: it must be this one
        const lf = /\n\r?\n/g;
        lf.lastIndex = from;
        const php = lf.exec(all);
        if (php && (crlf === -1 || php.index !== crlf + 1)) {
          found.failed = malformed('A part of the request\'s multipart body ends its headers with a bare LF blank line, which the upstream may read differently; send CRLF line ends.');
          return;
        }
        if (crlf === -1) {
          headers = all;
          if (headers.length > PART_HEADERS_MAX) found.failed = malformed(`A part of the request's multipart body has a header block over ${PART_HEADERS_MAX} bytes.`);
          carry = Buffer.alloc(0);
          return;
        }
        i += crlf + 4 - headers.length;
        capture = partNames(all.slice(0, crlf)).some(isMethodParameterName) ? '' : undefined;
        state = 'content';
      }
    }
  };

  return {
    push(chunk) {
      scan(carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk);
      return found.report();
    },
    end() {
      // a body cut short: a `_method` part still open counts with what arrived
      if (!found.failed && capture !== undefined) {
        capture += carry.toString('latin1');
        if (capture.length > VALUE_MAX) found.failed = valueTooLong();
        else found.add(capture);
        capture = undefined;
      }
      return found.report();
    },
  };
}
