// Audit writer throughput and commit latency: `node --import tsx bench/audit.ts [--rows N]`, and the
// writer-capacity half of bench scenario 11 (bench/audit-scenario.ts).
// Drives the real writer thread (the gateway's SqliteAuditSink) on a temp tollgate.db the way the
// gateway does — a decision record awaited per request, then its completion — and reports rows/s
// (one row per request: inserted open, then completed and chained), the decision commit latency
// (p50/p99) with 1 and 64 requests in flight, and the raw writer rate without the thread hop.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AuditRequestRow } from '../src/audit/audit-record.ts';
import { createSqliteAuditSink } from '../src/audit/sqlite-audit-sink.ts';
import { createLogger } from '../src/observability/logger.ts';
import { createAuditWriter } from '../src/store/audit-writer.ts';
import { openDatabase } from '../src/store/database.ts';
import { verifyAuditStore } from '../src/store/sqlite-audit-reader.ts';

function row(i: number, done: boolean): AuditRequestRow {
  const t = Date.now();
  return {
    request_id: randomUUID(), time: t, ended_at: done ? t + 3 : null, principal_kind: 'agent', subject: 'bench-bot', token_id: 'tok_bench',
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

export interface WriterRun {
  inflight: number;
  requests: number;
  seconds: number;
  /** Rows per second: each request's row inserted open (committed, acknowledged) and then completed. */
  rowsPerSec: number;
  /** Statements per second (open + completion = 2 per row). */
  writesPerSec: number;
  commitP50Us: number;
  commitP99Us: number;
}

export interface WriterResults {
  runs: WriterRun[];
  /** Completed rows per second applied straight to the writer (same thread, batches of 1000). */
  writerAloneRowsPerSec: number;
  chainVerified: boolean;
}

/** The sink with `inflight` requests at a time for `requests` requests (1 in flight: at most 2,000). */
export async function measureAuditWriter(o: { requests: number; inflight: number[] }): Promise<WriterResults> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-bench-audit-'));
  try {
    const file = path.join(dir, 'tollgate.db');
    openDatabase(file).close();
    const sink = createSqliteAuditSink({ file, logger: createLogger({ level: 'warn' }) });
    await sink.ready;
    let next = 0;
    const request = async (lat: number[]) => {
      const i = next++;
      const open = row(i, false);
      const t0 = performance.now();
      await sink.commitDecision(open);
      lat.push((performance.now() - t0) * 1000);
      sink.complete({ ...row(i, true), request_id: open.request_id, time: open.time });
    };
    const runs: WriterRun[] = [];
    for (const inflight of o.inflight) {
      const lat: number[] = [];
      const n = inflight === 1 ? Math.min(o.requests, 2000) : o.requests;
      const start = performance.now();
      let issued = 0;
      await Promise.all(Array.from({ length: inflight }, async () => {
        while (issued < n) { issued++; await request(lat); }
      }));
      await sink.flush();
      const seconds = (performance.now() - start) / 1000;
      runs.push({ inflight, requests: n, seconds, rowsPerSec: n / seconds, writesPerSec: (2 * n) / seconds, commitP50Us: pct(lat, 50), commitP99Us: pct(lat, 99) });
    }
    await sink.close();
    const db = openDatabase(file);
    const chainVerified = verifyAuditStore(db).ok;
    const w = createAuditWriter(db);
    const start = performance.now();
    for (let i = 0; i < o.requests; i += 1000) {
      w.applyBatch(Array.from({ length: Math.min(1000, o.requests - i) }, (_, j) => ({ op: 'complete' as const, id: j, row: row(1_000_000 + i + j, true) })));
    }
    const writerAloneRowsPerSec = o.requests / ((performance.now() - start) / 1000);
    db.close();
    return { runs, writerAloneRowsPerSec, chainVerified };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const argRows = process.argv.indexOf('--rows');
  const rows = argRows > 0 ? Number(process.argv[argRows + 1]) : 20_000;
  const r = await measureAuditWriter({ requests: rows, inflight: [1, 64] });
  for (const x of r.runs) {
    console.log(`in flight ${String(x.inflight).padStart(2)}: ${x.requests} rows (open + complete) in ${x.seconds.toFixed(2)} s = ${Math.round(x.rowsPerSec)} rows/s, ${Math.round(x.writesPerSec)} writes/s; decision commit p50 ${Math.round(x.commitP50Us)} µs, p99 ${Math.round(x.commitP99Us)} µs`);
  }
  console.log(`writer alone (same thread, batches of 1000 completed rows): ${Math.round(r.writerAloneRowsPerSec)} rows/s; chain verifies: ${r.chainVerified}`);
}
