// Audit writer throughput and commit latency (not a timed test): `node --import tsx bench/audit.ts [--rows N]`.
// Drives the real writer thread on a temp tollgate.db the way the gateway does — a decision record
// awaited per request, then its completion — and reports rows/s, the decision commit latency
// (p50/p99) with 1 and 64 requests in flight, and the raw writer rate without the thread hop.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AuditRequestRow } from '../src/audit/audit-record.ts';
import { createSqliteAuditSink } from '../src/audit/sqlite-audit-sink.ts';
import { createLogger } from '../src/observability/logger.ts';
import { createAuditWriter } from '../src/store/audit-writer.ts';
import { openDatabase } from '../src/store/database.ts';

const argRows = process.argv.indexOf('--rows');
const ROWS = argRows > 0 ? Number(process.argv[argRows + 1]) : 20_000;

function row(i: number, done: boolean): AuditRequestRow {
  const t = Date.now();
  return {
    request_id: `bench-${i}`, time: t, ended_at: done ? t + 3 : null, principal_kind: 'agent', subject: 'bench-bot', token_id: 'tok_bench',
    agent: 'bench-bot', team: 'bench', project: null, kind: 'request', via: 'intercepted', method: 'GET', scheme: 'https',
    host: 'bench.test', port: 443, path: `/1k/${i}`, decision: 'allow', rule: 'policies/bench.yaml:3', reason: 'allowed',
    status: done ? 200 : null, duration_ms: done ? 3 : null, upstream_ms: done ? 2 : null, bytes_in: 0, bytes_out: done ? 1024 : 0,
    address: '127.0.0.1', error: null, provider: null, model: null, input_tokens: null, output_tokens: null, cache_read_tokens: null,
    cache_write_tokens: null, cost_micros: null, estimated: null,
  };
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
};

const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-bench-audit-'));
try {
  const file = path.join(dir, 'tollgate.db');
  openDatabase(file).close();
  const sink = createSqliteAuditSink({ file, logger: createLogger({ level: 'warn' }) });
  await sink.ready;
  let next = 0;
  const request = async (lat: number[]) => {
    const i = next++;
    const t0 = performance.now();
    await sink.commitDecision(row(i, false));
    lat.push((performance.now() - t0) * 1000);
    sink.complete(row(i, true));
  };
  for (const inflight of [1, 64]) {
    const lat: number[] = [];
    const n = inflight === 1 ? Math.min(ROWS, 2000) : ROWS;
    const start = performance.now();
    let issued = 0;
    await Promise.all(Array.from({ length: inflight }, async () => {
      while (issued < n) { issued++; await request(lat); }
    }));
    await sink.flush();
    const secs = (performance.now() - start) / 1000;
    console.log(`in flight ${String(inflight).padStart(2)}: ${n} requests (${n * 2} row writes) in ${secs.toFixed(2)} s = ${Math.round(n / secs)} requests/s, ${Math.round((2 * n) / secs)} row writes/s; decision commit p50 ${Math.round(pct(lat, 50))} µs, p99 ${Math.round(pct(lat, 99))} µs`);
  }
  await sink.close();
  const db = openDatabase(file);
  const w = createAuditWriter(db);
  const start = performance.now();
  for (let i = 0; i < ROWS; i += 1000) {
    w.applyBatch(Array.from({ length: Math.min(1000, ROWS - i) }, (_, j) => ({ op: 'complete' as const, id: j, row: { ...row(1_000_000 + i + j, true) } })));
  }
  const secs = (performance.now() - start) / 1000;
  console.log(`writer alone (same thread, batches of 1000 completed rows): ${Math.round(ROWS / secs)} rows/s`);
  db.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
