// Owns: minting leaf certificates per host over one shared EC P-256 key, and caching the TLS
// context (the pending promise too, so concurrent first requests mint once). One template leaf is
// made with the certificate library at start; each host's leaf is that template with its serial,
// validity, subject and SAN re-encoded (src/tls/leaf-der.ts) and signed on libuv's thread pool.
import { KeyObject, sign, webcrypto } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import * as x509 from '@peculiar/x509';
import { EC_ALGORITHM, randomSerial, toPem, type CertificateAuthority } from './certificate-authority.ts';
import { assembleCertificate, leafTbs, parseLeafTemplate } from './leaf-der.ts';

type CryptoKeyPair = webcrypto.CryptoKeyPair;

const LEAF_LIFETIME_MS = 30 * 24 * 60 * 60 * 1000;
const REMINT_AFTER_MS = 7 * 24 * 60 * 60 * 1000;

export interface LeafMinterStats { minted: number; cached: number; hits: number; misses: number }

export interface LeafMinter {
  /** TLS context for `host` (a canonical host name, IPv4 or IPv6 literal). */
  contextFor(host: string, kind: 'dns' | 'ipv4' | 'ipv6'): Promise<SecureContext>;
  stats(): LeafMinterStats;
}

interface Entry { promise: Promise<SecureContext>; mintedAt: number }

export async function createLeafMinter(ca: CertificateAuthority, opts: { maxEntries?: number; now?: () => number } = {}): Promise<LeafMinter> {
  const now = opts.now ?? Date.now;
  const maxEntries = opts.maxEntries ?? 10_000;
  const keys = (await webcrypto.subtle.generateKey(EC_ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
  const keyPem = toPem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
  const aki = await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey);
  const skiExt = await x509.SubjectKeyIdentifierExtension.create(keys.publicKey);
  const cache = new Map<string, Entry>();
  let minted = 0;
  let hits = 0;
  let misses = 0;

  // The template: the same key, issuer and extensions every leaf carries (SAN replaced per host).
  const template = parseLeafTemplate(new Uint8Array((await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: 'CN=template.invalid',
    issuer: ca.cert.subject,
    notBefore: new Date(now()),
    notAfter: new Date(Math.min(now() + LEAF_LIFETIME_MS, ca.notAfter.getTime())),
    signingAlgorithm: ca.signingAlgorithm,
    publicKey: keys.publicKey,
    signingKey: ca.signingKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'template.invalid' }]),
      skiExt,
      aki,
    ],
  })).rawData));
  const caKey = KeyObject.from(ca.signingKey);
  // the template's signature algorithm names the hash: 'SHA-256' → 'sha256'
  const digest = ca.signingAlgorithm.hash.replace('-', '').toLowerCase();
  const signTbs = (tbs: Buffer) => new Promise<Buffer>((resolve, reject) => {
    // The callback form runs on libuv's thread pool, off the event loop. The CA's key: ECDSA
    // (DER-encoded signature, as X.509 wants) or RSASSA-PKCS1-v1_5.
    sign(digest, tbs, caKey, (err, sig) => (err ? reject(err) : resolve(sig)));
  });

  async function mint(host: string, kind: 'dns' | 'ipv4' | 'ipv6'): Promise<SecureContext> {
    const t = now();
    const tbs = leafTbs(template, {
      serial: Buffer.from(randomSerial(), 'hex'),
      host,
      kind,
      notBefore: new Date(t - 60 * 60 * 1000),
      notAfter: new Date(Math.min(t + LEAF_LIFETIME_MS, ca.notAfter.getTime())),
    });
    const der = assembleCertificate(tbs, template.signatureAlgorithm, await signTbs(tbs));
    minted++;
    return createSecureContext({ key: keyPem, cert: toPem(new Uint8Array(der).buffer, 'CERTIFICATE') + ca.certPem, minVersion: 'TLSv1.2' });
  }

  return {
    contextFor(host, kind) {
      const key = `${kind}:${host}`;
      const entry = cache.get(key);
      const t = now();
      if (entry && t - entry.mintedAt < REMINT_AFTER_MS) {
        hits++;
        // refresh LRU order
        cache.delete(key);
        cache.set(key, entry);
        return entry.promise;
      }
      misses++;
      const promise = mint(host, kind);
      cache.set(key, { promise, mintedAt: t });
      promise.catch(() => cache.delete(key));
      if (cache.size > maxEntries) {
        const oldest = cache.keys().next().value;
        if (oldest !== undefined) cache.delete(oldest);
      }
      return promise;
    },
    stats: () => ({ minted, cached: cache.size, hits, misses }),
  };
}
