// The leaf certificates the minter makes from its template, read back by Node's own X.509 parser:
// every per-host field is what was asked for, everything else is the template's, and the
// signature verifies against the CA.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { createCertificateAuthority, loadCertificateAuthority } from '../../../src/tls/certificate-authority.ts';
import { derElement, derSerial, derTime, MAX_COMMON_NAME, parseLeafTemplate } from '../../../src/tls/leaf-der.ts';
import { createLeafMinter, type LeafMinter } from '../../../src/tls/leaf-minter.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-leaf-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
await createCertificateAuthority(path.join(dir, 'ca.pem'), path.join(dir, 'ca.key'));
const ca = await loadCertificateAuthority(path.join(dir, 'ca.pem'), path.join(dir, 'ca.key'));
const caCert = new X509Certificate(readFileSync(path.join(dir, 'ca.pem')));

t.test('derTime: UTCTime through 2049, GeneralizedTime from 2050', async (t) => {
  const cases: Array<[string, number, string]> = [
    ['2026-11-26T08:05:09.999Z', 0x17, '261126080509Z'],
    ['2049-12-31T23:59:59Z', 0x17, '491231235959Z'],
    ['2050-01-01T00:00:00Z', 0x18, '20500101000000Z'],
    ['1950-01-01T00:00:00Z', 0x17, '500101000000Z'],
    ['1949-12-31T23:59:59Z', 0x18, '19491231235959Z'],
  ];
  for (const [iso, tag, text] of cases) {
    const d = derTime(new Date(iso));
    t.equal(d[0], tag, `${iso}: tag`);
    t.equal(d.subarray(2).toString('latin1'), text, `${iso}: text`);
  }
});

t.test('derSerial: positive, minimal', async (t) => {
  const cases: Array<[number[], string]> = [
    [[0x01, 0x02], '02020102'],
    [[0x00, 0x00, 0x7f], '02017f'],
    [[0x00, 0x80], '02020080'],
    [[0x80], '02020080'],
    [[0x00], '020100'],
  ];
  for (const [bytes, hex] of cases) t.equal(derSerial(Uint8Array.from(bytes)).toString('hex'), hex, JSON.stringify(bytes));
});

t.test('derElement: short and long lengths', async (t) => {
  t.equal(derElement(0x04, Buffer.alloc(3)).toString('hex'), '0403000000');
  const long = derElement(0x04, Buffer.alloc(300));
  t.equal(long.subarray(0, 4).toString('hex'), '0482012c');
  t.equal(long.length, 304);
});

t.test('parseLeafTemplate refuses what it cannot use', async (t) => {
  t.throws(() => parseLeafTemplate(Buffer.from([0x30])), /truncated/);
  t.throws(() => parseLeafTemplate(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00])), /TBSCertificate/);
  t.throws(() => parseLeafTemplate(Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff])), /runs past/);
  t.throws(() => parseLeafTemplate(Buffer.from([0x30, 0x85, 1, 1, 1, 1, 1])), /unsupported length/);
  t.throws(() => parseLeafTemplate(derElement(0x30, derElement(0x30, derElement(0x02, Buffer.from([1]))))), /v3 certificate/);
});

/** The leaf a freshly minted context serves, as a TLS client receives it. */
async function mintedLeaf(host: string, kind: 'dns' | 'ipv4' | 'ipv6', authority = ca, minter?: LeafMinter): Promise<X509Certificate> {
  const { default: tls } = await import('node:tls');
  const { default: net } = await import('node:net');
  const ctx = await (minter ?? await createLeafMinter(authority)).contextFor(host, kind);
  const server = net.createServer((socket) => {
    const s = new tls.TLSSocket(socket, { isServer: true, secureContext: ctx });
    s.on('error', () => s.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as import('node:net').AddressInfo).port;
  try {
    return await new Promise<X509Certificate>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, servername: kind === 'dns' ? host : undefined, rejectUnauthorized: false }, () => {
        const raw = s.getPeerX509Certificate();
        s.destroy();
        if (raw) resolve(raw); else reject(new Error('no peer certificate'));
      });
      s.on('error', reject);
    });
  } finally {
    server.close();
  }
}

