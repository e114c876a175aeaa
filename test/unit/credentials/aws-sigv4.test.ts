import t from 'tap';
import { readFileSync } from 'node:fs';
import { TollgateError } from '../../../src/errors.ts';
import {
  inferRegionService,
  parseAwsAuthorization,
  parseAwsSecret,
  signAwsRequest,
  type AwsSignInput,
} from '../../../src/credentials/aws-sigv4.ts';

type Headers = Array<[string, string]>;
const enc = new TextEncoder();

// --- AWS SigV4 test suite (aws-sig-v4-test-suite, 2015-08-30) ------------------------------------
const SUITE_CREDS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const SUITE_NOW = new Date('2015-08-30T12:36:00Z');
const SUITE_HOST = 'example.amazonaws.com';
const DUMMY_SIGNATURE = 'f00dfacef00dfacef00dfacef00dfacef00dfacef00dfacef00dfacef00dface';
const SUITE_TOKEN =
  'AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==';

/** The client's own (dummy-key) Authorization header, as an SDK would have sent it. */
function dummyAuth(signedHeaders: string, scope = '20150830/us-east-1/service'): [string, string] {
  return [
    'Authorization',
    `AWS4-HMAC-SHA256 Credential=AKIAPLACEHOLDER/${scope}/aws4_request, SignedHeaders=${signedHeaders}, Signature=${DUMMY_SIGNATURE}`,
  ];
}

function authOf(headers: Headers): string {
  const found = headers.filter(([n]) => n.toLowerCase() === 'authorization');
  if (found.length !== 1 || found[0] === undefined) throw new Error(`expected one authorization header, got ${found.length}`);
  return found[0][1];
}

function headerValues(headers: Headers, name: string): string[] {
  return headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v);
}

interface SuiteCase {
  name: string;
  method: string;
  path: string;
  query?: string;
  headers?: Headers;
  body?: string;
  sessionToken?: string;
  signedHeaders: string;
  signature: string;
}

