// Owns: AWS Signature Version 4 re-signing for `aws` credential bindings.
// Pure: no I/O, no clock (the signing time is an argument). Only node:crypto is used.
// A client (an AWS SDK configured with dummy keys) signs its request; Tollgate strips that
// signature and signs the request as forwarded with the bound keys. The secret access key never
// leaves this module other than as an HMAC key, and no error message ever contains it.

import { createHash, createHmac } from 'node:crypto';
import { TollgateError } from '../errors.ts';

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface AwsAuthorization {
  accessKeyId: string;
  /** YYYYMMDD from the credential scope. */
  date: string;
  region: string;
  service: string;
  /** Lower-cased header names the client signed, in the order given. */
  signedHeaders: string[];
}

export interface AwsSignInput {
  method: string;
  /** Authority as forwarded (the `host` header value), e.g. `s3.us-west-2.amazonaws.com`. */
  host: string;
  /** Path as forwarded (already normalised, percent-encoded as on the wire), without the query. */
  path: string;
  /** Raw query string as forwarded, without the leading `?` (one is tolerated). */
  query: string;
  /** The client's headers, in order, as they will be forwarded (before signing). */
  headers: Array<[string, string]>;
  /** The exact body bytes forwarded, or 'UNSIGNED-PAYLOAD' when the body is streamed unbuffered. */
  body: Uint8Array | 'UNSIGNED-PAYLOAD';
  credentials: AwsCredentials;
  region: string;
  service: string;
  now: Date;
}

const ALGORITHM = 'AWS4-HMAC-SHA256';
const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
/** Payload markers whose body needs no per-chunk signature: safe to keep as the client sent them. */
const UNSIGNED_MARKERS = new Set([UNSIGNED_PAYLOAD, 'STREAMING-UNSIGNED-PAYLOAD-TRAILER']);
/** S3-family signing names: no double path encoding, always send x-amz-content-sha256. */
const S3_SERVICES = new Set(['s3', 's3-object-lambda', 's3-outposts']);
/** Headers never signed even when the client signed them: hop-by-hop, or rewritten by proxies. */
const UNSIGNABLE = new Set([
  'authorization',
  'cache-control',
  'connection',
  'expect',
  'from',
  'keep-alive',
  'max-forwards',
  'pragma',
  'proxy-authorization',
  'proxy-connection',
  'referer',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'user-agent',
  'x-amzn-trace-id',
]);
/** Headers replaced by signing; the client's values are dropped. */
const REPLACED = new Set(['authorization', 'host', 'x-amz-date', 'x-amz-security-token', 'x-amz-content-sha256']);

const SCOPE_PART = /^[a-z0-9-]+$/;
const ACCESS_KEY_ID = /^\w+$/;
/** Printable ASCII, no whitespace: keeps secrets and tokens out of header-injection territory. */
const TOKEN_CHARS = /^[\x21-\x7e]+$/;

// ---------------------------------------------------------------------------------------------
// Authorization header

/**
 * Reads a client's `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
 * Returns null for anything else (other schemes, SigV4a, malformed scopes).
 */
export function parseAwsAuthorization(header: string): AwsAuthorization | null {
  const m = /^\s*AWS4-HMAC-SHA256\s+(.*)$/s.exec(header);
  if (m === null || m[1] === undefined) return null;
  const fields = new Map<string, string>();
  for (const part of m[1].split(',')) {
    const p = part.trim();
    if (p === '') continue;
    const eq = p.indexOf('=');
    if (eq <= 0) return null;
    const key = p.slice(0, eq).trim();
    if (fields.has(key)) return null;
    fields.set(key, p.slice(eq + 1).trim());
  }
  const credential = fields.get('Credential');
  const signedHeaders = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (credential === undefined || signedHeaders === undefined || signature === undefined) return null;
  if (!/^[0-9a-fA-F]+$/.test(signature)) return null;
  const scope = credential.split('/');
  if (scope.length !== 5) return null;
  const [accessKeyId, date, region, service, terminator] = scope as [string, string, string, string, string];
  if (!ACCESS_KEY_ID.test(accessKeyId)) return null;
  if (!/^\d{8}$/.test(date)) return null;
  if (!SCOPE_PART.test(region) || !SCOPE_PART.test(service)) return null;
  if (terminator !== 'aws4_request') return null;
  const names = signedHeaders.split(';').map((h) => h.trim().toLowerCase());
  if (names.length === 0 || names.some((h) => !/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(h))) return null;
  return { accessKeyId, date, region, service, signedHeaders: names };
}

