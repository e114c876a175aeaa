// The identity bindings on a real tollgate.db: the rule applied in one transaction per sign-in,
// listing, release, and another connection (a second gateway, the CLI) seeing the same bindings.
import t from 'tap';
import { listIdentityBindings, sqliteIdentityBindings, unbindIdentity } from '../../../src/store/sqlite-identity-bindings.ts';
import { tempDb } from '../../helpers/temp-db.ts';

const CORP = 'https://corp.example';
const PARTNER = 'https://partner.example';
const both = new Set([CORP, PARTNER]);

t.test('bind, refuse a second account, release, take over, follow an address change', async (t) => {
  const { db, open } = tempDb(t, 'tollgate-identities-');
  const b = sqliteIdentityBindings(db);
  t.same(b.bind({ issuer: CORP, subject: 'a1', email: 'alice@acme.example' }, 1000, both), { ok: true, released: undefined });
  t.same(b.bind({ issuer: CORP, subject: 'a1', email: 'alice@acme.example' }, 2000, both), { ok: true, released: undefined });
  t.same(b.bind({ issuer: PARTNER, subject: 'p9', email: 'alice@acme.example' }, 3000, both), { ok: false, holder: { issuer: CORP, subject: 'a1', email: 'alice@acme.example' } });
  t.match(listIdentityBindings(db), [{ issuer: CORP, subject: 'a1', email: 'alice@acme.example', firstSeen: 1000, lastSeen: 2000 }], 'a refusal writes nothing');

  const other = sqliteIdentityBindings(open());
  t.same(other.bind({ issuer: PARTNER, subject: 'p9', email: 'alice@acme.example' }, 3000, both).ok, false, 'another connection sees the binding');

  t.same(unbindIdentity(db, 'ALICE@acme.example'), { issuer: CORP, subject: 'a1', email: 'alice@acme.example' }, 'release (any case)');
  t.equal(unbindIdentity(db, 'alice@acme.example'), undefined, 'nothing left to release');
  t.same(other.bind({ issuer: PARTNER, subject: 'p9', email: 'alice@acme.example' }, 4000, both), { ok: true, released: undefined }, 'the next account takes it');
  t.same(b.bind({ issuer: CORP, subject: 'a1', email: 'alice@acme.example' }, 5000, both).ok, false, 'and the first one is refused now');

  // PARTNER removed from the config: its accounts cannot sign in any more, CORP's take their addresses
  t.same(b.bind({ issuer: CORP, subject: 'a1', email: 'alice@acme.example' }, 6000, new Set([CORP])), { ok: true, released: { issuer: PARTNER, subject: 'p9', email: 'alice@acme.example' } });
  // an address change at the IdP moves the account
  t.same(b.bind({ issuer: CORP, subject: 'a1', email: 'alice.smith@acme.example' }, 7000, both), { ok: true, released: undefined });
  t.match(listIdentityBindings(db), [{ issuer: CORP, subject: 'a1', email: 'alice.smith@acme.example', firstSeen: 6000, lastSeen: 7000 }]);
  t.same(b.bind({ issuer: CORP, subject: 'b1', email: 'bob@acme.example' }, 8000, both).ok, true);
  t.same(listIdentityBindings(db, 'BOB@acme.example').map((r) => r.subject), ['b1'], 'list narrows to one address');
  t.same(listIdentityBindings(db).map((r) => r.email), ['alice.smith@acme.example', 'bob@acme.example'], 'by address');
});

t.test('a store that cannot write refuses the bind (the sign-in fails closed)', async (t) => {
  const { db } = tempDb(t, 'tollgate-identities-');
  const b = sqliteIdentityBindings(db);
  db.pragma('query_only = ON');
  t.throws(() => b.bind({ issuer: CORP, subject: 'a1', email: 'alice@acme.example' }, 1000, both), /readonly|read-only|query_only/i);
});
