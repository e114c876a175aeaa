// Owns: the tamper-evident hash chain over audit records. Each chained record's hash is
// SHA-256(previous hash ‖ "\n" ‖ canonical serialisation of the record including its seq).
// PURE (node:crypto only).
import { hash } from 'node:crypto';
import { AUDIT_EVENT_COLUMNS, AUDIT_REQUEST_COLUMNS, type AuditChainName, type AuditEventRow, type AuditRequestRow } from './audit-record.ts';

/** The hash "before" the first record of a chain. */
export const GENESIS_HASH = '0'.repeat(64);
/** Bumped (with a new serialisation) if the columns ever change. */
export const CHAIN_VERSION = 'tollgate-audit-v1';

export interface ChainHead {
  seq: number;
  hash: string;
}

export function canonicalRequestRecord(seq: number, row: AuditRequestRow): string {
  return JSON.stringify([CHAIN_VERSION, 'requests', seq, ...AUDIT_REQUEST_COLUMNS.map((c) => row[c] ?? null)]);
}

/**
 * The same serialisation from a record's column values (AUDIT_REQUEST_COLUMNS or AUDIT_EVENT_COLUMNS
 * order, undefined already turned into null): what the writer thread hashes.
 */
export function canonicalValues(chain: AuditChainName, seq: number, values: readonly unknown[]): string {
  // Written out rather than spread into a new array (the writer hashes every row): the same text.
  const rest = JSON.stringify(values);
  return `["${CHAIN_VERSION}","${chain}",${JSON.stringify(seq)}${rest.length > 2 ? ',' : ''}${rest.slice(1)}`;
}

export function canonicalEventRecord(seq: number, row: AuditEventRow): string {
  return JSON.stringify([CHAIN_VERSION, 'events', seq, ...AUDIT_EVENT_COLUMNS.map((c) => row[c] ?? null)]);
}

export function canonicalRecord(chain: AuditChainName, seq: number, row: AuditRequestRow | AuditEventRow): string {
  return chain === 'requests' ? canonicalRequestRecord(seq, row as AuditRequestRow) : canonicalEventRecord(seq, row as AuditEventRow);
}

export function chainHash(previousHash: string, canonical: string): string {
  // One-shot hashing (node:crypto hash, Node ≥ 20.12): a fraction of createHash's cost per call.
  return hash('sha256', `${previousHash}\n${canonical}`, 'hex');
}

/** The link that appends a record given as its column values (see canonicalValues) after `head`. */
export function nextLinkValues(chain: AuditChainName, head: ChainHead, values: readonly unknown[]): ChainHead {
  const seq = head.seq + 1;
  return { seq, hash: chainHash(head.hash, canonicalValues(chain, seq, values)) };
}

/** The link that appends `row` after `head`. */
export function nextLink(chain: AuditChainName, head: ChainHead, row: AuditRequestRow | AuditEventRow): ChainHead {
  const seq = head.seq + 1;
  return { seq, hash: chainHash(head.hash, canonicalRecord(chain, seq, row)) };
}