// ---------------------------------------------------------------------------------------------
// Region and service from a host name

const REGION =
  /^(?:us|eu|ap|sa|ca|me|af|il|mx|cn|eusc)(?:-(?:gov|iso|isob|isof|isoe))?-(?:east|west|north|south|central|northeast|northwest|southeast|southwest)-\d{1,2}$/;

/** Domain suffixes and the region their global endpoints sign for. */
const SUFFIXES: ReadonlyArray<{ suffix: string; globalRegion: string | null }> = [
  { suffix: '.amazonaws.com.cn', globalRegion: 'cn-north-1' },
  { suffix: '.amazonaws.com', globalRegion: 'us-east-1' },
  { suffix: '.amazonaws.eu', globalRegion: null },
  { suffix: '.api.aws', globalRegion: null },
  { suffix: '.on.aws', globalRegion: null },
];

/** Endpoint labels whose signing name differs from the label. */
const SIGNING_NAMES: Record<string, string> = {
  'bedrock-runtime': 'bedrock',
  'bedrock-agent': 'bedrock',
  'bedrock-agent-runtime': 'bedrock',
  email: 'ses',
  'lambda-url': 'lambda',
  's3-accesspoint': 's3',
  's3-control': 's3',
};

/** Services whose endpoints put the region before the service label: `<id>.<region>.es.amazonaws.com`. */
const REGION_FIRST = new Set(['es', 'aoss', 'eks']);

/**
 * Infers the SigV4 region and signing name from an AWS endpoint host name. Returns null for
 * hosts that are not recognisably AWS endpoints (custom domains, IPs, S3 website endpoints).
 * Prefer the scope from the client's own Authorization header when it has one.
 */
