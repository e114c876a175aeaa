// Owns: the canonical form of a host name or IP literal, and host globs (matching on canonical
// hosts, and validating the globs a policy may contain).
import { domainToASCII } from 'node:url';
import { formatIPv4, formatIPv6, inspectIPv4, parseIPv6 } from './ip-address.ts';
import { malformed, type Malformed } from './malformed.ts';

export { validateAddressRule, type AddressRuleResult } from './address-rule.ts';

export type HostKind = 'dns' | 'ipv4' | 'ipv6';
export type NormalizedHost = { ok: true; host: string; kind: HostKind };
export type HostGlobResult = { ok: true; glob: string } | { ok: false; message: string };

const MAX_INPUT = 1024;
const MAX_NAME = 253;
const MAX_LABEL = 63;

// ASCII character classes for host names.
// 0: not allowed in a host (the table's default)
const OK = 1; // a-z 0-9 - _ .
const UPPER = 2; // A-Z
const COLON = 3;
const HOST_CHARS = (() => {
  const t = new Uint8Array(128);
  for (let c = 0x61; c <= 0x7a; c++) t[c] = OK;
  for (let c = 0x30; c <= 0x39; c++) t[c] = OK;
  for (let c = 0x41; c <= 0x5a; c++) t[c] = UPPER;
  t[0x2d] = OK;
  t[0x5f] = OK;
  t[0x2e] = OK;
  t[0x3a] = COLON;
  return t;
})();

/** Why the ASCII or C1 character c may not appear in a host (slow path, only on refusal). */
function badCharMessage(c: number): string {
  if (c === 0x40) return 'userinfo ("@") is not allowed in a host';
  if (c === 0x5c) return 'a backslash is not allowed in a host';
  if (c === 0x25) return 'percent-encoding and zone identifiers ("%") are not allowed in a host';
  if (c === 0x2f || c === 0x3f || c === 0x23) return 'a path, query or fragment ("/", "?", "#") is not allowed in a host';
  if (c <= 0x20 || (c >= 0x7f && c <= 0xa0)) return 'whitespace and control characters are not allowed in a host';
  if (c === 0x5b || c === 0x5d) return 'brackets are only allowed around a whole IPv6 address';
  return `the character "${String.fromCharCode(c)}" is not allowed in a host name`;
}

function ipv6Host(inner: string): NormalizedHost | Malformed {
  const bytes = parseIPv6(inner);
  if (bytes === null) {
    return malformed(inner.includes('%') ? 'zone identifiers ("%") are not allowed in an IPv6 host' : 'the host is not a valid IPv6 address');
  }
  return { ok: true, host: formatIPv6(bytes), kind: 'ipv6' };
}

/** Length, label and (for IDNA output) character checks on a non-empty lower-case ASCII name. */
function checkName(name: string, mapped: boolean): Malformed | null {
  if (name.length > MAX_NAME) return malformed(`the host name is longer than ${MAX_NAME} characters`);
  let labelStart = 0;
  for (let i = 0; i <= name.length; i++) {
    const c = i < name.length ? name.charCodeAt(i) : 0x2e;
    if (c === 0x2e) {
      const n = i - labelStart;
      if (n === 0) return malformed('the host has an empty label ("..", or a leading dot)');
      if (n > MAX_LABEL) return malformed(`a label of the host is longer than ${MAX_LABEL} characters`);
      labelStart = i + 1;
    } else if (mapped && (c >= 0x80 || HOST_CHARS[c] !== OK)) {
      return malformed('the host has characters outside letters, digits, "-", "_" and "."');
    }
  }
  return null;
}

/**
 * The canonical host: lower case, one trailing dot removed, IDN (UTS-46) as punycode, IPv4 in any
 * notation as dotted decimal, IPv6 (brackets optional, returned without) in RFC 5952 form.
 * Refuses userinfo, `\`, `%`, whitespace, controls, `/ ? #`, empty or overlong labels, other
 * characters, and a numeric last label that is not a valid IPv4 address (`1.2.3.999`).
 */
export function normalizeHost(input: string): NormalizedHost | Malformed {
  const len = input.length;
  if (len === 0) return malformed('the host is empty');
  if (len > MAX_INPUT) return malformed('the host is too long');
  if (input.charCodeAt(0) === 0x5b) {
    if (input.charCodeAt(len - 1) !== 0x5d) return malformed('an IPv6 host must be closed with "]"');
    return ipv6Host(input.slice(1, -1));
  }
  let upper = false;
  let colon = false;
  let nonAscii = false;
  for (let i = 0; i < len; i++) {
    const c = input.charCodeAt(i);
    if (c >= 0x80) {
      if (c <= 0xa0) return malformed(badCharMessage(c));
      nonAscii = true;
      continue;
    }
    const k = HOST_CHARS[c];
    if (k === OK) continue;
    if (k === UPPER) upper = true;
    else if (k === COLON) colon = true;
    else return malformed(badCharMessage(c));
  }
  if (colon) {
    if (nonAscii) return malformed('the host is not a valid IPv6 address');
    return ipv6Host(input);
  }
  // UTS-46 folds case itself; JS toLowerCase is only safe (and only needed) on pure ASCII.
  let name = input;
  let mapped = nonAscii;
  if (!nonAscii) {
    if (upper) name = name.toLowerCase();
    mapped = name.includes('xn--'); // punycode labels are validated by the IDNA mapping too
  }
  if (mapped) {
    name = domainToASCII(name);
    if (name.length === 0) return malformed('the host is not a valid internationalised domain name');
  }
  if (name.length > 1 && name.charCodeAt(name.length - 1) === 0x2e) name = name.slice(0, -1);
  const v4 = inspectIPv4(name);
  if (v4.kind === 'ipv4') return { ok: true, host: formatIPv4(v4.value), kind: 'ipv4' };
  if (v4.kind === 'invalid') return malformed('the host ends in a number but is not a valid IPv4 address');
  const problem = checkName(name, mapped);
  if (problem !== null) return problem;
  return { ok: true, host: name, kind: 'dns' };
}