t.test('minted leaves, read back by a TLS client', async (t) => {
  const cases: Array<{ host: string; kind: 'dns' | 'ipv4' | 'ipv6'; subject: string; san: string; check: (c: X509Certificate) => unknown }> = [
    { host: 'api.example.com', kind: 'dns', subject: 'CN=api.example.com', san: 'DNS:api.example.com', check: (c) => c.checkHost('api.example.com') },
    { host: `${'a'.repeat(63)}.${'b'.repeat(10)}.test`, kind: 'dns', subject: 'CN=Tollgate', san: `DNS:${'a'.repeat(63)}.${'b'.repeat(10)}.test`, check: (c) => c.checkHost(`${'a'.repeat(63)}.${'b'.repeat(10)}.test`) },
    { host: '10.1.2.3', kind: 'ipv4', subject: 'CN=Tollgate IP', san: 'IP Address:10.1.2.3', check: (c) => c.checkIP('10.1.2.3') },
    { host: '2001:db8::1', kind: 'ipv6', subject: 'CN=Tollgate IP', san: 'IP Address:2001:DB8:0:0:0:0:0:1', check: (c) => c.checkIP('2001:db8::1') },
  ];
  for (const c of cases) {
    const leaf = await mintedLeaf(c.host, c.kind);
    t.equal(leaf.subject, c.subject, `${c.host}: subject`);
    t.equal(leaf.subjectAltName, c.san, `${c.host}: SAN`);
    t.ok(c.check(leaf), `${c.host}: the name matches`);
    t.equal(leaf.issuer, caCert.subject, `${c.host}: issuer`);
    t.ok(leaf.verify(caCert.publicKey), `${c.host}: signed by the CA`);
    t.ok(leaf.checkIssued(caCert), `${c.host}: issued by the CA`);
    t.equal(leaf.ca, false, `${c.host}: not a CA`);
    t.same(leaf.keyUsage, ['1.3.6.1.5.5.7.3.1'], `${c.host}: serverAuth only`);
    const validFor = new Date(leaf.validTo).getTime() - new Date(leaf.validFrom).getTime();
    t.ok(validFor > 29 * 86_400_000 && validFor <= 31 * 86_400_000, `${c.host}: about 30 days`);
    t.ok(new Date(leaf.validFrom).getTime() <= Date.now(), `${c.host}: already valid`);
  }
  t.ok(`${'a'.repeat(63)}.${'b'.repeat(10)}.test`.length > MAX_COMMON_NAME, 'the long name case is longer than a CN may be');
});

t.test('two leaves share the key and differ in serial', async (t) => {
  const a = await mintedLeaf('a.example.com', 'dns');
  const b = await mintedLeaf('a.example.com', 'dns');
  t.not(a.serialNumber, b.serialNumber);
  const one = await createLeafMinter(ca);
  const a1 = await mintedLeaf('a.example.com', 'dns', ca, one);
  const c = await mintedLeaf('b.example.com', 'dns', ca, one);
  t.not(a1.serialNumber, c.serialNumber);
  const spki = (x: X509Certificate) => x.publicKey.export({ type: 'spki', format: 'der' }).toString('hex');
  t.equal(spki(a1), spki(c), 'one leaf key for every host of a minter');
  const serials = await Promise.all(['c', 'd', 'e', 'f', 'g', 'h'].map(async (h) => (await mintedLeaf(`${h}.example.com`, 'dns', ca, one)).serialNumber));
  for (const s of [a1.serialNumber, c.serialNumber, ...serials]) {
    t.ok(/^[0-9A-F]{2,32}$/.test(s) && (s.length < 32 || parseInt(s.slice(0, 2), 16) < 0x80), `${s}: positive, at most 16 bytes (no 0x00 sign byte)`);
  }
  t.equal(new Set(serials).size, serials.length, 'every leaf its own serial');
});

t.test('an RSA CA signs its leaves with RSASSA-PKCS1-v1_5 (SHA-256)', async (t) => {
  const rsaDir = path.join(dir, 'rsa');
  execFileSync('mkdir', ['-p', rsaDir]);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(rsaDir, 'ca.key'), '-out', path.join(rsaDir, 'ca.pem'),
    '-days', '30', '-subj', '/CN=Test RSA CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign'], { stdio: 'ignore' });
  chmodSync(path.join(rsaDir, 'ca.key'), 0o600);
  const rsaCa = await loadCertificateAuthority(path.join(rsaDir, 'ca.pem'), path.join(rsaDir, 'ca.key'));
  const rsaCert = new X509Certificate(readFileSync(path.join(rsaDir, 'ca.pem')));
  const leaf = await mintedLeaf('rsa.example.com', 'dns', rsaCa);
  t.ok(leaf.verify(rsaCert.publicKey), 'signed by the RSA CA');
  t.ok(leaf.checkHost('rsa.example.com'));
  t.ok(new Date(leaf.validTo).getTime() <= new Date(rsaCert.validTo).getTime(), 'never outlives its CA');
});