export function inferRegionService(host: string): { region: string; service: string } | null {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[')) return null; // IPv6 literal
  h = h.replace(/:\d+$/, '').replace(/\.$/, '');
  const match = SUFFIXES.find((s) => h.endsWith(s.suffix));
  if (match === undefined) return null;
  const labels = h.slice(0, -match.suffix.length).split('.');
  if (labels.some((l) => l === '')) return null;
  if (labels[labels.length - 1] === 'vpce') labels.pop(); // PrivateLink: ...s3.us-east-1.vpce.amazonaws.com
  const n = labels.length;
  const last = labels[n - 1];
  if (last === undefined) return null;

  const result = (region: string, label: string): { region: string; service: string } | null => {
    const base = label.replace(/-fips$/, '');
    if (base.startsWith('s3-website')) return null; // website endpoints take no signature
    const service = SIGNING_NAMES[base] ?? base;
    return SCOPE_PART.test(service) ? { region, service } : null;
  };

  // <service>[.dualstack].<region>: ec2.eu-west-1, bucket.s3.us-west-2, s3.dualstack.us-east-1
  if (REGION.test(last)) {
    let i = n - 2;
    while (i >= 0 && labels[i] === 'dualstack') i--;
    const label = labels[i];
    return label === undefined ? null : result(last, label);
  }
  // <id>.<region>.<service>: search domains, OpenSearch Serverless, EKS cluster endpoints
  const beforeLast = labels[n - 2];
  if (REGION_FIRST.has(last) && beforeLast !== undefined && REGION.test(beforeLast)) {
    return result(beforeLast, last);
  }
  // Legacy S3 dashed endpoints: s3-us-west-2, bucket.s3-external-1, s3-fips-us-gov-west-1
  const dashed = /^s3-(?:fips-)?(.+)$/.exec(last);
  if (dashed !== null && dashed[1] !== undefined) {
    if (dashed[1] === 'external-1') return { region: 'us-east-1', service: 's3' };
    if (REGION.test(dashed[1])) return { region: dashed[1], service: 's3' };
  }
  // Global endpoints in a GovCloud partition: iam.us-gov.amazonaws.com
  if (last === 'us-gov' && beforeLast !== undefined && match.suffix === '.amazonaws.com') {
    return result('us-gov-west-1', beforeLast);
  }
  // Global endpoints: sts, iam, route53, cloudfront, s3 and bucket.s3
  if (match.globalRegion !== null) return result(match.globalRegion, last);
  return null;
}

// ---------------------------------------------------------------------------------------------
// Secret parsing

function malformedSecret(why: string): TollgateError {
  // Never include the value (nor a JSON.parse message, which quotes the input).
  return new TollgateError(
    'TOLLGATE_ERR_CONFIG_INVALID',
    `aws credential secret is malformed: ${why}; expected JSON {"access_key_id": ..., "secret_access_key": ..., "session_token"?: ...} or ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]`,
  );
}

function checkCredentials(c: AwsCredentials, fail: (why: string) => Error): AwsCredentials {
  if (!ACCESS_KEY_ID.test(c.accessKeyId)) throw fail('access key id is empty or has characters other than letters, digits and _');
  if (!TOKEN_CHARS.test(c.secretAccessKey)) throw fail('secret access key is empty or has whitespace or control characters');
  if (c.sessionToken !== undefined && !TOKEN_CHARS.test(c.sessionToken)) {
    throw fail('session token is empty or has whitespace or control characters');
  }
  return c;
}

/**
 * Parses a stored `aws` secret: JSON `{"access_key_id", "secret_access_key", "session_token"?}`
 * (the AWS CLI's `AccessKeyId`/`SecretAccessKey`/`SessionToken` spelling is accepted too), or
 * `ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]`. Surrounding whitespace is ignored.
 * Throws TollgateError(TOLLGATE_ERR_CONFIG_INVALID) whose message never contains the value.
 */
export function parseAwsSecret(value: string): AwsCredentials {
  const v = value.trim();
  if (v === '') throw malformedSecret('the value is empty');
  if (v.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(v);
    } catch {
      throw malformedSecret('the value is not valid JSON');
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw malformedSecret('the JSON value is not an object');
    }
    const o = parsed as Record<string, unknown>;
    const pick = (snake: string, pascal: string): unknown => (snake in o ? o[snake] : o[pascal]);
    const accessKeyId = pick('access_key_id', 'AccessKeyId');
    const secretAccessKey = pick('secret_access_key', 'SecretAccessKey');
    const sessionToken = pick('session_token', 'SessionToken');
    if (typeof accessKeyId !== 'string') throw malformedSecret('access_key_id is missing or not a string');
    if (typeof secretAccessKey !== 'string') throw malformedSecret('secret_access_key is missing or not a string');
    if (sessionToken !== undefined && sessionToken !== null && typeof sessionToken !== 'string') {
      throw malformedSecret('session_token is not a string');
    }
    const creds: AwsCredentials = { accessKeyId, secretAccessKey };
    if (typeof sessionToken === 'string' && sessionToken !== '') creds.sessionToken = sessionToken;
    return checkCredentials(creds, malformedSecret);
  }
  const parts = v.split(':');
  if (parts.length < 2 || parts.length > 3) {
    throw malformedSecret(`expected 2 or 3 colon-separated fields, found ${parts.length}`);
  }
  const [accessKeyId = '', secretAccessKey = '', sessionToken] = parts;
  const creds: AwsCredentials = { accessKeyId, secretAccessKey };
  if (sessionToken !== undefined) creds.sessionToken = sessionToken;
  return checkCredentials(creds, malformedSecret);
}

// ---------------------------------------------------------------------------------------------
// Signing

const utf8 = new TextEncoder();

function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

function isUnreserved(b: number): boolean {
  return (
    (b >= 0x41 && b <= 0x5a) || // A-Z
    (b >= 0x61 && b <= 0x7a) || // a-z
    (b >= 0x30 && b <= 0x39) || // 0-9
    b === 0x2d || // -
    b === 0x2e || // .
    b === 0x5f || // _
    b === 0x7e // ~
  );
}

