// Owns: building a leaf certificate's to-be-signed bytes (DER) from a template leaf — the fields
// that differ per host (serial, validity, subject, subjectAltName) are re-encoded, everything else
// (version, signature algorithm, issuer, the shared public key, the other extensions) is copied
// byte for byte — and assembling the signed certificate. PURE (bytes in, bytes out): minting a leaf
// costs a few small allocations instead of a full ASN.1 object round trip on the event loop.
import { parseIp } from '../classify/ip-address.ts';

/** One DER element of `buf`: its tag, where its content starts and where the element ends. */
interface Tlv { tag: number; start: number; contentStart: number; end: number }

function readTlv(buf: Uint8Array, at: number): Tlv {
  if (at + 2 > buf.length) throw new Error('DER: truncated element');
  const tag = buf[at] as number;
  let len = buf[at + 1] as number;
  let contentStart = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || contentStart + n > buf.length) throw new Error('DER: unsupported length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[contentStart + i] as number);
    contentStart += n;
  }
  const end = contentStart + len;
  if (end > buf.length) throw new Error('DER: element runs past its container');
  return { tag, start: at, contentStart, end };
}

/** The elements inside a constructed element's content. */
function children(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.contentStart; at < parent.end;) {
    const c = readTlv(buf, at);
    out.push(c);
    at = c.end;
  }
  return out;
}

function lengthBytes(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function derElement(tag: number, ...content: Uint8Array[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), lengthBytes(body.length), body]);
}

const SEQUENCE = 0x30;
const SET = 0x31;
const INTEGER = 0x02;
const OCTET_STRING = 0x04;
const BIT_STRING = 0x03;
const UTF8_STRING = 0x0c;
const UTC_TIME = 0x17;
const GENERALIZED_TIME = 0x18;
const EXPLICIT_3 = 0xa3;
const SAN_DNS = 0x82; // [2] IMPLICIT IA5String
const SAN_IP = 0x87; // [7] IMPLICIT OCTET STRING
const OID_COMMON_NAME = Buffer.from([0x06, 0x03, 0x55, 0x04, 0x03]);
const OID_SUBJECT_ALT_NAME = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x11]);

/** The template leaf, split once: the constant parts are reused for every host. */
export interface LeafTemplate {
  /** `[0] version` (present in a v3 certificate). */
  version: Buffer;
  signatureAlgorithm: Buffer;
  issuer: Buffer;
  subjectPublicKeyInfo: Buffer;
  /** Every extension but subjectAltName, in the template's order, and where SAN stood among them. */
  extensionsBefore: Buffer[];
  extensionsAfter: Buffer[];
}

/** Splits a template leaf certificate (DER) into the parts a new leaf copies. */
export function parseLeafTemplate(certDer: Uint8Array): LeafTemplate {
  const buf = Buffer.from(certDer.buffer, certDer.byteOffset, certDer.byteLength);
  const cert = readTlv(buf, 0);
  const [tbs] = children(buf, cert);
  if (!tbs || tbs.tag !== SEQUENCE) throw new Error('DER: the certificate has no TBSCertificate');
  const f = children(buf, tbs);
  // version, serial, signature, issuer, validity, subject, spki, [3] extensions
  const [version, , signature, issuer, , , spki, ext] = f;
  if (f.length !== 8 || version?.tag !== 0xa0 || !signature || !issuer || !spki || ext?.tag !== EXPLICIT_3) {
    throw new Error('DER: the template must be a v3 certificate with extensions and no unique ids');
  }
  const [list] = children(buf, ext);
  if (!list) throw new Error('DER: empty extensions');
  const before: Buffer[] = [];
  const after: Buffer[] = [];
  let sawSan = false;
  for (const e of children(buf, list)) {
    const [oid] = children(buf, e);
    const bytes = buf.subarray(e.start, e.end);
    if (oid && buf.subarray(oid.start, oid.end).equals(OID_SUBJECT_ALT_NAME)) {
      sawSan = true;
      continue;
    }
    (sawSan ? after : before).push(Buffer.from(bytes));
  }
  if (!sawSan) throw new Error('DER: the template has no subjectAltName to replace');
  const copy = (t: Tlv) => Buffer.from(buf.subarray(t.start, t.end));
  return {
    version: copy(version),
    signatureAlgorithm: copy(signature),
    issuer: copy(issuer),
    subjectPublicKeyInfo: copy(spki),
    extensionsBefore: before,
    extensionsAfter: after,
  };
}

