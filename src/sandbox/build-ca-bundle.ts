// Owns: the CA bundle handed to sandboxed and desktop clients: the system roots followed by
// Tollgate's CA, each PEM block once. PURE: the caller reads the files.

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Every certificate block of a PEM text, normalised to `\n` line ends. */
export function pemCertificates(text: string): string[] {
  return (text.replace(/\r\n/g, '\n').match(PEM_BLOCK) ?? []).map((b) => b.trim());
}

/**
 * The bundle text. Throws when Tollgate's CA text holds no certificate: a bundle without it would
 * make every intercepted connection fail with an unhelpful TLS error.
 */
export function buildCaBundle(systemPem: string, tollgateCaPem: string): string {
  const ours = pemCertificates(tollgateCaPem);
  if (ours.length === 0) throw new Error('the Tollgate CA file holds no PEM certificate');
  const seen = new Set<string>();
  const out: string[] = [];
  for (const block of [...pemCertificates(systemPem), ...ours]) {
    if (seen.has(block)) continue;
    seen.add(block);
    out.push(block);
  }
  return `${out.join('\n')}\n`;
}