const SUITE: SuiteCase[] = [
  { name: 'get-vanilla', method: 'GET', path: '/', signedHeaders: 'host;x-amz-date', signature: '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31' },
  { name: 'get-vanilla-empty-query-key', method: 'GET', path: '/', query: 'Param1=value1', signedHeaders: 'host;x-amz-date', signature: 'a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb' },
  { name: 'get-vanilla-query', method: 'GET', path: '/', query: '', signedHeaders: 'host;x-amz-date', signature: '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31' },
  { name: 'get-vanilla-query-order-key-case', method: 'GET', path: '/', query: 'Param2=value2&Param1=value1', signedHeaders: 'host;x-amz-date', signature: 'b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500' },
  { name: 'get-vanilla-query-order-key', method: 'GET', path: '/', query: 'Param1=value2&Param1=Value1', signedHeaders: 'host;x-amz-date', signature: 'eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1' },
  { name: 'get-vanilla-query-order-value', method: 'GET', path: '/', query: 'Param1=value2&Param1=value1', signedHeaders: 'host;x-amz-date', signature: '5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694' },
  {
    name: 'get-vanilla-query-unreserved',
    method: 'GET',
    path: '/',
    query: '-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz',
    signedHeaders: 'host;x-amz-date',
    signature: '9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197',
  },
  { name: 'get-vanilla-utf8-query', method: 'GET', path: '/', query: 'ሴ=bar', signedHeaders: 'host;x-amz-date', signature: '2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04' },
  { name: 'get-vanilla-utf8-query (percent-encoded on the wire)', method: 'GET', path: '/', query: '%E1%88%B4=bar', signedHeaders: 'host;x-amz-date', signature: '2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04' },
  { name: 'get-utf8', method: 'GET', path: '/ሴ', signedHeaders: 'host;x-amz-date', signature: '8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85' },
  { name: 'get-space', method: 'GET', path: '/example space/', signedHeaders: 'host;x-amz-date', signature: '652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741' },
  { name: 'get-slash', method: 'GET', path: '//', signedHeaders: 'host;x-amz-date', signature: '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31' },
  { name: 'get-slashes', method: 'GET', path: '//example//', signedHeaders: 'host;x-amz-date', signature: '9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84' },
  { name: 'get-slash-dot-slash', method: 'GET', path: '/./', signedHeaders: 'host;x-amz-date', signature: '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31' },
  { name: 'get-slash-pointless-dot', method: 'GET', path: '/./example', signedHeaders: 'host;x-amz-date', signature: 'ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5' },
  { name: 'get-relative', method: 'GET', path: '/example/..', signedHeaders: 'host;x-amz-date', signature: '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31' },
  { name: 'get-relative-relative', method: 'GET', path: '/example1/example2/../..', signedHeaders: 'host;x-amz-date', signature: '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31' },
  {
    name: 'get-header-key-duplicate',
    method: 'GET',
    path: '/',
    headers: [['My-Header1', 'value2'], ['My-Header1', 'value2'], ['My-Header1', 'value1'], dummyAuth('host;my-header1;x-amz-date')],
    signedHeaders: 'host;my-header1;x-amz-date',
    signature: 'c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea',
  },
  {
    name: 'get-header-value-trim',
    method: 'GET',
    path: '/',
    headers: [['My-Header1', ' value1'], ['My-Header2', ' "a   b   c"'], dummyAuth('host;my-header1;my-header2;x-amz-date')],
    signedHeaders: 'host;my-header1;my-header2;x-amz-date',
    signature: 'acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736',
  },
  { name: 'post-vanilla', method: 'POST', path: '/', signedHeaders: 'host;x-amz-date', signature: '5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b' },
  { name: 'post-vanilla-query', method: 'POST', path: '/', query: 'Param1=value1', signedHeaders: 'host;x-amz-date', signature: '28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11' },
  {
    name: 'post-header-key-sort',
    method: 'POST',
    path: '/',
    headers: [['My-Header1', 'value1'], dummyAuth('host;my-header1;x-amz-date')],
    signedHeaders: 'host;my-header1;x-amz-date',
    signature: 'c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c',
  },
  {
    name: 'post-header-value-case',
    method: 'POST',
    path: '/',
    headers: [['My-Header1', 'VALUE1'], dummyAuth('host;my-header1;x-amz-date')],
    signedHeaders: 'host;my-header1;x-amz-date',
    signature: 'cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d',
  },
  {
    name: 'post-x-www-form-urlencoded',
    method: 'POST',
    path: '/',
    headers: [['Content-Type', 'application/x-www-form-urlencoded']],
    body: 'Param1=value1',
    signedHeaders: 'content-type;host;x-amz-date',
    signature: 'ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a',
  },
  {
    name: 'post-x-www-form-urlencoded-parameters',
    method: 'POST',
    path: '/',
    headers: [['Content-Type', 'application/x-www-form-urlencoded; charset=utf8']],
    body: 'Param1=value1',
    signedHeaders: 'content-type;host;x-amz-date',
    signature: '1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe',
  },
  {
    name: 'post-sts-header-before',
    method: 'POST',
    path: '/',
    sessionToken: SUITE_TOKEN,
    signedHeaders: 'host;x-amz-date;x-amz-security-token',
    signature: '85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead',
  },
];

t.test('AWS SigV4 test suite vectors', async (t) => {
  for (const c of SUITE) {
    const creds = c.sessionToken === undefined ? SUITE_CREDS : { ...SUITE_CREDS, sessionToken: c.sessionToken };
    const { headers } = signAwsRequest({
      method: c.method,
      host: SUITE_HOST,
      path: c.path,
      query: c.query ?? '',
      headers: [['Host', SUITE_HOST], ...(c.headers ?? [])],
      body: enc.encode(c.body ?? ''),
      credentials: creds,
      region: 'us-east-1',
      service: 'service',
      now: SUITE_NOW,
    });
    t.equal(
      authOf(headers),
      `AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=${c.signedHeaders}, Signature=${c.signature}`,
      c.name,
    );
    t.same(headerValues(headers, 'x-amz-date'), ['20150830T123600Z'], `${c.name}: x-amz-date`);
    t.same(headerValues(headers, 'x-amz-content-sha256'), [], `${c.name}: no content hash header for non-S3`);
    t.notOk(JSON.stringify(headers).includes(DUMMY_SIGNATURE), `${c.name}: dummy signature gone`);
  }
});