const pad2 = (n: number) => (n < 10 ? `0${n}` : String(n));

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; whole seconds, UTC. */
export function derTime(d: Date): Buffer {
  const y = d.getUTCFullYear();
  const rest = `${pad2(d.getUTCMonth() + 1)}${pad2(d.getUTCDate())}${pad2(d.getUTCHours())}${pad2(d.getUTCMinutes())}${pad2(d.getUTCSeconds())}Z`;
  if (y >= 1950 && y < 2050) return derElement(UTC_TIME, Buffer.from(`${pad2(y % 100)}${rest}`, 'latin1'));
  return derElement(GENERALIZED_TIME, Buffer.from(`${String(y).padStart(4, '0')}${rest}`, 'latin1'));
}

/** A positive INTEGER from random bytes (leading zero bits trimmed, sign bit kept clear). */
export function derSerial(bytes: Uint8Array): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0 && ((bytes[i + 1] as number) & 0x80) === 0) i++;
  const body = Buffer.from(bytes.subarray(i));
  return derElement(INTEGER, (body[0] as number) & 0x80 ? Buffer.concat([Buffer.from([0]), body]) : body);
}

/** The longest commonName X.520 allows (ub-common-name); longer host names go in the SAN only. */
export const MAX_COMMON_NAME = 64;

export interface LeafFields {
  serial: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  /** A canonical host name, or an IPv4 / IPv6 literal (without brackets). */
  host: string;
  kind: 'dns' | 'ipv4' | 'ipv6';
}

function subjectName(f: LeafFields): Buffer {
  const cn = f.kind !== 'dns' ? 'Tollgate IP' : f.host.length <= MAX_COMMON_NAME ? f.host : 'Tollgate';
  return derElement(SEQUENCE, derElement(SET, derElement(SEQUENCE, OID_COMMON_NAME, derElement(UTF8_STRING, Buffer.from(cn, 'utf8')))));
}

function subjectAltName(f: LeafFields): Buffer {
  let name: Buffer;
  if (f.kind === 'dns') {
    if (!/^[\x21-\x7e]+$/.test(f.host)) throw new Error(`DER: ${JSON.stringify(f.host)} is not an ASCII host name`);
    name = derElement(SAN_DNS, Buffer.from(f.host, 'latin1'));
  } else {
    const ip = parseIp(f.host);
    if (!ip || (ip.family === 4) !== (f.kind === 'ipv4')) throw new Error(`DER: ${JSON.stringify(f.host)} is not an ${f.kind} literal`);
    const bytes = ip.family === 4
      ? Buffer.from([ip.value >>> 24, (ip.value >>> 16) & 0xff, (ip.value >>> 8) & 0xff, ip.value & 0xff])
      : Buffer.from(ip.bytes);
    name = derElement(SAN_IP, bytes);
  }
  return derElement(SEQUENCE, OID_SUBJECT_ALT_NAME, derElement(OCTET_STRING, derElement(SEQUENCE, name)));
}

/** The TBSCertificate of a leaf for `f.host`, over the template's key, issuer and extensions. */
export function leafTbs(t: LeafTemplate, f: LeafFields): Buffer {
  return derElement(
    SEQUENCE,
    t.version,
    derSerial(f.serial),
    t.signatureAlgorithm,
    t.issuer,
    derElement(SEQUENCE, derTime(f.notBefore), derTime(f.notAfter)),
    subjectName(f),
    t.subjectPublicKeyInfo,
    derElement(EXPLICIT_3, derElement(SEQUENCE, ...t.extensionsBefore, subjectAltName(f), ...t.extensionsAfter)),
  );
}

/** Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }. */
export function assembleCertificate(tbs: Uint8Array, signatureAlgorithm: Uint8Array, signature: Uint8Array): Buffer {
  return derElement(SEQUENCE, tbs, signatureAlgorithm, derElement(BIT_STRING, Buffer.from([0]), signature));
}
