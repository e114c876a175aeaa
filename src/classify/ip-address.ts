// Owns: IP address literals: WHATWG IPv4 and RFC 4291 IPv6 parsing, RFC 5952 formatting,
// the ParsedIp value, and CIDR ranges matched on the canonical family (IPv4-mapped → IPv4).

export type ParsedIp = { readonly family: 4; readonly value: number } | { readonly family: 6; readonly bytes: Uint8Array };

export type Cidr =
  | { readonly family: 4; readonly base: number; readonly mask: number; readonly prefix: number }
  | { readonly family: 6; readonly bytes: Uint8Array; readonly prefix: number };

/** What a host string is, as the WHATWG host parser sees it. */
export type IPv4Inspection =
  | { readonly kind: 'ipv4'; readonly value: number }
  /** Not an IPv4 literal: its last label is not numeric, so it is a name. */
  | { readonly kind: 'name' }
  /** Its last label is numeric, so it must be IPv4, but it is not a valid one: refuse, never resolve. */
  | { readonly kind: 'invalid' };

const NAME: IPv4Inspection = Object.freeze({ kind: 'name' });
const INVALID: IPv4Inspection = Object.freeze({ kind: 'invalid' });
const UINT32_MAX = 0xffffffff;

/** Value of an ASCII hex digit, or -1. */
function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** WHATWG "IPv4 number parser" on s[start, end): -1 on failure; values above 2^32-1 saturate. */
function parseIPv4Number(s: string, start: number, end: number): number {
  if (start >= end) return -1;
  let radix = 10;
  if (end - start >= 2 && s.charCodeAt(start) === 0x30) {
    if ((s.charCodeAt(start + 1) | 0x20) === 0x78) {
      radix = 16;
      start += 2;
    } else {
      radix = 8;
      start += 1;
    }
  }
  let v = 0;
  for (let i = start; i < end; i++) {
    const d = hexDigit(s.charCodeAt(i));
    if (d < 0 || d >= radix) return -1;
    if (v <= UINT32_MAX) v = v * radix + d;
  }
  return v;
}

/** WHATWG "ends in a number": the last label (ignoring one trailing dot) is digits or 0x-hex. */
function endsInNumber(s: string, end: number): boolean {
  const start = s.lastIndexOf('.', end - 1) + 1;
  if (start >= end) return false;
  let allDigits = true;
  for (let i = start; i < end; i++) {
    if (!isDigit(s.charCodeAt(i))) {
      allDigits = false;
      break;
    }
  }
  return allDigits || parseIPv4Number(s, start, end) >= 0;
}

/**
 * Classifies a host string the way the WHATWG URL host parser does: a name, an IPv4 address in
 * any notation (1–4 parts, decimal, octal, hex, one trailing dot), or numeric-but-invalid.
 */
export function inspectIPv4(s: string): IPv4Inspection {
  let end = s.length;
  if (end > 1 && s.charCodeAt(end - 1) === 0x2e) end--;
  if (end === 0 || !endsInNumber(s, end)) return NAME;
  const parts = [0, 0, 0, 0];
  let n = 0;
  let start = 0;
  while (start <= end) {
    let dot = s.indexOf('.', start);
    if (dot < 0 || dot > end) dot = end;
    if (n === 4) return INVALID;
    const v = parseIPv4Number(s, start, dot);
    if (v < 0) return INVALID;
    parts[n++] = v;
    start = dot + 1;
  }
  let value = 0;
  for (let i = 0; i < n - 1; i++) {
    const p = parts[i] as number;
    if (p > 255) return INVALID;
    value = value * 256 + p;
  }
  const last = parts[n - 1] as number;
  const room = 256 ** (5 - n);
  if (last >= room) return INVALID;
  value = value * room + last;
  return { kind: 'ipv4', value };
}

/** WHATWG IPv4 parser: the uint32 address, or null when s is not a (valid) IPv4 literal. */
export function parseIPv4(s: string): number | null {
  const r = inspectIPv4(s);
  return r.kind === 'ipv4' ? r.value : null;
}

/** Strict dotted-decimal IPv4 (four parts 0–255, no leading zeros), as config files must write it. */
export function parseDottedQuad(s: string): number | null {
  const len = s.length;
  if (len < 7 || len > 15) return null;
  let value = 0;
  let parts = 0;
  let i = 0;
  while (parts < 4) {
    const start = i;
    let p = 0;
    while (i < len && isDigit(s.charCodeAt(i)) && i - start < 3) p = p * 10 + (s.charCodeAt(i++) - 0x30);
    const digits = i - start;
    if (digits === 0 || p > 255 || (digits > 1 && s.charCodeAt(start) === 0x30)) return null;
    value = value * 256 + p;
    parts++;
    if (parts < 4) {
      if (s.charCodeAt(i) !== 0x2e) return null;
      i++;
    }
  }
  return i === len ? value : null;
}

