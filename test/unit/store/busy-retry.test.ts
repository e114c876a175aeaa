// A BEGIN IMMEDIATE that SQLite refuses with SQLITE_BUSY before the connection's busy timeout has
// passed is tried again (busy-retry.ts): another thread holds the write lock for a while, and this
// connection's own SQLite busy handler is switched off so that only the retry can wait it out.
import { Worker } from 'node:worker_threads';
import t from 'tap';
import { isBusyError, retryBusyBegin, setBusyBudget } from '../../../src/store/busy-retry.ts';
import { inImmediateTransaction, openDatabase } from '../../../src/store/database.ts';
import { tempDb } from '../../helpers/temp-db.ts';

/** Another thread takes the write lock (BEGIN IMMEDIATE) and releases it after `holdMs`. */
async function holdWriteLock(file: string, holdMs: number): Promise<{ released: Promise<number> }> {
  const w = new Worker(`
    const { parentPort, workerData } = require('node:worker_threads');
    const Database = require(workerData.lib);
    const db = new Database(workerData.file);
    db.exec('BEGIN IMMEDIATE');
    parentPort.postMessage('locked');
    setTimeout(() => { db.exec('COMMIT'); db.close(); parentPort.postMessage(Date.now()); }, workerData.holdMs);
  `, { eval: true, workerData: { file, holdMs, lib: require.resolve('better-sqlite3') } });
  const messages: unknown[] = [];
  let wake: (() => void) | undefined;
  w.on('message', (m) => { messages.push(m); wake?.(); });
  const next = async () => {
    while (messages.length === 0) await new Promise<void>((r) => { wake = r; });
    return messages.shift();
  };
  await next(); // 'locked'
  return { released: (async () => { const at = (await next()) as number; await w.terminate(); return at; })() };
}

const require = (await import('node:module')).createRequire(import.meta.url);

t.test('a BEGIN refused while another thread holds the lock is retried until it is released', async (t) => {
  const { file } = tempDb(t);
  const db = openDatabase(file, { busyTimeoutMs: 3000 });
  t.teardown(() => db.close());
  db.pragma('busy_timeout = 0'); // SQLite itself gives up at once: only the retry waits
  db.exec('CREATE TABLE IF NOT EXISTS t (v INTEGER)');
  const lock = await holdWriteLock(file, 150);
  let runs = 0;
  const t0 = Date.now();
  const out = inImmediateTransaction(db, () => {
    runs++;
    db.prepare('INSERT INTO t (v) VALUES (1)').run();
    return 'done';
  });
  const took = Date.now() - t0;
  const releasedAt = await lock.released;
  t.equal(out, 'done');
  t.equal(runs, 1, 'the transaction body ran exactly once');
  t.ok(took >= 100, `it waited for the lock (${took} ms)`);
  t.ok(Date.now() >= releasedAt, 'it committed after the other thread released the lock');
  t.equal((db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n, 1, 'one row written');
});

t.test('past the busy budget the SQLITE_BUSY error is thrown and the body never ran', async (t) => {
  const { file } = tempDb(t);
  const db = openDatabase(file, { busyTimeoutMs: 40 });
  t.teardown(() => db.close());
  db.pragma('busy_timeout = 0');
  const lock = await holdWriteLock(file, 400);
  let runs = 0;
  const t0 = Date.now();
  let err: unknown;
  try {
    inImmediateTransaction(db, () => { runs++; });
  } catch (e) {
    err = e;
  }
  const took = Date.now() - t0;
  await lock.released;
  t.ok(isBusyError(err), `SQLITE_BUSY thrown (${String((err as { code?: string }).code)})`);
  t.equal(runs, 0, 'the body never ran');
  t.ok(took >= 35 && took < 350, `gave up after about the budget (${took} ms), before the lock was released`);
});

t.test('errors from inside the transaction, or that are not SQLITE_BUSY, are not retried', async (t) => {
  const { db } = tempDb(t);
  setBusyBudget(db, 5000);
  const cases: Array<[string, () => never]> = [
    ['SQLITE_BUSY thrown by the body', () => { throw Object.assign(new Error('busy inside'), { code: 'SQLITE_BUSY' }); }],
    ['another error from the body', () => { throw Object.assign(new Error('constraint'), { code: 'SQLITE_CONSTRAINT' }); }],
  ];
  for (const [name, body] of cases) {
    let runs = 0;
    const t0 = Date.now();
    t.throws(() => inImmediateTransaction(db, () => { runs++; return body(); }), name);
    t.equal(runs, 1, `${name}: ran once`);
    t.ok(Date.now() - t0 < 1000, `${name}: no waiting`);
  }
  // retryBusyBegin on its own: a failure before began() that is not BUSY is thrown at once
  let attempts = 0;
  t.throws(() => retryBusyBegin(db, () => { attempts++; throw Object.assign(new Error('readonly'), { code: 'SQLITE_READONLY' }); }), { code: 'SQLITE_READONLY' });
  t.equal(attempts, 1, 'not retried');
  // a BUSY before began() with a clock that says the budget is spent: one attempt
  let now = 0;
  attempts = 0;
  t.throws(() => retryBusyBegin(db, () => { attempts++; now += 6000; throw Object.assign(new Error('busy'), { code: 'SQLITE_BUSY_SNAPSHOT' }); }, () => now), { code: 'SQLITE_BUSY_SNAPSHOT' });
  t.equal(attempts, 1, 'budget spent: not retried');
  // and with budget left: retried until it succeeds
  attempts = 0;
  now = 0;
  const v = retryBusyBegin(db, (began) => { attempts++; if (attempts < 3) throw Object.assign(new Error('busy'), { code: 'SQLITE_BUSY' }); began(); return 7; }, () => now);
  t.equal(v, 7);
  t.equal(attempts, 3, 'retried twice, then succeeded');
  t.notOk(isBusyError(null));
  t.notOk(isBusyError({ code: 42 }));
});

t.test('a nested call is a savepoint of the outer transaction, without a BEGIN of its own', async (t) => {
  const { db } = tempDb(t);
  db.exec('CREATE TABLE IF NOT EXISTS t (v INTEGER)');
  const ins = db.prepare('INSERT INTO t (v) VALUES (?)');
  t.throws(() => inImmediateTransaction(db, () => {
    ins.run(1);
    inImmediateTransaction(db, () => ins.run(2));
    throw new Error('roll back both');
  }));
  t.equal((db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n, 0, 'the outer rollback took the inner rows with it');
  inImmediateTransaction(db, () => {
    ins.run(1);
    t.throws(() => inImmediateTransaction(db, () => { ins.run(2); throw new Error('inner only'); }));
  });
  t.same(db.prepare('SELECT v FROM t').all(), [{ v: 1 }], 'the inner savepoint rolled back alone');
});
