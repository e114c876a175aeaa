// The pure hash chain and its verifier: append, then tamper (edit, delete, reorder, truncate, re-hash).
import t from 'tap';
import type { AuditRequestRow } from '../../../src/audit/audit-record.ts';
import { canonicalRequestRecord, chainHash, GENESIS_HASH, nextLink, type ChainHead } from '../../../src/audit/hash-chain.ts';
import { verifyChain, type ChainedRecord } from '../../../src/audit/verify-chain.ts';
import { row } from './fixtures.ts';

function build(n: number, anchor: ChainHead = { seq: 0, hash: GENESIS_HASH }): { records: Array<ChainedRecord<AuditRequestRow>>; head: ChainHead } {
  let head = anchor;
  const records: Array<ChainedRecord<AuditRequestRow>> = [];
  for (let i = 0; i < n; i++) {
    const r = row({ request_id: `r-${i + 1}`, time: 1000 + i, status: 200 + (i % 3) });
    head = nextLink('requests', head, r);
    records.push({ seq: head.seq, hash: head.hash, label: `request ${r.request_id}`, row: r });
  }
  return { records, head };
}

t.test('hash = SHA-256(previous ‖ \\n ‖ canonical record with its seq); nulls and key order are fixed', async (t) => {
  const r = row();
  const canon = canonicalRequestRecord(1, r);
  t.match(canon, /^\["tollgate-audit-v1","requests",1,"r-1",/);
  t.equal(canonicalRequestRecord(1, { ...r }), canon, 'same row, same text');
  t.not(canonicalRequestRecord(2, r), canon, 'the seq is part of the record');
  t.equal(nextLink('requests', { seq: 0, hash: GENESIS_HASH }, r).hash, chainHash(GENESIS_HASH, canon));
  t.match(chainHash(GENESIS_HASH, canon), /^[0-9a-f]{64}$/);
});

t.test('an intact chain verifies', async (t) => {
  const { records, head } = build(5);
  const v = verifyChain('requests', { seq: 0, hash: GENESIS_HASH }, records, head);
  t.match(v, { ok: true, checked: 5, breaks: 0, firstBroken: undefined });
});

t.test('tampering is found and the first broken record is named', async (t) => {
  const anchor = { seq: 0, hash: GENESIS_HASH };
  const cases: Array<[string, (rs: Array<ChainedRecord<AuditRequestRow>>) => Array<ChainedRecord<AuditRequestRow>>, { seq: number; label: RegExp | string; problem: string }]> = [
    ['an edited status', (rs) => rs.map((r) => (r.seq === 3 ? { ...r, row: { ...r.row, status: 500 } } : r)), { seq: 3, label: 'request r-3', problem: 'hash_mismatch' }],
    ['an edited row with its hash recomputed', (rs) => rs.map((r, i) => {
      if (r.seq !== 2) return r;
      const edited = { ...r.row, decision: 'deny' as const };
      return { ...r, row: edited, hash: chainHash(rs[i - 1]!.hash, canonicalRequestRecord(2, edited)) };
    }), { seq: 3, label: 'request r-3', problem: 'hash_mismatch' }],
    ['a deleted row', (rs) => rs.filter((r) => r.seq !== 2), { seq: 3, label: 'request r-3', problem: 'missing_records' }],
    ['two rows swapped', (rs) => [rs[0]!, rs[2]!, rs[1]!, rs[3]!, rs[4]!], { seq: 3, label: 'request r-3', problem: 'missing_records' }],
    ['the tail cut off', (rs) => rs.slice(0, 3), { seq: 4, label: 'seq 4', problem: 'truncated' }],
  ];
  for (const [name, tamper, want] of cases) {
    const { records, head } = build(5);
    const v = verifyChain('requests', anchor, tamper(records), head);
    t.equal(v.ok, false, name);
    t.match(v.firstBroken, want, name);
  }
});

t.test('after pruning, the chain verifies from the anchor (the last pruned hash)', async (t) => {
  const { records, head } = build(6);
  const anchorRecord = records[2]!;
  const kept = records.slice(3);
  t.match(verifyChain('requests', { seq: anchorRecord.seq, hash: anchorRecord.hash }, kept, head), { ok: true, checked: 3 });
  t.match(verifyChain('requests', { seq: 0, hash: GENESIS_HASH }, kept, head), { ok: false, firstBroken: { problem: 'missing_records', seq: 4 } }, 'without the anchor it is a gap');
  t.match(verifyChain('requests', { seq: 3, hash: '1'.repeat(64) }, kept, head), { ok: false, firstBroken: { problem: 'hash_mismatch', seq: 4 } }, 'a forged anchor breaks the first kept record');
});

t.test('an empty chain verifies against its anchor', async (t) => {
  t.match(verifyChain('events', { seq: 0, hash: GENESIS_HASH }, [], { seq: 0, hash: GENESIS_HASH }), { ok: true, checked: 0 });
  t.match(verifyChain('events', { seq: 0, hash: GENESIS_HASH }, [], { seq: 2, hash: 'x'.repeat(64) }), { ok: false, firstBroken: { problem: 'truncated' } });
});