t.test('IAM ListUsers example from the AWS documentation', async (t) => {
  const { headers } = signAwsRequest({
    method: 'GET',
    host: 'iam.amazonaws.com',
    path: '/',
    query: 'Action=ListUsers&Version=2010-05-08',
    headers: [
      ['Host', 'iam.amazonaws.com'],
      ['Content-Type', 'application/x-www-form-urlencoded; charset=utf-8'],
      ['X-Amz-Date', '20990101T000000Z'],
      dummyAuth('content-type;host;x-amz-date', '20150830/us-east-1/iam'),
    ],
    body: new Uint8Array(0),
    credentials: SUITE_CREDS,
    region: 'us-east-1',
    service: 'iam',
    now: SUITE_NOW,
  });
  t.same(headers, [
    ['host', 'iam.amazonaws.com'],
    ['Content-Type', 'application/x-www-form-urlencoded; charset=utf-8'],
    ['x-amz-date', '20150830T123600Z'],
    [
      'authorization',
      'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7',
    ],
  ]);
});

// --- S3 examples from "Signature Calculations for the Authorization Header: single chunk" --------
const S3_CREDS = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' };
const S3_NOW = new Date('2013-05-24T00:00:00Z');
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

interface S3Case {
  name: string;
  method: string;
  path: string;
  query?: string;
  headers?: Headers;
  body?: string;
  contentSha256: string;
  signedHeaders: string;
  signature: string;
}

const S3_CASES: S3Case[] = [
  {
    name: 'GET object with Range',
    method: 'GET',
    path: '/test.txt',
    headers: [['Range', 'bytes=0-9'], dummyAuth('host;range;x-amz-content-sha256;x-amz-date', '20130524/us-east-1/s3')],
    contentSha256: EMPTY_SHA256,
    signedHeaders: 'host;range;x-amz-content-sha256;x-amz-date',
    signature: 'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
  },
  ...['/test$file.text', '/test%24file.text'].map((path) => ({
    name: `PUT object (path ${path})`,
    method: 'PUT',
    path,
    headers: [
      ['Date', 'Fri, 24 May 2013 00:00:00 GMT'],
      ['x-amz-storage-class', 'REDUCED_REDUNDANCY'],
      // a hash the client computed itself is replaced by ours (same value here)
      ['X-Amz-Content-Sha256', '44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072'],
      dummyAuth('date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class', '20130524/us-east-1/s3'),
    ] as Headers,
    body: 'Welcome to Amazon S3.',
    contentSha256: '44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072',
    signedHeaders: 'date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class',
    signature: '98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd',
  })),
  {
    name: 'GET bucket lifecycle (value-less query key)',
    method: 'GET',
    path: '/',
    query: 'lifecycle',
    contentSha256: EMPTY_SHA256,
    signedHeaders: 'host;x-amz-content-sha256;x-amz-date',
    signature: 'fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543',
  },
  {
    name: 'GET bucket (list objects)',
    method: 'GET',
    path: '/',
    query: 'max-keys=2&prefix=J',
    contentSha256: EMPTY_SHA256,
    signedHeaders: 'host;x-amz-content-sha256;x-amz-date',
    signature: '34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7',
  },
];

t.test('S3 documentation examples (always x-amz-content-sha256, single encoding)', async (t) => {
  for (const c of S3_CASES) {
    const { headers } = signAwsRequest({
      method: c.method,
      host: 'examplebucket.s3.amazonaws.com',
      path: c.path,
      query: c.query ?? '',
      headers: c.headers ?? [],
      body: enc.encode(c.body ?? ''),
      credentials: S3_CREDS,
      region: 'us-east-1',
      service: 's3',
      now: S3_NOW,
    });
    t.equal(
      authOf(headers),
      `AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=${c.signedHeaders}, Signature=${c.signature}`,
      c.name,
    );
    t.same(headerValues(headers, 'x-amz-content-sha256'), [c.contentSha256], `${c.name}: content hash`);
    t.same(headerValues(headers, 'host'), ['examplebucket.s3.amazonaws.com'], `${c.name}: host set`);
  }
});

