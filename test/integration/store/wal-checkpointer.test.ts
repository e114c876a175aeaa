// The WAL checkpointer thread (src/store/wal-checkpointer-worker.ts), started as the audit sink
// starts it, on a real tollgate.db: while another connection holds the write lock its connection
// cannot open (opening migrates in BEGIN IMMEDIATE), so each tick tries again; once the lock is
// released it opens, keeps that connection, and its PASSIVE checkpoint moves the WAL into the
// database file.
import { chmodSync, statSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import t from 'tap';
import { openDatabase } from '../../../src/store/database.ts';
import type { CheckpointerConfig } from '../../../src/store/wal-checkpointer-worker.ts';
import { sleep, until } from '../../helpers/cli-process.ts';

const WORKER_URL = new URL('../../../src/store/wal-checkpointer-worker.ts', import.meta.url);

/** The checkpointer in a worker thread (through tsx, as src/audit/sqlite-audit-sink.ts starts it); resolves once its module has run. */
async function startCheckpointer(config: CheckpointerConfig): Promise<Worker> {
  const api = import.meta.resolve('tsx/esm/api');
  const code = `const { parentPort } = require('node:worker_threads');
import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(WORKER_URL.href)}); }).then(() => parentPort.postMessage('started'));`;
  const worker = new Worker(code, { eval: true, workerData: config });
  await new Promise<void>((resolve, reject) => {
    worker.once('message', () => resolve());
    worker.once('error', reject);
  });
  return worker;
}

t.test('a held write lock: the connection opens on a later tick, then the WAL is checkpointed', async (t) => {
  const file = path.join(t.testdir({}), 'tollgate.db');
  const db = openDatabase(file);
  t.teardown(() => db.close());
  db.pragma('wal_autocheckpoint = 0'); // only the checkpointer moves the WAL into the file
  db.exec('CREATE TABLE filler (b BLOB)');
  const insert = db.prepare('INSERT INTO filler (b) VALUES (randomblob(4000))');
  db.transaction(() => { for (let i = 0; i < 256; i++) insert.run(); })();
  const dbSize = () => statSync(file).size;
  const before = dbSize();
  t.ok(statSync(`${file}-wal`).size > 1_000_000, 'about 1 MB waits in the WAL');

  // Each attempt to open sets the file's mode to 0600 (openDatabase), so a mode set back to 0644
  // turning 0600 again shows another attempt has begun.
  const attempted = () => (statSync(file).mode & 0o777) === 0o600;
  chmodSync(file, 0o644);
  db.exec('BEGIN IMMEDIATE');
  const worker = await startCheckpointer({ file, intervalMs: 10, openBusyTimeoutMs: 20, walCapBytes: 64 * 1024 * 1024 });
  t.teardown(() => worker.terminate());
  await until('a first attempt to open', attempted, 5000);
  chmodSync(file, 0o644);
  await until('a second attempt: the first could not open', attempted, 5000);
  t.equal(dbSize(), before, 'nothing is checkpointed while the connection cannot open');

  db.exec('COMMIT');
  await until('the WAL checkpointed into the database file', () => dbSize() > before + 1_000_000, 5000);
  chmodSync(file, 0o644);
  await sleep(100); // ten ticks
  t.notOk(attempted(), 'once open, the connection is kept: no more attempts to open');
  t.equal((db.prepare('SELECT count(*) AS n FROM filler').get() as { n: number }).n, 256);
});
