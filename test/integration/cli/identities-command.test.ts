// `tollgate identities list|unbind`, the real executable against tollgate.db: list shows which
// account holds each address; unbind releases one (any case) together with its `identity_unbound`
// event, and when the event cannot be written nothing is released (exit 1, TOLLGATE_ERR_AUDIT).
import os from 'node:os';
import path from 'node:path';
import { mkdirSync, writeFileSync } from 'node:fs';
import t from 'tap';
import { listIdentityBindings, sqliteIdentityBindings } from '../../../src/store/sqlite-identity-bindings.ts';
import { breakAuditWrites, restoreAuditWrites } from '../../helpers/audit-down.ts';
import { cliInProcess } from '../../helpers/cli-in-process.ts';
import { tempDb } from '../../helpers/temp-db.ts';

const IDP = 'https://idp.example';

function setup(t: Parameters<typeof tempDb>[0]) {
  const { dir, db } = tempDb(t, 'tollgate-identities-cli-');
  mkdirSync(path.join(dir, 'policies'));
  writeFileSync(path.join(dir, 'org.yaml'), 'organization: T\nteams:\n  sre: { name: SRE, idp_groups: [sre], policy: policies/sre.yaml }\n');
  writeFileSync(path.join(dir, 'policies/sre.yaml'), 'team: sre\nrules:\n  - { host: "*", action: deny }\n');
  const config = path.join(dir, 'tollgate.yaml');
  writeFileSync(config, 'data_dir: .\norg: ./org.yaml\npolicies: ./policies\naudit: { busy_timeout_ms: 300 }\n');
  const b = sqliteIdentityBindings(db);
  b.bind({ issuer: IDP, subject: 'u-ada', email: 'ada@acme.example' }, Date.parse('2026-11-01T09:00:00Z'), new Set([IDP]));
  b.bind({ issuer: IDP, subject: 'u-bob', email: 'bob@acme.example' }, Date.parse('2026-11-02T09:00:00Z'), new Set([IDP]));
  return { db, tollgate: (...args: string[]) => cliInProcess([...args, '--config', config], {}) };
}

t.test('list and unbind', async (t) => {
  const { db, tollgate } = setup(t);
  const json = await tollgate('identities', 'list', '--json');
  t.equal(json.code, 0, json.stderr);
  t.same(JSON.parse(json.stdout), [
    { email: 'ada@acme.example', issuer: IDP, subject: 'u-ada', firstSeen: '2026-11-01T09:00:00.000Z', lastSeen: '2026-11-01T09:00:00.000Z' },
    { email: 'bob@acme.example', issuer: IDP, subject: 'u-bob', firstSeen: '2026-11-02T09:00:00.000Z', lastSeen: '2026-11-02T09:00:00.000Z' },
  ]);
  const table = await tollgate('identities', 'list', '--email', 'BOB@acme.example');
  t.equal(table.code, 0, table.stderr);
  t.match(table.stdout, /bob@acme\.example\s+https:\/\/idp\.example\s+u-bob/);
  t.notMatch(table.stdout, /ada@/);

  const out = await tollgate('identities', 'unbind', '--email', 'Ada@Acme.example');
  t.equal(out.code, 0, out.stderr);
  t.equal(out.stdout, 'released ada@acme.example (held by u-ada of https://idp.example)\n');
  t.same(listIdentityBindings(db).map((r) => r.email), ['bob@acme.example']);
  const ev = db.prepare("SELECT actor, detail FROM audit_events WHERE type = 'identity_unbound'").all() as Array<{ actor: string; detail: string }>;
  t.same(ev.map((e) => ({ actor: e.actor, detail: JSON.parse(e.detail) as unknown })), [{ actor: `cli:${os.userInfo().username}`, detail: { email: 'ada@acme.example', issuer: IDP, subject: 'u-ada' } }]);

  // (nothing left to release, and --json: the library call is tested in two-issuers.test.ts)
});

t.test('when the event cannot be written nothing is released', async (t) => {
  const { db, tollgate } = setup(t);
  breakAuditWrites(db);
  t.teardown(() => restoreAuditWrites(db, { ifExists: true }));
  const out = await tollgate('identities', 'unbind', '--email', 'bob@acme.example');
  t.equal(out.code, 1);
  t.match(out.stderr, /cannot be written .*: no address was released \[TOLLGATE_ERR_AUDIT\]/s);
  t.same(listIdentityBindings(db).map((r) => r.email), ['ada@acme.example', 'bob@acme.example'], 'bob still holds his address');
});