function base(overrides: Partial<AwsSignInput> = {}): AwsSignInput {
  return {
    method: 'GET',
    host: SUITE_HOST,
    path: '/',
    query: '',
    headers: [],
    body: new Uint8Array(0),
    credentials: SUITE_CREDS,
    region: 'us-east-1',
    service: 'service',
    now: SUITE_NOW,
    ...overrides,
  };
}

function signedHeadersOf(headers: Headers): string {
  return /SignedHeaders=([^,]*)/.exec(authOf(headers))?.[1] ?? '';
}
function signatureOf(headers: Headers): string {
  return /Signature=([0-9a-f]{64})$/.exec(authOf(headers))?.[1] ?? '';
}

t.test('path encoding: double for most services, single for S3', async (t) => {
  const sig = (service: string, path: string) => signatureOf(signAwsRequest(base({ service, path })).headers);
  // The suite writes /ሴ raw; on the wire it arrives as /%E1%88%B4. For non-S3 services the SDKs
  // encode the wire path again, so the two must sign differently; S3 encodes once, so they match.
  t.not(sig('service', '/%E1%88%B4'), sig('service', '/ሴ'), 'non-S3: wire path is encoded again');
  t.equal(sig('s3', '/%E1%88%B4'), sig('s3', '/ሴ'), 'S3: no double encoding');
  t.equal(sig('s3', '/a%2fb'), sig('s3', '/a%2Fb'), 'S3: hex case normalised');
  t.not(sig('s3', '/a//b'), sig('s3', '/a/b'), 'S3: empty segments kept');
  t.not(sig('s3', '/a/../b'), sig('s3', '/b'), 'S3: dot segments kept');
  t.equal(sig('service', ''), sig('service', '/'), 'empty path is /');
});

t.test('query canonicalisation', async (t) => {
  const sig = (query: string) => signatureOf(signAwsRequest(base({ query })).headers);
  t.equal(sig('?Param2=value2&Param1=value1'), sig('Param2=value2&Param1=value1'), 'leading ? tolerated');
  t.equal(sig('a=%7e&b=x'), sig('b=x&a=~'), 'escapes decoded and re-encoded canonically, sorted by key');
  t.equal(sig('a=1&&b=2&'), sig('a=1&b=2'), 'empty pieces ignored');
  t.equal(sig('flag'), sig('flag='), 'value-less key signs as key=');
  t.equal(sig('a=b+c'), sig('a=b%2Bc'), '+ is a literal plus, not a space');
  t.not(sig('a=b+c'), sig('a=b%20c'), '+ differs from %20');
});

t.test('headers: what is removed, replaced, kept and signed', async (t) => {
  const { headers } = signAwsRequest(
    base({
      host: 'sts.us-east-1.amazonaws.com',
      region: 'us-east-1',
      service: 'sts',
      credentials: { ...SUITE_CREDS, sessionToken: 'FwoGZXIvYXdzEXAMPLETOKEN==' },
      headers: [
        ['User-Agent', 'aws-sdk-js/3.0'],
        ['Host', 'client-said.example'],
        ['X-Amz-Date', '20000101T000000Z'],
        ['X-Amz-Security-Token', 'dummy-client-token'],
        ['Accept', 'application/json'],
        ['X-Amz-Target', 'Foo.Bar'],
        ['Content-Type', 'application/x-amz-json-1.1'],
        ['Connection', 'keep-alive'],
        dummyAuth('accept;connection;content-type;host;user-agent;x-amz-date;x-amz-security-token;x-amz-target;x-gone', '20000101/us-east-1/sts'),
      ],
    }),
  );
  const names = headers.map(([n]) => n);
  t.same(names, [
    'User-Agent',
    'host',
    'Accept',
    'X-Amz-Target',
    'Content-Type',
    'Connection',
    'x-amz-date',
    'x-amz-security-token',
    'authorization',
  ], 'order kept; host replaced in place; signing headers appended');
  t.same(headerValues(headers, 'host'), ['sts.us-east-1.amazonaws.com']);
  t.same(headerValues(headers, 'x-amz-security-token'), ['FwoGZXIvYXdzEXAMPLETOKEN=='], 'bound session token sent');
  const all = JSON.stringify(headers);
  t.notOk(all.includes('dummy-client-token'), 'client token removed');
  t.notOk(all.includes(DUMMY_SIGNATURE), 'client signature removed');
  t.notOk(all.includes('AKIAPLACEHOLDER'), 'client access key id removed');
  t.notOk(all.includes('20000101'), 'client date removed');
  t.notOk(all.includes(SUITE_CREDS.secretAccessKey), 'secret never on the wire');
  t.equal(
    signedHeadersOf(headers),
    'accept;content-type;host;x-amz-date;x-amz-security-token;x-amz-target',
    'client-signed headers kept if present; hop-by-hop and user-agent never signed',
  );
  t.match(authOf(headers), /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/20150830\/us-east-1\/sts\/aws4_request, /);
});

