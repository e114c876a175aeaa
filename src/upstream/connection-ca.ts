// Owns: which CA files pin upstream trust for a host — the `ca:` of every org.yaml connection one
// of whose hosts matches it — and how a CA file's text is checked to be PEM certificates. PURE: the
// caller reads the files and builds the TLS contexts (connection-trust.ts).
import { parseRequestIp } from '../policy/match/address.ts';
import { hostPatternMatches, parseHostPattern } from '../policy/match/host-pattern.ts';
import type { HostPattern, OrgConfig } from '../policy/types.ts';

export interface PinnedCaEntry {
  /** `project/connection`, for messages. */
  readonly label: string;
  /** The CA file, resolved by the caller (relative to org.yaml). */
  readonly caFile: string;
  readonly hosts: readonly HostPattern[];
}

/** One entry per connection that names a `ca:`. `resolve` turns the written path into a file path. */
export function pinnedCaEntries(org: Pick<OrgConfig, 'projects'>, resolve: (ca: string) => string): PinnedCaEntry[] {
  const out: PinnedCaEntry[] = [];
  for (const project of org.projects.values()) {
    for (const c of project.connections) {
      if (c.ca === undefined || c.ca === '') continue;
      const hosts: HostPattern[] = [];
      for (const h of c.hosts) {
        const r = parseHostPattern(h);
        if (r.ok) hosts.push(r.pattern);
      }
      out.push({ label: `${project.key}/${c.name}`, caFile: resolve(c.ca), hosts });
    }
  }
  return out;
}

/**
 * The CA files that pin trust for `host` (normalised, as policy sees it), sorted and unique; empty
 * when no connection with a `ca:` owns the host. When several do, the host is trusted with their
 * CAs together — never with the public roots.
 */
export function pinnedCaFilesFor(entries: readonly PinnedCaEntry[], host: string): string[] {
  if (entries.length === 0) return [];
  const bare = host.replace(/^\[|\]$/g, '');
  const ip = parseRequestIp(bare);
  const files = new Set<string>();
  for (const e of entries) {
    if (e.hosts.some((p) => hostPatternMatches(p, bare, ip))) files.add(e.caFile);
  }
  return [...files].sort();
}

/** The connections (labels) that pin trust with `caFile`. */
export function connectionsUsing(entries: readonly PinnedCaEntry[], caFile: string): string[] {
  return entries.filter((e) => e.caFile === caFile).map((e) => e.label);
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+?-----END CERTIFICATE-----/g;

/**
 * The certificate blocks of a PEM file (text outside them, such as comments, is allowed), or a
 * problem: no certificate block, or a private key in the file (a CA file is public; a key does
 * not belong next to it).
 */
export function pemCertificateBlocks(text: string): { ok: true; blocks: string[] } | { ok: false; problem: string } {
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) return { ok: false, problem: 'holds a private key; a connection CA file holds only the CA certificate' };
  const blocks = text.match(PEM_BLOCK) ?? [];
  if (blocks.length === 0) return { ok: false, problem: 'not a PEM certificate file (no -----BEGIN CERTIFICATE----- block)' };
  return { ok: true, blocks: blocks.map((b) => `${b.replace(/\r\n/g, '\n')}\n`) };
}
