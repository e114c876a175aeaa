// Owns: finding the system's trusted roots and writing the bundle file (system roots + Tollgate's
// CA) that CURL_CA_BUNDLE, REQUESTS_CA_BUNDLE, SSL_CERT_FILE and friends point at.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../store/write-file-atomic.ts';
import { rootCertificates } from 'node:tls';
import { buildCaBundle } from './build-ca-bundle.ts';

/** Where distributions keep their bundle (Debian/Ubuntu/Alpine, Fedora/RHEL, openSUSE, macOS/BSD). */
export const SYSTEM_CA_FILES = [
  '/etc/ssl/certs/ca-certificates.crt',
  '/etc/pki/tls/certs/ca-bundle.crt',
  '/etc/ssl/ca-bundle.pem',
  '/etc/ssl/cert.pem',
];

/** The system roots as PEM; Node's bundled Mozilla roots when the system has no bundle file. */
export function readSystemCaPem(files: readonly string[] = SYSTEM_CA_FILES): string {
  for (const f of files) {
    try {
      if (existsSync(f)) return readFileSync(f, 'utf8');
    } catch {
      // next
    }
  }
  return rootCertificates.join('\n');
}

/** Writes the bundle atomically (mode 0644: it holds only public certificates) and returns its path. */
export function writeCaBundle(dest: string, tollgateCaPem: string, systemPem: string = readSystemCaPem()): string {
  mkdirSync(path.dirname(dest), { recursive: true });
  writeFileAtomic(dest, buildCaBundle(systemPem, tollgateCaPem), 0o644);
  return dest;
}
