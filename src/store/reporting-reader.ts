// Owns: the admin API's read access to tollgate.db. `createWorkerReportingReader` runs every query
// on the reporting thread (src/store/reporting-worker.ts), started on first use and unref'd, so a
// reporting query never blocks the proxy; `createInlineReportingReader` is its in-process twin
// (tests, CLI). A query that outlives `timeoutMs` is rejected (the thread is restarted).
import { Worker } from 'node:worker_threads';
import type { CostCell } from '../reporting/group-costs.ts';
import type { Database } from './database.ts';
import type { AuditFilter, AuditPage, AuditSummary } from './sqlite-audit-reader.ts';
import {
  exportLines, runReportingQuery, type ExportRequest, type FromReportingWorker, type ReportingQuery, type ReportingWorkerConfig, type ToReportingWorker,
} from './reporting-worker.ts';

export type { ExportRequest } from './reporting-worker.ts';

export interface ReportingReader {
  searchAudit(filter: AuditFilter): Promise<AuditPage>;
  summary(window: { since?: number; until?: number }): Promise<AuditSummary>;
  costCells(window: { since: number; until: number }): Promise<CostCell[]>;
  /**
   * Streams an export: `write` is awaited before the next chunk is produced (backpressure);
   * `signal` stops it (client gone). Resolves with the number of records.
   */
  exportRecords(request: ExportRequest, write: (text: string) => Promise<void>, signal: AbortSignal): Promise<number>;
  close(): Promise<void>;
}

/** A filter the store refused (bad status or cursor): the API answers 400. */
export class ReportingQueryError extends Error {}

const WORKER_URL = new URL('./reporting-worker.ts', import.meta.url);

function spawn(config: ReportingWorkerConfig): Worker {
  if (WORKER_URL.pathname.endsWith('.ts')) {
    const api = import.meta.resolve('tsx/esm/api');
    const code = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(WORKER_URL.href)}); })`;
    return new Worker(code, { eval: true, workerData: config, name: 'tollgate-reporting' });
  }
  return new Worker(WORKER_URL, { workerData: config, name: 'tollgate-reporting' });
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  onChunk?: (text: string) => void;
  timer: NodeJS.Timeout | undefined;
}

export function createWorkerReportingReader(opts: { file: string; busyTimeoutMs?: number; timeoutMs?: number }): ReportingReader {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  let worker: Worker | undefined;
  let nextId = 1;
  const pending = new Map<number, Pending>();
  let closed = false;

  const failAll = (err: Error) => {
    for (const [id, p] of pending) {
      clearTimeout(p.timer);
      pending.delete(id);
      p.reject(err);
    }
  };
  const ensure = (): Worker => {
    if (closed) throw new Error('the reporting reader is closed');
    if (worker) return worker;
    const w = spawn({ file: opts.file, busyTimeoutMs: opts.busyTimeoutMs ?? 5000 });
    w.unref();
    w.on('message', (m: FromReportingWorker) => {
      const p = pending.get(m.id);
      if (!p) return;
      if (m.t === 'chunk') {
        p.onChunk?.(m.text);
        return;
      }
      clearTimeout(p.timer);
      pending.delete(m.id);
      if (m.t === 'result') p.resolve(m.value);
      else if (m.t === 'end') p.resolve(m.count);
      else p.reject(m.range ? new ReportingQueryError(m.message) : new Error(m.message));
    });
    w.on('error', (err) => {
      if (worker === w) worker = undefined;
      failAll(err);
    });
    w.on('exit', () => {
      if (worker === w) worker = undefined;
      failAll(new Error('the reporting thread stopped'));
    });
    worker = w;
    return w;
  };
  const post = (m: ToReportingWorker) => ensure().postMessage(m);

  const query = (q: ReportingQuery): Promise<unknown> => new Promise((resolve, reject) => {
    const id = nextId++;
    const timer = setTimeout(() => {
      pending.delete(id);
      reject(new Error(`the reporting query took longer than ${timeoutMs} ms`));
      const w = worker;
      worker = undefined;
      void w?.terminate();
    }, timeoutMs);
    timer.unref();
    pending.set(id, { resolve, reject, timer });
    try {
      post({ t: 'query', id, query: q });
    } catch (err) {
      clearTimeout(timer);
      pending.delete(id);
      reject(err as Error);
    }
  });

  return {
    searchAudit: (filter) => query({ op: 'search', filter }) as Promise<AuditPage>,
    summary: (window) => query({ op: 'summary', window }) as Promise<AuditSummary>,
    costCells: (window) => query({ op: 'cells', window }) as Promise<CostCell[]>,
    exportRecords(request, write, signal) {
      return new Promise<number>((resolve, reject) => {
        const id = nextId++;
        let chain = Promise.resolve();
        const onAbort = () => {
          const p = pending.get(id);
          pending.delete(id);
          if (worker) worker.postMessage({ t: 'cancel', id } satisfies ToReportingWorker);
          p?.reject(new Error('export cancelled'));
        };
        signal.addEventListener('abort', onAbort, { once: true });
        const done = (f: () => void) => { signal.removeEventListener('abort', onAbort); f(); };
        pending.set(id, {
          timer: undefined,
          // the last chunk's write must finish before the export counts as done
          resolve: (n) => { void chain.then(() => done(() => resolve(n as number)), (e: Error) => done(() => reject(e))); },
          reject: (e) => done(() => reject(e)),
          onChunk: (text) => {
            chain = chain.then(() => write(text)).then(() => {
              if (pending.has(id)) worker?.postMessage({ t: 'more', id } satisfies ToReportingWorker);
            }, (err: Error) => {
              onAbort();
              throw err;
            });
            chain.catch(() => undefined);
          },
        });
        try {
          post({ t: 'export', id, request });
        } catch (err) {
          pending.delete(id);
          done(() => reject(err as Error));
        }
      });
    },
    async close() {
      closed = true;
      const w = worker;
      worker = undefined;
      failAll(new Error('the reporting reader is closed'));
      if (w) {
        w.postMessage({ t: 'close' } satisfies ToReportingWorker);
        await w.terminate();
      }
    },
  };
}

/** Same contract, on a connection of this thread (tests, CLI). */
export function createInlineReportingReader(db: Database): ReportingReader {
  const run = async (q: ReportingQuery) => {
    try {
      return runReportingQuery(db, q);
    } catch (err) {
      throw err instanceof RangeError ? new ReportingQueryError(err.message) : err;
    }
  };
  return {
    searchAudit: async (filter) => (await run({ op: 'search', filter })) as AuditPage,
    summary: async (window) => (await run({ op: 'summary', window })) as AuditSummary,
    costCells: async (window) => (await run({ op: 'cells', window })) as CostCell[],
    async exportRecords(request, write, signal) {
      let n = -1;
      if (request.format === 'jsonl') n = 0;
      for (const line of exportLines(db, request)) {
        if (signal.aborted) throw new Error('export cancelled');
        await write(`${line}\n`);
        n++;
      }
      return Math.max(0, n);
    },
    async close() {},
  };
}
