// Test-only PKI: a CA made in the test and server certificates for the local upstreams.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
const ALG = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;

function pem(der: ArrayBuffer, label: string): string {
  return `-----BEGIN ${label}-----\n${Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END ${label}-----\n`;
}

export interface TestCa {
  caPem: string;
  issue(names: string[], opts?: { notBefore?: Date; notAfter?: Date }): Promise<{ certPem: string; keyPem: string }>;
}

export async function makeTestCa(name = 'Tollgate Test Upstream CA'): Promise<TestCa> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${name}`,
    notBefore: new Date(Date.now() - 3600_000),
    notAfter: new Date(Date.now() + 86400_000),
    signingAlgorithm: SIGN,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return {
    caPem: ca.toString('pem') + '\n',
    async issue(names, opts = {}) {
      const leafKeys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
      const cert = await x509.X509CertificateGenerator.create({
        subject: `CN=${names[0] ?? 'localhost'}`,
        issuer: ca.subject,
        notBefore: opts.notBefore ?? new Date(Date.now() - 3600_000),
        notAfter: opts.notAfter ?? new Date(Date.now() + 86400_000),
        signingAlgorithm: SIGN,
        publicKey: leafKeys.publicKey,
        signingKey: keys.privateKey,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
          new x509.SubjectAlternativeNameExtension(names.map((n) => ({ type: /^[0-9.]+$|:/.test(n) ? 'ip' as const : 'dns' as const, value: n }))),
          await x509.AuthorityKeyIdentifierExtension.create(ca.publicKey),
        ],
      });
      return { certPem: cert.toString('pem') + '\n', keyPem: pem(await webcrypto.subtle.exportKey('pkcs8', leafKeys.privateKey), 'PRIVATE KEY') };
    },
  };
}
