// Owns: validation of address rules written in policy (an IP or a CIDR range), with messages
// that say how to fix them; yields the Cidr that cidrContains matches.
import {
  cidrFromParts,
  cidrPartsAligned,
  formatCidr,
  formatIPv4,
  isIPv4Mapped,
  parseCidrParts,
  parseDottedQuad,
  parseIp,
  parseIPv6,
  readUint32,
  type Cidr,
} from './ip-address.ts';

export type AddressRuleResult = { ok: true; cidr: Cidr; text: string } | { ok: false; message: string };

/** Why `addr[/len]` did not parse: the address, its spelling, or the prefix length. */
function refusal(rule: string, s: string): string {
  const slash = s.indexOf('/');
  const addr = slash < 0 ? s : s.slice(0, slash);
  const v6 = addr.includes(':');
  if (v6 ? parseIPv6(addr) !== null : parseDottedQuad(addr) !== null) {
    return `"${rule}" has a bad prefix length; write a decimal from 0 to ${v6 ? 128 : 32} after "/"`;
  }
  if (!v6 && parseIp(addr) !== null) {
    return `"${rule}" is not dotted decimal; write IPv4 as four decimal numbers without leading zeros, e.g. "10.0.0.0/8"`;
  }
  return `"${rule}" is not an IP address or CIDR range; write e.g. "10.0.0.0/8", "192.168.1.5" or "fd00::/8"`;
}

/**
 * Accepts `10.0.0.0/8`, `192.168.1.5`, `fd00::/8`, `::1`, `[::1]`. IPv4 must be dotted decimal
 * (`10/8` means something else to every parser); no bits may be set beyond the prefix; ranges
 * inside the IPv4-mapped block `::ffff:0:0/96` are refused because addresses are matched in their
 * IPv4 form (the rule would otherwise match nothing, or be misread as "all IPv4").
 */
export function validateAddressRule(rule: string): AddressRuleResult {
  const s = rule.length > 2 && rule.startsWith('[') && rule.endsWith(']') ? rule.slice(1, -1) : rule;
  if (s.length === 0) return { ok: false, message: 'an address rule needs an IP address or a CIDR range, e.g. "10.0.0.0/8"' };
  const p = parseCidrParts(s, false);
  if (p === null) return { ok: false, message: refusal(rule, s) };
  if (!cidrPartsAligned(p)) {
    const aligned = cidrFromParts(p);
    return { ok: false, message: `"${rule}" has bits set beyond the /${p.prefix} prefix; write "${formatCidr(aligned)}" for the range or drop the prefix for one address` };
  }
  if (p.family === 6 && p.prefix >= 96 && isIPv4Mapped(p.bytes)) {
    const v4 = `${formatIPv4(readUint32(p.bytes, 12))}/${p.prefix - 96}`;
    return { ok: false, message: `"${rule}" is in the IPv4-mapped range ::ffff:0:0/96, and addresses are matched in their IPv4 form; write the IPv4 rule "${v4}" instead` };
  }
  const cidr = cidrFromParts(p);
  return { ok: true, cidr, text: formatCidr(cidr) };
}
