// Owns: the reporting thread — its own query-only connection to tollgate.db, on which the admin
// API's reads run (audit search, summary, cost cells, exports), so that a long aggregate over a
// large trail never blocks the proxy's event loop. Exports stream in chunks, each sent only after
// the previous one was written to the client (backpressure), from their own connection and one
// SELECT (a consistent snapshot). Started by src/store/reporting-reader.ts.
import { parentPort, workerData } from 'node:worker_threads';
import { eventCsvHeader, eventCsvLine, eventJsonLine, requestCsvHeader, requestCsvLine, requestJsonLine } from '../audit/export-format.ts';
import { costCells } from './sqlite-cost-reader.ts';
import { auditSummary, iterateAuditEvents, iterateAuditRows, searchAuditRows, type AuditFilter } from './sqlite-audit-reader.ts';
import { openDatabase, type Database } from './database.ts';

export interface ReportingWorkerConfig {
  file: string;
  busyTimeoutMs: number;
}

export interface ExportRequest {
  format: 'jsonl' | 'csv';
  records: 'requests' | 'events';
  since?: number;
  until?: number;
}

export type ReportingQuery =
  | { op: 'search'; filter: AuditFilter }
  | { op: 'summary'; window: { since?: number; until?: number } }
  | { op: 'cells'; window: { since: number; until: number } };

export type ToReportingWorker =
  | { t: 'query'; id: number; query: ReportingQuery }
  | { t: 'export'; id: number; request: ExportRequest }
  | { t: 'more'; id: number }
  | { t: 'cancel'; id: number }
  | { t: 'close' };

export type FromReportingWorker =
  | { t: 'result'; id: number; value: unknown }
  | { t: 'error'; id: number; message: string; range: boolean }
  | { t: 'chunk'; id: number; text: string }
  | { t: 'end'; id: number; count: number };

const CHUNK_CHARS = 256 * 1024;

function open(config: ReportingWorkerConfig): Database {
  const db = openDatabase(config.file, { busyTimeoutMs: config.busyTimeoutMs, mustExist: true });
  db.pragma('query_only = ON');
  return db;
}

/** Runs one query (also used in-process by the CLI-side twin). RangeError: a bad filter (400). */
export function runReportingQuery(db: Database, q: ReportingQuery): unknown {
  switch (q.op) {
    case 'search': return searchAuditRows(db, q.filter);
    case 'summary': return auditSummary(db, q.window);
    case 'cells': return costCells(db, q.window);
  }
}

/** The lines of an export, header first (CSV). */
export function* exportLines(db: Database, r: ExportRequest): Generator<string> {
  const w = { ...(r.since !== undefined ? { since: r.since } : {}), ...(r.until !== undefined ? { until: r.until } : {}) };
  if (r.records === 'events') {
    if (r.format === 'csv') yield eventCsvHeader();
    for (const e of iterateAuditEvents(db, w)) yield r.format === 'csv' ? eventCsvLine(e) : eventJsonLine(e);
  } else {
    if (r.format === 'csv') yield requestCsvHeader();
    for (const row of iterateAuditRows(db, w)) yield r.format === 'csv' ? requestCsvLine(row) : requestJsonLine(row);
  }
}

if (parentPort) {
  const port = parentPort;
  const config = workerData as ReportingWorkerConfig;
  let db: Database | undefined;
  const send = (m: FromReportingWorker) => port.postMessage(m);
  const fail = (id: number, err: unknown) => send({ t: 'error', id, message: err instanceof Error ? err.message : String(err), range: err instanceof RangeError });
  /** Exports waiting for the client to take the previous chunk. */
  const waiting = new Map<number, (go: boolean) => void>();

  const runExport = async (id: number, request: ExportRequest) => {
    const own = open(config);
    let count = 0;
    try {
      const lines = exportLines(own, request);
      let buf = '';
      let header = request.format === 'csv';
      for (const line of lines) {
        buf += `${line}\n`;
        if (header) header = false;
        else count++;
        if (buf.length >= CHUNK_CHARS) {
          send({ t: 'chunk', id, text: buf });
          buf = '';
          const go = await new Promise<boolean>((resolve) => waiting.set(id, resolve));
          if (!go) {
            lines.return(undefined);
            return;
          }
        }
      }
      if (buf) send({ t: 'chunk', id, text: buf });
      send({ t: 'end', id, count });
    } catch (err) {
      fail(id, err);
    } finally {
      waiting.delete(id);
      own.close();
    }
  };

  port.on('message', (m: ToReportingWorker) => {
    switch (m.t) {
      case 'query':
        try {
          db ??= open(config);
          send({ t: 'result', id: m.id, value: runReportingQuery(db, m.query) });
        } catch (err) {
          fail(m.id, err);
        }
        return;
      case 'export':
        void runExport(m.id, m.request);
        return;
      case 'more':
      case 'cancel': {
        const resume = waiting.get(m.id);
        waiting.delete(m.id);
        resume?.(m.t === 'more');
        return;
      }
      case 'close':
        for (const resume of waiting.values()) resume(false);
        waiting.clear();
        db?.close();
        db = undefined;
        port.close();
        return;
    }
  });
}