export function formatIPv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/**
 * RFC 4291 text form (bracketless): up to 8 groups of 1–4 hex digits, one `::`, an optional
 * dotted-quad tail (strict decimal). Zone ids (`%`) and anything else are refused. 16 bytes or null.
 */
export function parseIPv6(s: string): Uint8Array | null {
  const len = s.length;
  if (len < 2 || len > 45) return null;
  const groups = new Uint16Array(8);
  let piece = 0;
  let compress = -1;
  let i = 0;
  if (s.charCodeAt(0) === 0x3a) {
    if (s.charCodeAt(1) !== 0x3a) return null;
    i = 2;
    piece = 1;
    compress = 1;
  }
  while (i < len) {
    if (piece === 8) return null;
    let c = s.charCodeAt(i);
    if (c === 0x3a) {
      if (compress !== -1) return null;
      i++;
      piece++;
      compress = piece;
      continue;
    }
    let value = 0;
    let digits = 0;
    let d: number;
    while (digits < 4 && i < len && (d = hexDigit(s.charCodeAt(i))) >= 0) {
      value = value * 16 + d;
      i++;
      digits++;
    }
    c = i < len ? s.charCodeAt(i) : -1;
    if (c === 0x2e) {
      if (digits === 0 || piece > 6) return null;
      const v4 = parseDottedQuad(s.slice(i - digits));
      if (v4 === null) return null;
      groups[piece++] = v4 >>> 16;
      groups[piece++] = v4 & 0xffff;
      i = len;
      break;
    }
    if (digits === 0) return null;
    if (c === 0x3a) {
      i++;
      if (i === len) return null;
    } else if (c !== -1) {
      return null;
    }
    groups[piece++] = value;
  }
  if (compress !== -1) {
    let swaps = piece - compress;
    piece = 7;
    while (piece !== 0 && swaps > 0) {
      const j = compress + swaps - 1;
      const t = groups[piece] as number;
      groups[piece] = groups[j] as number;
      groups[j] = t;
      piece--;
      swaps--;
    }
  } else if (piece !== 8) {
    return null;
  }
  const bytes = new Uint8Array(16);
  for (let g = 0; g < 8; g++) {
    const v = groups[g] as number;
    bytes[2 * g] = v >>> 8;
    bytes[2 * g + 1] = v & 255;
  }
  return bytes;
}

/** True for ::ffff:0:0/96 (IPv4-mapped IPv6). */
export function isIPv4Mapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/** The 32 bits at b[at..at+3] as an unsigned number. */
export function readUint32(b: Uint8Array, at: number): number {
  return (((b[at] as number) << 24) | ((b[at + 1] as number) << 16) | ((b[at + 2] as number) << 8) | (b[at + 3] as number)) >>> 0;
}

/** RFC 5952: lower case, no leading zeros, longest run (≥2) of zero groups as `::`, mapped as `::ffff:a.b.c.d`. */
export function formatIPv6(b: Uint8Array): string {
  if (isIPv4Mapped(b)) return `::ffff:${formatIPv4(readUint32(b, 12))}`;
  let bestStart = -1;
  let bestLen = 1;
  let runStart = -1;
  for (let g = 0; g <= 8; g++) {
    const zero = g < 8 && b[2 * g] === 0 && b[2 * g + 1] === 0;
    if (zero) {
      if (runStart < 0) runStart = g;
    } else if (runStart >= 0) {
      if (g - runStart > bestLen) {
        bestStart = runStart;
        bestLen = g - runStart;
      }
      runStart = -1;
    }
  }
  let out = '';
  for (let g = 0; g < 8; g++) {
    if (g === bestStart) {
      out += '::';
      g += bestLen - 1;
      continue;
    }
    if (out.length > 0 && !out.endsWith(':')) out += ':';
    out += (((b[2 * g] as number) << 8) | (b[2 * g + 1] as number)).toString(16);
  }
  return out;
}

/** An IPv4 literal (any WHATWG notation) or a bracketless IPv6 literal. */
export function parseIp(s: string): ParsedIp | null {
  if (s.includes(':')) {
    const bytes = parseIPv6(s);
    return bytes === null ? null : { family: 6, bytes };
  }
  const value = parseIPv4(s);
  return value === null ? null : { family: 4, value };
}

/** The canonical family of an address: an IPv4-mapped IPv6 address becomes IPv4. */
export function canonicalIp(ip: ParsedIp): ParsedIp {
  if (ip.family === 6 && isIPv4Mapped(ip.bytes)) return { family: 4, value: readUint32(ip.bytes, 12) };
  return ip;
}