/** RFC 3986 encoding as SigV4 wants it: unreserved bytes kept, all others %XX (upper-case hex). */
function encodeBytes(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) {
    out += isUnreserved(b) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function hexValue(b: number | undefined): number {
  if (b === undefined) return -1;
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  if (b >= 0x41 && b <= 0x46) return b - 0x41 + 10;
  if (b >= 0x61 && b <= 0x66) return b - 0x61 + 10;
  return -1;
}

/** Decodes %XX escapes to bytes; a `%` not followed by two hex digits and `+` stay literal. */
function percentDecode(s: string): Uint8Array {
  const src = utf8.encode(s);
  const out = new Uint8Array(src.length);
  let j = 0;
  for (let i = 0; i < src.length; i++) {
    const b = src[i] as number;
    if (b === 0x25) {
      const hi = hexValue(src[i + 1]);
      const lo = hexValue(src[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out[j++] = hi * 16 + lo;
        i += 2;
        continue;
      }
    }
    out[j++] = b;
  }
  return out.subarray(0, j);
}

/** Re-encodes a wire string canonically (decode %XX, encode per RFC 3986). */
function canonicalEncode(s: string): string {
  return encodeBytes(percentDecode(s));
}

function canonicalUri(path: string, s3: boolean): string {
  const p = path === '' ? '/' : path;
  if (s3) {
    // S3: the key is encoded once; re-encode each segment canonically, keep every slash.
    return p.split('/').map(canonicalEncode).join('/');
  }
  // Other services: remove empty and dot segments as the SDKs do, then encode the (already
  // encoded) path again, segment by segment: "double encoding".
  const segments: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') segments.pop();
    else segments.push(seg);
  }
  const lead = p.startsWith('/') ? '/' : '';
  const trail = segments.length > 0 && p.endsWith('/') ? '/' : '';
  return lead + segments.map((seg) => encodeBytes(utf8.encode(seg))).join('/') + trail;
}

function canonicalQuery(query: string): string {
  const q = query.startsWith('?') ? query.slice(1) : query;
  const pairs: Array<[string, string]> = [];
  for (const piece of q.split('&')) {
    if (piece === '') continue;
    const eq = piece.indexOf('=');
    const key = eq < 0 ? piece : piece.slice(0, eq);
    const value = eq < 0 ? '' : piece.slice(eq + 1);
    pairs.push([canonicalEncode(key), canonicalEncode(value)]);
  }
  // Encoded strings are ASCII, so code-unit order is byte order.
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

function canonicalHeaderValue(v: string): string {
  return v.trim().replace(/\s+/g, ' ');
}

function amzDate(now: Date): string {
  const t = now.getTime();
  if (!Number.isFinite(t)) throw new TollgateError('TOLLGATE_ERR_REQUEST', 'aws signing: invalid signing time');
  return now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

function requestError(message: string): TollgateError {
  return new TollgateError('TOLLGATE_ERR_REQUEST', `aws signing: ${message}`);
}

/** The payload hash for the canonical request, honouring what the client declared. */
function payloadHash(body: Uint8Array | 'UNSIGNED-PAYLOAD', declared: string | undefined): string {
  const d = declared?.trim();
  if (d !== undefined && d.startsWith('STREAMING-') && !UNSIGNED_MARKERS.has(d)) {
    // aws-chunked bodies carry per-chunk signatures chained to the client's (dummy) signature.
    throw requestError(`payload signing mode ${/^[A-Z0-9-]+$/.test(d) ? d : '(unknown)'} cannot be re-signed; configure the client for unsigned or single-chunk payloads`);
  }
  if (d !== undefined && UNSIGNED_MARKERS.has(d)) return d;
  if (body === UNSIGNED_PAYLOAD) {
    // A declared hash is checked by the service against the body it receives: safe to reuse.
    if (d !== undefined && /^[0-9a-fA-F]{64}$/.test(d)) return d.toLowerCase();
    return UNSIGNED_PAYLOAD;
  }
  return sha256Hex(body);
}

/**
 * Re-signs a request with SigV4 (header authorization) using the bound credentials. Returns the
 * full header list to forward: the client's `authorization`, `x-amz-date`, `x-amz-security-token`,
 * `x-amz-content-sha256` and `host` are replaced; other headers keep their order. Signed headers:
 * host, every x-amz-*, content-type, and whichever other headers the client itself signed (if still
 * present and not hop-by-hop). Throws TollgateError(TOLLGATE_ERR_REQUEST) for requests that cannot
 * be re-signed (signed streaming payloads, bad region/service, invalid time).
 */
export function signAwsRequest(input: AwsSignInput): { headers: Array<[string, string]> } {
  const { credentials, region, service } = input;
  checkCredentials(credentials, (why) => requestError(`bound credentials are invalid: ${why}`));
  if (!SCOPE_PART.test(region)) throw requestError('region must be lower-case letters, digits and -');
  if (!SCOPE_PART.test(service)) throw requestError('service must be lower-case letters, digits and -');
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(input.method)) throw requestError('invalid method');
  if (input.host === '' || /[\s,/\\@]/.test(input.host)) throw requestError('invalid host');

  const s3 = S3_SERVICES.has(service);
  const date = amzDate(input.now);

  // What the client signed and declared, before its headers are dropped.
  const clientSigned = new Set<string>();
  let declaredHash: string | undefined;
  for (const [name, value] of input.headers) {
    const n = name.toLowerCase();
    if (n === 'authorization') {
      for (const h of parseAwsAuthorization(value)?.signedHeaders ?? []) clientSigned.add(h);
    } else if (n === 'x-amz-content-sha256') {
      declaredHash ??= value;
    }
  }
  const hash = payloadHash(input.body, declaredHash);

  const headers: Array<[string, string]> = [];
  let hostPlaced = false;
  for (const [name, value] of input.headers) {
    const n = name.toLowerCase();
    if (n === 'host' && !hostPlaced) {
      headers.push(['host', input.host]);
      hostPlaced = true;
    }
    if (REPLACED.has(n)) continue;
    headers.push([name, value]);
  }
  if (!hostPlaced) headers.unshift(['host', input.host]);
  headers.push(['x-amz-date', date]);
  if (s3 || declaredHash !== undefined) headers.push(['x-amz-content-sha256', hash]);
  if (credentials.sessionToken !== undefined) headers.push(['x-amz-security-token', credentials.sessionToken]);

  // Canonical headers: signed names, lower-cased, duplicate values joined with ','.
  const values = new Map<string, string[]>();
  for (const [name, value] of headers) {
    const n = name.toLowerCase();
    if (UNSIGNABLE.has(n)) continue;
    if (n === 'host' || n.startsWith('x-amz-') || n === 'content-type' || clientSigned.has(n)) {
      const list = values.get(n);
      if (list === undefined) values.set(n, [canonicalHeaderValue(value)]);
      else list.push(canonicalHeaderValue(value));
    }
  }
  const signedNames = [...values.keys()].sort();
  const canonicalHeaders = signedNames.map((n) => `${n}:${(values.get(n) ?? []).join(',')}\n`).join('');
  const signedHeaders = signedNames.join(';');

  const canonicalRequest = [
    input.method,
    canonicalUri(input.path, s3),
    canonicalQuery(input.query),
    canonicalHeaders,
    signedHeaders,
    hash,
  ].join('\n');

  const day = date.slice(0, 8);
  const scope = `${day}/${region}/${service}/aws4_request`;
  const stringToSign = [ALGORITHM, date, scope, sha256Hex(canonicalRequest)].join('\n');
  const kDate = hmac(`AWS4${credentials.secretAccessKey}`, day);
  const kRegion = hmac(kDate, region);
  const kService = hmac(kRegion, service);
  const kSigning = hmac(kService, 'aws4_request');
  const signature = createHmac('sha256', kSigning).update(stringToSign, 'utf8').digest('hex');

  headers.push([
    'authorization',
    `${ALGORITHM} Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`,
  ]);
  return { headers };
}
