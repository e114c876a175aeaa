// Owns: checking one audit hash chain from its anchor to its recorded head and naming the first
// record where it breaks (edited, removed, re-ordered or truncated). PURE: rows come in as data.
import type { AuditChainName, AuditEventRow, AuditRequestRow } from './audit-record.ts';
import { canonicalRecord, chainHash, type ChainHead } from './hash-chain.ts';

export interface ChainedRecord<R> {
  seq: number;
  hash: string;
  /** How people name the record: a request id, or `event #<id>`. */
  label: string;
  row: R;
}

export type ChainProblem = 'hash_mismatch' | 'missing_records' | 'out_of_order' | 'truncated' | 'head_mismatch';

export interface ChainBreak {
  seq: number;
  label: string;
  problem: ChainProblem;
  message: string;
}

export interface ChainVerification {
  chain: AuditChainName;
  ok: boolean;
  /** Records checked. */
  checked: number;
  anchor: ChainHead;
  /** The head recorded in the store. */
  head: ChainHead;
  /** The first break, if any (later breaks are counted, not listed). */
  firstBroken: ChainBreak | undefined;
  breaks: number;
}

/**
 * Walks `records` (ascending seq) starting from `anchor` (the hash before the first kept record:
 * genesis, or the last pruned record) and compares the end with the recorded `head`.
 * After a break it continues from the stored hash so that one edit is reported once.
 */
export function verifyChain<R extends AuditRequestRow | AuditEventRow>(
  chain: AuditChainName,
  anchor: ChainHead,
  records: Iterable<ChainedRecord<R>>,
  head: ChainHead,
): ChainVerification {
  let prev: ChainHead = anchor;
  let checked = 0;
  let breaks = 0;
  let firstBroken: ChainBreak | undefined;
  const fail = (b: ChainBreak) => {
    breaks++;
    firstBroken ??= b;
  };
  for (const r of records) {
    checked++;
    if (r.seq <= prev.seq) {
      fail({ seq: r.seq, label: r.label, problem: 'out_of_order', message: `${chain} record seq ${r.seq} (${r.label}) comes after seq ${prev.seq}: the chain was re-ordered or duplicated` });
    } else if (r.seq !== prev.seq + 1) {
      fail({
        seq: r.seq, label: r.label, problem: 'missing_records',
        message: `${chain} records seq ${prev.seq + 1}..${r.seq - 1} are missing before seq ${r.seq} (${r.label}): rows were deleted outside retention pruning`,
      });
    } else {
      const expected = chainHash(prev.hash, canonicalRecord(chain, r.seq, r.row));
      if (expected !== r.hash) {
        fail({ seq: r.seq, label: r.label, problem: 'hash_mismatch', message: `${chain} record seq ${r.seq} (${r.label}) does not match its hash: it, or the hash of the record before it, was changed` });
      }
    }
    prev = { seq: r.seq, hash: r.hash };
  }
  if (prev.seq < head.seq) {
    fail({ seq: prev.seq + 1, label: `seq ${prev.seq + 1}`, problem: 'truncated', message: `${chain} records seq ${prev.seq + 1}..${head.seq} are missing at the end (the recorded head is seq ${head.seq})` });
  } else if (prev.seq > head.seq || prev.hash !== head.hash) {
    fail({ seq: prev.seq, label: `seq ${prev.seq}`, problem: 'head_mismatch', message: `${chain} recorded head (seq ${head.seq}) does not match the last record (seq ${prev.seq})` });
  }
  return { chain, ok: breaks === 0, checked, anchor, head, firstBroken, breaks };
}
