// Owns: the interception CA — creating it on first start, loading it, and refusing unsafe key files.
// The certificate library (@peculiar/x509 over WebCrypto) is used only inside src/tls/.
import 'reflect-metadata';
import { createPrivateKey, webcrypto, X509Certificate as NodeX509 } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import { TollgateError } from '../errors.ts';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export const EC_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const EC_SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;
const RSA_SIGNING = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as const;

export interface CertificateAuthority {
  certPem: string;
  cert: x509.X509Certificate;
  signingKey: CryptoKey;
  signingAlgorithm: typeof EC_SIGNING | typeof RSA_SIGNING;
  /** SHA-256 fingerprint, colon separated. */
  fingerprint: string;
  subject: string;
  notAfter: Date;
}

export function toPem(der: ArrayBuffer, label: string): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

export function randomSerial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return Buffer.from(bytes).toString('hex');
}

/** Creates a new CA (EC P-256, 10 years) and writes cert and key (0600). Refuses to overwrite. */
export async function createCertificateAuthority(certFile: string, keyFile: string, commonName = 'Tollgate Local CA'): Promise<void> {
  if (existsSync(certFile) || existsSync(keyFile)) {
    throw new TollgateError('TOLLGATE_ERR_CA', `a CA already exists at ${certFile}; remove it first to create a new one`);
  }
  const keys = (await webcrypto.subtle.generateKey(EC_ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${commonName}, O=Tollgate`,
    notBefore: new Date(now - 60 * 60 * 1000),
    notAfter: new Date(now + 10 * 365 * 24 * 60 * 60 * 1000),
    signingAlgorithm: EC_SIGNING,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const keyPem = toPem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
  mkdirSync(path.dirname(keyFile), { recursive: true, mode: 0o700 });
  mkdirSync(path.dirname(certFile), { recursive: true });
  writeFileSync(keyFile, keyPem, { mode: 0o600, flag: 'wx' });
  chmodSync(keyFile, 0o600);
  writeFileSync(certFile, cert.toString('pem') + '\n', { mode: 0o644, flag: 'wx' });
}

/** Loads the CA; refuses a key file that group or others can read. */
export async function loadCertificateAuthority(certFile: string, keyFile: string): Promise<CertificateAuthority> {
  let certPem: string;
  let keyPem: string;
  try {
    certPem = readFileSync(certFile, 'utf8');
    const mode = statSync(keyFile).mode;
    if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
      throw new TollgateError('TOLLGATE_ERR_STARTUP_UNSAFE', `the CA key ${keyFile} is readable by other users (mode ${(mode & 0o777).toString(8)}); run: chmod 600 ${keyFile}`);
    }
    keyPem = readFileSync(keyFile, 'utf8');
  } catch (err) {
    if (err instanceof TollgateError) throw err;
    throw new TollgateError('TOLLGATE_ERR_CA', `cannot read the CA (${certFile}, ${keyFile}): ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  try {
    const nodeKey = createPrivateKey(keyPem);
    const der = nodeKey.export({ format: 'der', type: 'pkcs8' });
    const type = nodeKey.asymmetricKeyType;
    let signingKey: CryptoKey;
    let signingAlgorithm: CertificateAuthority['signingAlgorithm'];
    if (type === 'ec') {
      signingKey = await webcrypto.subtle.importKey('pkcs8', der, EC_ALGORITHM, false, ['sign']);
      signingAlgorithm = EC_SIGNING;
    } else if (type === 'rsa') {
      signingKey = await webcrypto.subtle.importKey('pkcs8', der, RSA_SIGNING, false, ['sign']);
      signingAlgorithm = RSA_SIGNING;
    } else {
      throw new Error(`unsupported CA key type ${type ?? 'unknown'} (use EC P-256 or RSA)`);
    }
    const cert = new x509.X509Certificate(certPem);
    const nodeCert = new NodeX509(certPem);
    if (!nodeCert.checkPrivateKey(nodeKey)) throw new Error('the CA key does not belong to the CA certificate');
    if (!nodeCert.ca) throw new Error('the CA certificate is not marked as a CA (basicConstraints CA:TRUE)');
    return {
      certPem: cert.toString('pem') + '\n',
      cert,
      signingKey,
      signingAlgorithm,
      fingerprint: nodeCert.fingerprint256,
      subject: nodeCert.subject.replace(/\n/g, ', '),
      notAfter: new Date(nodeCert.validTo),
    };
  } catch (err) {
    throw new TollgateError('TOLLGATE_ERR_CA', `cannot load the CA from ${certFile}: ${(err as Error).message}`);
  }
}

/** Loads the CA, creating it first if neither file exists. */
export async function ensureCertificateAuthority(certFile: string, keyFile: string): Promise<{ ca: CertificateAuthority; created: boolean }> {
  let created = false;
  if (!existsSync(certFile) && !existsSync(keyFile)) {
    await createCertificateAuthority(certFile, keyFile);
    created = true;
  }
  return { ca: await loadCertificateAuthority(certFile, keyFile), created };
}
