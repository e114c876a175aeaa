// Owns: the address class of an IP (public, loopback, private, link-local/metadata, CGNAT, …),
// looking through IPv4 embedded in IPv6 (mapped, compatible, NAT64, 6to4, Teredo).
import { formatIPv4, readUint32, type ParsedIp } from './ip-address.ts';

export type AddressClass =
  | 'public'
  | 'loopback'
  | 'private'
  | 'link_local'
  | 'cgnat'
  | 'unspecified'
  | 'multicast'
  | 'broadcast'
  | 'reserved'
  | 'documentation'
  | 'benchmarking'
  | 'unique_local'
  | 'site_local'
  | 'nat64'
  | 'discard';

export interface AddressClassification {
  readonly class: AddressClass;
  /** The IPv4 address found inside an IPv6 one (dotted decimal), when the class looked through it. */
  readonly embeddedIPv4?: string;
}

/** Only 'public' addresses may be dialled without a rule that names them. */
export function isPublic(c: AddressClass): boolean {
  return c === 'public';
}

const PLAIN: Readonly<Record<AddressClass, AddressClassification>> = Object.freeze({
  public: Object.freeze({ class: 'public' }),
  loopback: Object.freeze({ class: 'loopback' }),
  private: Object.freeze({ class: 'private' }),
  link_local: Object.freeze({ class: 'link_local' }),
  cgnat: Object.freeze({ class: 'cgnat' }),
  unspecified: Object.freeze({ class: 'unspecified' }),
  multicast: Object.freeze({ class: 'multicast' }),
  broadcast: Object.freeze({ class: 'broadcast' }),
  reserved: Object.freeze({ class: 'reserved' }),
  documentation: Object.freeze({ class: 'documentation' }),
  benchmarking: Object.freeze({ class: 'benchmarking' }),
  unique_local: Object.freeze({ class: 'unique_local' }),
  site_local: Object.freeze({ class: 'site_local' }),
  nat64: Object.freeze({ class: 'nat64' }),
  discard: Object.freeze({ class: 'discard' }),
});

/** IPv4 special-purpose ranges (IANA registry, RFC 6890 and successors). */
export function classifyIPv4(n: number): AddressClass {
  const a = n >>> 24;
  const b = (n >>> 16) & 255;
  const c = (n >>> 8) & 255;
  switch (a) {
    case 0:
      return 'unspecified'; // 0.0.0.0/8 "this network"
    case 10:
      return 'private';
    case 100:
      if ((b & 0xc0) === 64) return 'cgnat'; // 100.64.0.0/10, incl. 100.100.100.200 (Alibaba metadata)
      break;
    case 127:
      return 'loopback';
    case 169:
      if (b === 254) return 'link_local'; // 169.254.0.0/16, incl. 169.254.169.254 (cloud metadata)
      break;
    case 172:
      if ((b & 0xf0) === 16) return 'private';
      break;
    case 192:
      if (b === 0 && c === 0) return 'reserved'; // 192.0.0.0/24 IETF protocol assignments
      if (b === 0 && c === 2) return 'documentation'; // TEST-NET-1
      if (b === 88 && c === 99) return 'reserved'; // deprecated 6to4 relay anycast
      if (b === 168) return 'private';
      break;
    case 198:
      if ((b & 0xfe) === 18) return 'benchmarking'; // 198.18.0.0/15
      if (b === 51 && c === 100) return 'documentation'; // TEST-NET-2
      break;
    case 203:
      if (b === 0 && c === 113) return 'documentation'; // TEST-NET-3
      break;
  }
  if (a >= 224 && a < 240) return 'multicast';
  if (n === 0xffffffff) return 'broadcast';
  if (a >= 240) return 'reserved';
  return 'public';
}

/** An embedded IPv4 decides unless it is public; then the class of the IPv6 prefix (outer) stands. */
function throughEmbedded(outer: AddressClass, v4: number): AddressClassification {
  const inner = classifyIPv4(v4);
  return { class: inner === 'public' ? outer : inner, embeddedIPv4: formatIPv4(v4) };
}

function zeroFrom(b: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (b[i] !== 0) return false;
  return true;
}

