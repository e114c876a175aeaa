// openDatabase's mustExist (the reporting thread's open): a database deleted under the gateway is
// not created again, empty, because a report was asked for; an existing one opens as usual.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { openDatabase } from '../../../src/store/database.ts';

t.test('mustExist refuses a missing file and creates nothing; an existing file opens', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-open-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'data', 'tollgate.db');
  t.throws(() => openDatabase(file, { mustExist: true }), { code: 'TOLLGATE_ERR_AUDIT', message: /does not exist/ });
  t.notOk(existsSync(file), 'no file was created');
  t.notOk(existsSync(path.dirname(file)), 'nor its directory');
  openDatabase(file).close();
  const db = openDatabase(file, { mustExist: true });
  t.teardown(() => db.close());
  t.ok((db.prepare('SELECT count(*) AS n FROM schema_migrations').get() as { n: number }).n > 0, 'opened, migrated');
});
