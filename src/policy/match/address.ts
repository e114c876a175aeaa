// Owns: the policy engine's view of IP and CIDR rules (`host: 10.1.0.0/16`, `host: 169.254.169.254`),
// built on src/classify/ip-address.ts. A single address is kept as a full-length range. PURE.
import {
  canonicalIp, cidrContains, cidrFromParts, cidrPartsAligned, formatCidr, formatIp, parseCidrParts, parseIp,
  type Cidr, type ParsedIp,
} from '../../classify/ip-address.ts';

export type { Cidr, ParsedIp };
export type ParsedCidr = Cidr;

/**
 * Reads an address rule: a strict dotted-quad IPv4, an IPv6 literal (brackets allowed), or either
 * with `/prefix`. Returns null when the text is not address-shaped at all.
 */
export function parseAddressRule(text: string): { ok: true; cidr: Cidr; single: boolean } | { ok: false; message: string } | null {
  const bare = text.startsWith('[') && text.includes(']') ? text.replace(/^\[([^\]]*)\](\/.*)?$/, '$1$2') : text;
  const looksV6 = bare.includes(':');
  const looksV4 = /^[0-9.]+(\/\d*)?$/.test(bare);
  if (!looksV6 && !looksV4 && !/^0x/i.test(bare)) return null;
  const parts = parseCidrParts(bare, false);
  if (!parts) {
    const loose = parseIp(bare.replace(/\/.*$/s, ''));
    const hint = loose ? ` — write it as ${formatIp(canonicalIp(loose))}` : '';
    return { ok: false, message: `"${text}" is not an IP address or CIDR in canonical form (dotted-quad IPv4 such as 10.1.0.0/16, or IPv6)${hint}` };
  }
  if (!cidrPartsAligned(parts)) {
    const cidr = cidrFromParts(parts);
    return { ok: false, message: `"${text}" has bits set after the /${parts.prefix} prefix — did you mean ${formatCidr(maskCidr(cidr))}?` };
  }
  const cidr = cidrFromParts(parts);
  if (isMappedPrefix(cidr)) {
    return { ok: false, message: `"${text}" is an IPv4-mapped IPv6 range; name the IPv4 range instead (a mapped range never matches IPv4 addresses)` };
  }
  return { ok: true, cidr, single: !bare.includes('/') };
}

function isMappedPrefix(c: Cidr): boolean {
  if (c.family !== 6 || c.prefix < 80) return false;
  for (let i = 0; i < 10; i++) if (c.bytes[i] !== 0) return false;
  return c.bytes[10] === 0xff && c.bytes[11] === 0xff;
}

function maskCidr(c: Cidr): Cidr {
  if (c.family === 4) return { ...c, base: (c.base & c.mask) >>> 0 };
  const bytes = new Uint8Array(c.bytes);
  for (let bit = c.prefix; bit < 128; bit++) bytes[bit >>> 3] = (bytes[bit >>> 3] as number) & ~(0x80 >>> (bit & 7));
  return { ...c, bytes };
}

export function ipInCidr(c: Cidr, ip: ParsedIp): boolean {
  return cidrContains(c, ip);
}

export function cidrCoversCidr(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || outer.prefix > inner.prefix) return false;
  const base: ParsedIp = inner.family === 4 ? { family: 4, value: inner.base } : { family: 6, bytes: inner.bytes };
  return cidrContains(outer, base);
}

export function parseRequestIp(host: string): ParsedIp | null {
  return parseIp(host.startsWith('[') ? host.slice(1, -1) : host);
}

export { formatCidr, formatIp, canonicalIp };