/** Teredo 2001::/32: server IPv4 in bytes 4–7, client IPv4 (inverted) in bytes 12–15; the worse decides. */
function classifyTeredo(b: Uint8Array): AddressClassification {
  const client = ~readUint32(b, 12) >>> 0;
  const server = readUint32(b, 4);
  if (classifyIPv4(client) === 'public' && classifyIPv4(server) !== 'public') return throughEmbedded('public', server);
  return throughEmbedded('public', client);
}

function classifyIPv6(b: Uint8Array): AddressClassification {
  const b0 = b[0] as number;
  const b1 = b[1] as number;
  if (b0 === 0) {
    if (zeroFrom(b, 1, 10)) {
      if (b[10] === 0xff && b[11] === 0xff) return throughEmbedded('public', readUint32(b, 12)); // ::ffff:0:0/96 mapped
      if (b[10] === 0 && b[11] === 0) {
        if (zeroFrom(b, 12, 15)) {
          if (b[15] === 0) return PLAIN.unspecified;
          if (b[15] === 1) return PLAIN.loopback;
        }
        const v4 = readUint32(b, 12);
        return v4 < 0x01000000 ? PLAIN.reserved : throughEmbedded('reserved', v4); // ::/96 IPv4-compatible (deprecated)
      }
    }
    if (zeroFrom(b, 1, 8) && b[8] === 0xff && b[9] === 0xff && b[10] === 0 && b[11] === 0) {
      return throughEmbedded('reserved', readUint32(b, 12)); // ::ffff:0:0:0/96 IPv4-translated (SIIT)
    }
    if (b1 === 0x64 && b[2] === 0xff && b[3] === 0x9b) {
      if (zeroFrom(b, 4, 12)) return throughEmbedded('public', readUint32(b, 12)); // 64:ff9b::/96 well-known NAT64
      if (b[4] === 0 && b[5] === 1) return throughEmbedded('nat64', readUint32(b, 12)); // 64:ff9b:1::/48 local-use NAT64
    }
    return PLAIN.reserved; // rest of ::/8
  }
  if (b0 === 0x01 && b1 === 0 && zeroFrom(b, 2, 8)) return PLAIN.discard; // 100::/64
  if (b0 === 0x20 && b1 === 0x01) {
    const b2 = b[2] as number;
    const b3 = b[3] as number;
    if (b2 === 0 && b3 === 0) return classifyTeredo(b); // 2001::/32
    if (b2 === 0x0d && b3 === 0xb8) return PLAIN.documentation; // 2001:db8::/32
    if (b2 === 0 && b3 === 2 && b[4] === 0 && b[5] === 0) return PLAIN.benchmarking; // 2001:2::/48
    if (b2 === 0 && ((b3 & 0xf0) === 0x10 || (b3 & 0xf0) === 0x20)) return PLAIN.reserved; // ORCHID, ORCHIDv2
    return PLAIN.public;
  }
  if (b0 === 0x20 && b1 === 0x02) return throughEmbedded('public', readUint32(b, 2)); // 2002::/16 6to4
  if (b0 === 0x3f && b1 === 0xff && ((b[2] as number) & 0xf0) === 0) return PLAIN.documentation; // 3fff::/20
  if (b0 === 0x5f && b1 === 0x00) return PLAIN.reserved; // 5f00::/16 SRv6 SIDs
  if ((b0 & 0xe0) === 0x20) return PLAIN.public; // 2000::/3 global unicast
  if ((b0 & 0xfe) === 0xfc) return PLAIN.unique_local; // fc00::/7, incl. fd00:ec2::254 (AWS metadata)
  if (b0 === 0xfe && (b1 & 0xc0) === 0x80) return PLAIN.link_local; // fe80::/10
  if (b0 === 0xfe && (b1 & 0xc0) === 0xc0) return PLAIN.site_local; // fec0::/10 (deprecated)
  if (b0 === 0xff) return PLAIN.multicast;
  return PLAIN.reserved; // unassigned outside 2000::/3
}

/**
 * The class of an address. IPv4 embedded in IPv6 is classified by the embedded address, and the
 * worse of the two wins: `::ffff:127.0.0.1` → loopback, `64:ff9b::a9fe:a9fe` → link_local.
 */
export function classifyAddress(ip: ParsedIp): AddressClassification {
  return ip.family === 4 ? PLAIN[classifyIPv4(ip.value)] : classifyIPv6(ip.bytes);
}