export function formatIp(ip: ParsedIp): string {
  return ip.family === 4 ? formatIPv4(ip.value) : formatIPv6(ip.bytes);
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (UINT32_MAX << (32 - prefix)) >>> 0;
}

/** Decimal prefix length without sign or leading zeros, at most max; -1 otherwise. */
function parsePrefix(s: string, start: number, max: number): number {
  const len = s.length - start;
  if (len < 1 || len > 3 || (len > 1 && s.charCodeAt(start) === 0x30)) return -1;
  let v = 0;
  for (let i = start; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!isDigit(c)) return -1;
    v = v * 10 + (c - 0x30);
  }
  return v <= max ? v : -1;
}

/** Whether all bits of b after the first `prefix` bits are zero. */
function hostBitsZero(b: Uint8Array, prefix: number): boolean {
  for (let bit = prefix; bit < 128; bit++) {
    if (((b[bit >>> 3] as number) & (0x80 >>> (bit & 7))) !== 0) return false;
  }
  return true;
}

/** Result of reading `addr/len` without judging host bits; used by parseCidr and address rules. */
export type CidrParts = { readonly family: 4; readonly value: number; readonly prefix: number } | { readonly family: 6; readonly bytes: Uint8Array; readonly prefix: number };

/** Reads `addr[/len]` (strict dotted-quad IPv4 or IPv6); a missing length means a single address. */
export function parseCidrParts(s: string, requirePrefix: boolean): CidrParts | null {
  const slash = s.indexOf('/');
  if (slash < 0 && requirePrefix) return null;
  const addr = slash < 0 ? s : s.slice(0, slash);
  if (addr.includes(':')) {
    const bytes = parseIPv6(addr);
    if (bytes === null) return null;
    const prefix = slash < 0 ? 128 : parsePrefix(s, slash + 1, 128);
    return prefix < 0 ? null : { family: 6, bytes, prefix };
  }
  const value = parseDottedQuad(addr);
  if (value === null) return null;
  const prefix = slash < 0 ? 32 : parsePrefix(s, slash + 1, 32);
  return prefix < 0 ? null : { family: 4, value, prefix };
}

/** Whether the parts have no bits set beyond the prefix. */
export function cidrPartsAligned(p: CidrParts): boolean {
  return p.family === 4 ? ((p.value & ~maskOf(p.prefix)) >>> 0) === 0 : hostBitsZero(p.bytes, p.prefix);
}

/** The range the parts name, with any bits beyond the prefix cleared. */
export function cidrFromParts(p: CidrParts): Cidr {
  if (p.family === 4) {
    const mask = maskOf(p.prefix);
    return { family: 4, base: (p.value & mask) >>> 0, mask, prefix: p.prefix };
  }
  const bytes = new Uint8Array(16);
  for (let bit = 0; bit < p.prefix; bit += 8) {
    const keep = p.prefix - bit >= 8 ? 0xff : (0xff << (8 - (p.prefix - bit))) & 0xff;
    bytes[bit >>> 3] = (p.bytes[bit >>> 3] as number) & keep;
  }
  return { family: 6, bytes, prefix: p.prefix };
}

/**
 * `addr/len` with a strict dotted-quad IPv4 or an IPv6 address, and no bits set beyond the prefix
 * (`10.1.2.3/16` → null). IPv4 and IPv6 ranges are distinct families.
 */
export function parseCidr(s: string): Cidr | null {
  const p = parseCidrParts(s, true);
  return p === null || !cidrPartsAligned(p) ? null : cidrFromParts(p);
}

export function formatCidr(c: Cidr): string {
  return `${c.family === 4 ? formatIPv4(c.base) : formatIPv6(c.bytes)}/${c.prefix}`;
}

/**
 * Whether ip lies in c. The address is first taken in its canonical family (IPv4-mapped IPv6 →
 * IPv4), and a range of one family never matches an address of the other: `::ffff:0:0/96` matches
 * nothing, never "all IPv4".
 */
export function cidrContains(c: Cidr, ip: ParsedIp): boolean {
  const a = canonicalIp(ip);
  if (c.family === 4) return a.family === 4 && ((a.value & c.mask) >>> 0) === c.base;
  if (a.family !== 6) return false;
  const full = c.prefix >>> 3;
  for (let i = 0; i < full; i++) if (a.bytes[i] !== c.bytes[i]) return false;
  const rest = c.prefix & 7;
  if (rest === 0) return true;
  const m = (0xff << (8 - rest)) & 0xff;
  return ((a.bytes[full] as number) & m) === ((c.bytes[full] as number) & m);
}
