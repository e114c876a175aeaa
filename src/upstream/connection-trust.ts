// Owns: the upstream trust pinned by org.yaml connections — reading each connection's `ca:` PEM
// file at start-up (an unreadable or non-PEM file is fatal) and again on every policy reload (a
// file that became unreadable keeps its last good certificates, logged), and choosing for a host
// the TLS context that trusts exactly its connection's CA: never the public roots, never
// `tls.upstream_ca`. The choice's key names the certificates, so a pool verified with one trust
// is never reused for another.
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { TollgateError } from '../errors.ts';
import type { OrgConfig } from '../policy/types.ts';
import { connectionsUsing, pemCertificateBlocks, pinnedCaEntries, pinnedCaFilesFor, type PinnedCaEntry } from './connection-ca.ts';
import type { UpstreamTrustChoice } from './connector.ts';

export interface ConnectionTrust {
  /** Reads the CA files of `org`; throws TOLLGATE_ERR_CONFIG_INVALID naming each bad file (start-up). */
  load(org: Pick<OrgConfig, 'projects'>): void;
  /** Re-reads after a policy reload; returns one message per file that could not be read (its last good CA stays). */
  reload(org: Pick<OrgConfig, 'projects'>): string[];
  /** The pinned trust for a host, or undefined when no connection with a `ca:` owns it. */
  choose(servername: string): UpstreamTrustChoice | undefined;
  /** The CA files in force (for logs). */
  files(): string[];
}

interface LoadedCa {
  pems: string[];
  digest: string;
}

/** Reads one CA file: its certificate blocks, each parsed, or a problem in plain words. */
export function readCaFile(file: string, read: (file: string) => string = (f) => readFileSync(f, 'utf8')): { ok: true; ca: LoadedCa } | { ok: false; problem: string } {
  let text: string;
  try {
    text = read(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { ok: false, problem: code === 'ENOENT' ? 'file not found' : `cannot read the file (${code ?? String(err)})` };
  }
  const blocks = pemCertificateBlocks(text);
  if (!blocks.ok) return { ok: false, problem: blocks.problem };
  for (const [i, b] of blocks.blocks.entries()) {
    try {
      new X509Certificate(b);
    } catch (err) {
      return { ok: false, problem: `certificate ${i + 1} cannot be parsed (${(err as Error).message})` };
    }
  }
  const digest = createHash('sha256').update(blocks.blocks.join('')).digest('hex').slice(0, 32);
  return { ok: true, ca: { pems: blocks.blocks, digest } };
}

export function createConnectionTrust(opts: { orgDir: string; read?: (file: string) => string }): ConnectionTrust {
  let entries: PinnedCaEntry[] = [];
  let loaded = new Map<string, LoadedCa>();
  const contexts = new Map<string, tls.SecureContext>();
  const resolve = (ca: string) => path.resolve(opts.orgDir, ca);
  const shown = (file: string) => {
    const rel = path.relative(opts.orgDir, file);
    return rel === '' || rel.startsWith('..') ? file : rel;
  };

  /** Reads every file of `org`; `previous` supplies the last good CA of a file that fails now. */
  function readAll(org: Pick<OrgConfig, 'projects'>, previous: Map<string, LoadedCa>) {
    const next = pinnedCaEntries(org, resolve);
    const cas = new Map<string, LoadedCa>();
    const problems: string[] = [];
    for (const file of new Set(next.map((e) => e.caFile))) {
      const r = readCaFile(file, opts.read);
      if (r.ok) { cas.set(file, r.ca); continue; }
      problems.push(`${connectionsUsing(next, file).map((l) => `connection ${l}`).join(', ')}: ca: ${shown(file)}: ${r.problem}`);
      const old = previous.get(file);
      if (old) cas.set(file, old);
    }
    return { next, cas, problems };
  }

  function swap(next: PinnedCaEntry[], cas: Map<string, LoadedCa>) {
    entries = next;
    loaded = cas;
    contexts.clear();
  }

  return {
    load(org) {
      const r = readAll(org, new Map());
      if (r.problems.length > 0) {
        throw new TollgateError('TOLLGATE_ERR_CONFIG_INVALID', `org.yaml: a connection's CA file cannot be used: ${r.problems.join('; ')}`);
      }
      swap(r.next, r.cas);
    },
    reload(org) {
      const r = readAll(org, loaded);
      swap(r.next, r.cas);
      return r.problems;
    },
    choose(servername) {
      const files = pinnedCaFilesFor(entries, servername);
      if (files.length === 0) return undefined;
      const cas: LoadedCa[] = [];
      for (const f of files) {
        const ca = loaded.get(f);
        // Never loaded (it failed on the reload that introduced it): fail closed, not the public roots.
        if (!ca) return { key: 'pinned-unavailable', context: undefined, failure: `the CA file that verifies ${servername} (org.yaml connection ca:) is not loaded` };
        cas.push(ca);
      }
      const key = `pinned:${cas.map((c) => c.digest).join('+')}`;
      let context = contexts.get(key);
      if (!context) {
        context = tls.createSecureContext({ ca: cas.flatMap((c) => c.pems), minVersion: 'TLSv1.2' });
        contexts.set(key, context);
      }
      return { key, context };
    },
    files: () => [...loaded.keys()],
  };
}
