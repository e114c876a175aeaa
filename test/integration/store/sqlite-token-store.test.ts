import path from 'node:path';
import t from 'tap';
import { openDatabase } from '../../../src/store/database.ts';
import { createSqliteTokenStore } from '../../../src/store/sqlite-token-store.ts';
import { tokenStoreContract } from '../../unit/store/fixtures/token-store-contract.ts';

const dir = t.testdir({});
let n = 0;
await tokenStoreContract(t, () => {
  const db = openDatabase(path.join(dir, `contract-${n++}.db`));
  t.teardown(() => db.close());
  return createSqliteTokenStore(db);
});