t.test('no session token bound: the client token is dropped, none added', async (t) => {
  const { headers } = signAwsRequest(base({ headers: [['x-amz-security-token', 'client-dummy']] }));
  t.same(headerValues(headers, 'x-amz-security-token'), []);
  t.equal(signedHeadersOf(headers), 'host;x-amz-date');
});

t.test('host header is added when the client sent none, and duplicates collapse', async (t) => {
  t.same(signAwsRequest(base()).headers[0], ['host', SUITE_HOST]);
  const { headers } = signAwsRequest(base({ headers: [['a', '1'], ['Host', 'x'], ['HOST', 'y']] }));
  t.same(headers.slice(0, 2), [['a', '1'], ['host', SUITE_HOST]]);
  t.same(headerValues(headers, 'host'), [SUITE_HOST]);
});

t.test('payload hash handling', async (t) => {
  const hashOf = (input: Partial<AwsSignInput>) => headerValues(signAwsRequest(base(input)).headers, 'x-amz-content-sha256');
  const body = enc.encode('hello');
  const helloSha = '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824';
  const client = (v: string): Headers => [['X-Amz-Content-Sha256', v]];

  t.same(hashOf({ body }), [], 'non-S3, client sent none: none');
  t.same(hashOf({ body, headers: client('0'.repeat(64)) }), [helloSha], 'non-S3, client sent one: replaced with the real hash');
  t.same(hashOf({ service: 's3', body }), [helloSha], 'S3: always sent');
  t.same(hashOf({ service: 's3', body: 'UNSIGNED-PAYLOAD' }), ['UNSIGNED-PAYLOAD'], 'S3 streamed body: UNSIGNED-PAYLOAD');
  t.same(
    hashOf({ service: 's3', body: 'UNSIGNED-PAYLOAD', headers: client(helloSha.toUpperCase()) }),
    [helloSha],
    'S3 streamed body: the client-declared hash is reused (S3 checks it against the body)',
  );
  t.same(
    hashOf({ service: 's3', body, headers: client('STREAMING-UNSIGNED-PAYLOAD-TRAILER') }),
    ['STREAMING-UNSIGNED-PAYLOAD-TRAILER'],
    'aws-chunked with unsigned trailer: kept as declared',
  );
  t.same(hashOf({ service: 's3', body, headers: client('UNSIGNED-PAYLOAD') }), ['UNSIGNED-PAYLOAD'], 'client chose unsigned: kept');

  // The canonical request's last line is the payload hash: UNSIGNED-PAYLOAD vs a real hash differ.
  t.not(
    signatureOf(signAwsRequest(base({ body: 'UNSIGNED-PAYLOAD' })).headers),
    signatureOf(signAwsRequest(base()).headers),
  );

  for (const mode of ['STREAMING-AWS4-HMAC-SHA256-PAYLOAD', 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER', 'STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD']) {
    t.throws(
      () => signAwsRequest(base({ service: 's3', body, headers: client(mode) })),
      { name: 'TollgateError', code: 'TOLLGATE_ERR_REQUEST', message: /cannot be re-signed/ },
      `${mode} refused: chunk signatures are chained to the client's dummy key`,
    );
  }
});

t.test('signing time comes from the argument only', async (t) => {
  const { headers } = signAwsRequest(base({ now: new Date('2024-02-29T23:59:59.999Z') }));
  t.same(headerValues(headers, 'x-amz-date'), ['20240229T235959Z']);
  t.match(authOf(headers), /Credential=AKIDEXAMPLE\/20240229\/us-east-1\/service\/aws4_request/);
  t.throws(() => signAwsRequest(base({ now: new Date(Number.NaN) })), TollgateError);
});

t.test('invalid signing parameters are refused without echoing secrets', async (t) => {
  const secret = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
  const bad: Array<[string, Partial<AwsSignInput>]> = [
    ['region with a newline', { region: 'us-east-1\nx' }],
    ['service upper-case', { service: 'S3' }],
    ['method with a space', { method: 'GET /' }],
    ['host with a slash', { host: 'a/b' }],
    ['secret with a newline', { credentials: { accessKeyId: 'AKID', secretAccessKey: `${secret}\n` } }],
    ['token with CRLF', { credentials: { accessKeyId: 'AKID', secretAccessKey: secret, sessionToken: `Zq9TokenValue\r\nX-Evil: 1` } }],
    ['access key with a comma', { credentials: { accessKeyId: 'AKID,Signature=1', secretAccessKey: secret } }],
  ];
  for (const [name, input] of bad) {
    try {
      signAwsRequest(base(input));
      t.fail(`${name}: should throw`);
    } catch (e) {
      t.ok(e instanceof TollgateError && e.code === 'TOLLGATE_ERR_REQUEST', `${name}: TollgateError`);
      t.notOk(String((e as Error).message).includes(secret), `${name}: secret not in message`);
      t.notOk(String((e as Error).message).includes('Zq9TokenValue'), `${name}: token not in message`);
    }
  }
});

// --- parseAwsAuthorization ---------------------------------------------------------------------

t.test('parseAwsAuthorization', async (t) => {
  const cases: Array<[string, string, ReturnType<typeof parseAwsAuthorization>]> = [
    [
      'SDK format',
      'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7',
      { accessKeyId: 'AKIDEXAMPLE', date: '20150830', region: 'us-east-1', service: 'iam', signedHeaders: ['content-type', 'host', 'x-amz-date'] },
    ],
    [
      'no spaces after commas, fields reordered, upper-case header names',
      'AWS4-HMAC-SHA256 SignedHeaders=Host;X-Amz-Date,Signature=abcdef,Credential=AKIAX/20240101/eu-west-1/s3/aws4_request',
      { accessKeyId: 'AKIAX', date: '20240101', region: 'eu-west-1', service: 's3', signedHeaders: ['host', 'x-amz-date'] },
    ],
    ['SigV4a', 'AWS4-ECDSA-P256-SHA256 Credential=AKID/20240101/s3/aws4_request, SignedHeaders=host, Signature=ab', null],
    ['SigV2', 'AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=', null],
    ['Bearer', 'Bearer abc', null],
    ['empty', '', null],
    ['no signature', 'AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/iam/aws4_request, SignedHeaders=host', null],
    ['no signed headers', 'AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/iam/aws4_request, Signature=ab', null],
    ['short scope', 'AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/aws4_request, SignedHeaders=host, Signature=ab', null],
    ['bad terminator', 'AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/iam/aws4, SignedHeaders=host, Signature=ab', null],
    ['bad date', 'AWS4-HMAC-SHA256 Credential=AKID/2015083/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=ab', null],
    ['region injection', 'AWS4-HMAC-SHA256 Credential=AKID/20150830/us east/iam/aws4_request, SignedHeaders=host, Signature=ab', null],
    ['duplicate field', 'AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/iam/aws4_request, Credential=X/20150830/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=ab', null],
    ['bad header name', 'AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/iam/aws4_request, SignedHeaders=host;;x, Signature=ab', null],
  ];
  for (const [name, header, expected] of cases) t.same(parseAwsAuthorization(header), expected, name);
});

// --- inferRegionService ------------------------------------------------------------------------

t.test('inferRegionService', async (t) => {
  const cases: Array<[string, { region: string; service: string } | null]> = [
    ['s3.us-west-2.amazonaws.com', { region: 'us-west-2', service: 's3' }],
    ['bucket.s3.amazonaws.com', { region: 'us-east-1', service: 's3' }],
    ['my.dotted.bucket.s3.eu-central-1.amazonaws.com', { region: 'eu-central-1', service: 's3' }],
    ['my-bucket-1.s3.amazonaws.com', { region: 'us-east-1', service: 's3' }],
    ['s3.amazonaws.com', { region: 'us-east-1', service: 's3' }],
    ['bucket.s3-us-west-2.amazonaws.com', { region: 'us-west-2', service: 's3' }],
    ['s3-external-1.amazonaws.com', { region: 'us-east-1', service: 's3' }],
    ['bucket.s3.dualstack.ap-southeast-2.amazonaws.com', { region: 'ap-southeast-2', service: 's3' }],
    ['ap-123456789012.s3-accesspoint.us-east-1.amazonaws.com', { region: 'us-east-1', service: 's3' }],
    ['123456789012.s3-control.us-east-1.amazonaws.com', { region: 'us-east-1', service: 's3' }],
    ['bucket.vpce-1a2b3c4d-5e6f.s3.us-east-1.vpce.amazonaws.com', { region: 'us-east-1', service: 's3' }],
    ['bucket.s3-website-us-east-1.amazonaws.com', null],
    ['sts.amazonaws.com', { region: 'us-east-1', service: 'sts' }],
    ['sts.eu-west-1.amazonaws.com', { region: 'eu-west-1', service: 'sts' }],
    ['sts-fips.us-east-1.amazonaws.com', { region: 'us-east-1', service: 'sts' }],
    ['iam.amazonaws.com', { region: 'us-east-1', service: 'iam' }],
    ['iam.us-gov.amazonaws.com', { region: 'us-gov-west-1', service: 'iam' }],
    ['ec2.eu-west-1.amazonaws.com', { region: 'eu-west-1', service: 'ec2' }],
    ['EC2.EU-WEST-1.AMAZONAWS.COM.', { region: 'eu-west-1', service: 'ec2' }],
    ['ec2.eu-west-1.amazonaws.com:443', { region: 'eu-west-1', service: 'ec2' }],
    ['ec2.us-gov-west-1.amazonaws.com', { region: 'us-gov-west-1', service: 'ec2' }],
    ['eks.us-east-1.amazonaws.com', { region: 'us-east-1', service: 'eks' }],
    ['0123456789ABCDEF0123456789ABCDEF.gr7.us-east-1.eks.amazonaws.com', { region: 'us-east-1', service: 'eks' }],
    ['search-logs-abc.eu-west-1.es.amazonaws.com', { region: 'eu-west-1', service: 'es' }],
    ['abc123.us-east-1.aoss.amazonaws.com', { region: 'us-east-1', service: 'aoss' }],
    ['bedrock-runtime.us-west-2.amazonaws.com', { region: 'us-west-2', service: 'bedrock' }],
    ['runtime.sagemaker.us-east-1.amazonaws.com', { region: 'us-east-1', service: 'sagemaker' }],
    ['email.us-east-1.amazonaws.com', { region: 'us-east-1', service: 'ses' }],
    ['abc123.execute-api.us-east-1.amazonaws.com', { region: 'us-east-1', service: 'execute-api' }],
    ['s3.cn-north-1.amazonaws.com.cn', { region: 'cn-north-1', service: 's3' }],
    ['iam.amazonaws.com.cn', { region: 'cn-north-1', service: 'iam' }],
    ['abcdef.lambda-url.us-east-1.on.aws', { region: 'us-east-1', service: 'lambda' }],
    ['example.com', null],
    ['amazonaws.com', null],
    ['evil-amazonaws.com', null],
    ['s3.us-west-2.amazonaws.com.evil.example', null],
    ['foo..amazonaws.com', null],
    ['[::1]:443', null],
    ['192.0.2.1', null],
  ];
  for (const [host, expected] of cases) t.same(inferRegionService(host), expected, host);
});

// --- parseAwsSecret ----------------------------------------------------------------------------

t.test('parseAwsSecret: accepted forms', async (t) => {
  const key = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
  const cases: Array<[string, string, ReturnType<typeof parseAwsSecret>]> = [
    ['JSON', `{"access_key_id":"AKIDEXAMPLE","secret_access_key":"${key}"}`, { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: key }],
    [
      'JSON with token and trailing newline',
      `{"access_key_id":"ASIAX","secret_access_key":"${key}","session_token":"tok/en+=="}\n`,
      { accessKeyId: 'ASIAX', secretAccessKey: key, sessionToken: 'tok/en+==' },
    ],
    ['JSON with null token', `{"access_key_id":"AKID","secret_access_key":"${key}","session_token":null}`, { accessKeyId: 'AKID', secretAccessKey: key }],
    [
      'AWS CLI spelling',
      `{"Version":1,"AccessKeyId":"ASIAX","SecretAccessKey":"${key}","SessionToken":"tok"}`,
      { accessKeyId: 'ASIAX', secretAccessKey: key, sessionToken: 'tok' },
    ],
    ['colon pair', `AKIDEXAMPLE:${key}`, { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: key }],
    ['colon triple with newline', `ASIAX:${key}:tok==\n`, { accessKeyId: 'ASIAX', secretAccessKey: key, sessionToken: 'tok==' }],
  ];
  for (const [name, value, expected] of cases) t.same(parseAwsSecret(value), expected, name);
});

t.test('parseAwsSecret: malformed values give a clear error without the secret', async (t) => {
  const secret = 'SuperSecretValue1234567890abcdefghijkLMNOP';
  const cases: Array<[string, string, RegExp]> = [
    ['empty', '   \n', /empty/],
    ['bad JSON', `{"access_key_id":"AKID","secret_access_key":"${secret}"`, /not valid JSON/],
    ['JSON array', `[${JSON.stringify(secret)}]`, /fields|colon/],
    ['JSON missing secret', `{"access_key_id":"AKID","secret":"${secret}"}`, /secret_access_key is missing/],
    ['JSON missing key id', `{"secret_access_key":"${secret}"}`, /access_key_id is missing/],
    ['JSON numeric token', `{"access_key_id":"AKID","secret_access_key":"${secret}","session_token":5}`, /session_token is not a string/],
    ['JSON empty secret', `{"access_key_id":"AKID","secret_access_key":""}`, /secret access key/],
    ['single field', secret, /found 1/],
    ['too many fields', `AKID:${secret}:tok:extra`, /found 4/],
    ['empty key id', `:${secret}`, /access key id/],
    ['empty secret', 'AKID:', /secret access key/],
    ['empty token', `AKID:${secret}:`, /session token/],
    ['space in secret', `AKID:${secret} x`, /secret access key/],
    ['newline in token', `AKID:${secret}:a\nb`, /session token/],
  ];
  for (const [name, value, why] of cases) {
    try {
      parseAwsSecret(value);
      t.fail(`${name}: should throw`);
    } catch (e) {
      t.ok(e instanceof TollgateError, `${name}: TollgateError`);
      const err = e as TollgateError;
      t.equal(err.code, 'TOLLGATE_ERR_CONFIG_INVALID', `${name}: code`);
      t.match(err.message, why, `${name}: says why`);
      t.match(err.message, /ACCESS_KEY_ID:SECRET_ACCESS_KEY/, `${name}: says what is expected`);
      const everything = `${err.message} ${err.detail ?? ''} ${String(err.cause ?? '')} ${err.stack ?? ''}`;
      t.notOk(everything.includes(secret), `${name}: secret not echoed`);
      t.notOk(everything.includes('SuperSecret'), `${name}: no fragment of the secret`);
    }
  }
});

t.test('module stays pure: only node:crypto and the error vocabulary', async (t) => {
  const src = readFileSync(new URL('../../../src/credentials/aws-sigv4.ts', import.meta.url), 'utf8');
  const imports = [...src.matchAll(/^import\s.*?from\s+'([^']+)'/gm)].map((m) => m[1]);
  t.same(imports.sort(), ['../errors.ts', 'node:crypto']);
  t.notOk(/\bDate\.now\(|new Date\(\)/.test(src), 'no clock');
});