/**
 * Host glob match on canonical inputs: `*` matches every host; `*.example.com` matches one or more
 * labels before `.example.com` (not `example.com`, not `badexample.com`); anything else is exact.
 */
export function hostMatchesGlob(host: string, glob: string): boolean {
  if (glob.length > 1 && glob.charCodeAt(0) === 0x2a && glob.charCodeAt(1) === 0x2e) {
    const suffixLen = glob.length - 1; // ".example.com"
    return host.length > suffixLen && host.endsWith(glob.slice(1));
  }
  return glob === '*' || host === glob;
}

/** Fix-it messages for a glob that carries a scheme, port or path (before name validation). */
function locatorProblem(glob: string): string | null {
  if (glob.includes('://')) return `"${glob}" is a URL; write only the host, e.g. "api.example.com"`;
  if (glob.includes('/')) return `"${glob}" has a path or is a CIDR range; a host glob is a name only (put paths in http rules, and address ranges in an address rule)`;
  const firstColon = glob.indexOf(':');
  if (firstColon < 0) return null;
  const bracketed = glob.startsWith('[');
  if ((bracketed && !glob.endsWith(']')) || (!bracketed && glob.indexOf(':', firstColon + 1) < 0)) {
    return `"${glob}" has a port; write the host alone and list the port under ports:`;
  }
  return null;
}

/** Message for a glob whose `*` is not the whole first label of `*.suffix`. */
function wildcardProblem(glob: string, star: number): string {
  if (glob.startsWith('**')) return `"${glob}" is not a host glob; use "*" for every host or "*.example.com" for subdomains`;
  const lastStar = glob.lastIndexOf('*');
  const dotAfter = glob.indexOf('.', lastStar);
  const rest = dotAfter < 0 ? '' : glob.slice(dotAfter + 1);
  if (rest.length === 0 || rest.endsWith('*')) {
    return `"${glob}": a wildcard cannot stand for the top-level domain; name the domain in full, e.g. "github.com"`;
  }
  if (star === 0 && lastStar === 0 && glob.charCodeAt(1) !== 0x2e) {
    const domain = glob.slice(1);
    return `"${glob}" would also match unrelated names; use "*.${domain}" to match subdomains (and "${domain}" for the domain itself)`;
  }
  return `"${glob}": a wildcard may only be the whole first label; use "*.${rest}"`;
}

/**
 * Validates and canonicalises a policy host glob: `*`, an exact name (IDN → punycode), an IP
 * literal, or `*.suffix` with at least two labels in the suffix. Refusals say how to fix the glob.
 */
export function validateHostGlob(glob: string): HostGlobResult {
  if (glob === '*') return { ok: true, glob };
  if (glob.length === 0) return { ok: false, message: 'the host glob is empty; use "*" for every host or name a host' };
  const locator = locatorProblem(glob);
  if (locator !== null) return { ok: false, message: locator };
  const star = glob.indexOf('*');
  if (star < 0) {
    const r = normalizeHost(glob);
    return r.ok ? { ok: true, glob: r.host } : { ok: false, message: `"${glob}": ${r.message}` };
  }
  if (star !== 0 || glob.charCodeAt(1) !== 0x2e || glob.indexOf('*', 1) >= 0) {
    return { ok: false, message: wildcardProblem(glob, star) };
  }
  const suffix = glob.slice(2);
  if (suffix.length === 0 || suffix === '.') {
    return { ok: false, message: `"${glob}" names no domain; use "*" for every host or "*.example.com" for subdomains` };
  }
  const r = normalizeHost(suffix);
  if (!r.ok) return { ok: false, message: `"${glob}": ${r.message}` };
  if (r.kind !== 'dns') return { ok: false, message: `"${glob}": a wildcard applies to domain names, not IP addresses; use a CIDR address rule` };
  if (!r.host.includes('.')) {
    return { ok: false, message: `"${glob}" is too broad: it matches every host under ".${r.host}"; name the domain, e.g. "*.example.${r.host}"` };
  }
  return { ok: true, glob: `*.${r.host}` };
}
