// 5.11 with two configured identity providers (two real OpenID providers on loopback): people are
// keyed on (iss, sub). An account of the second IdP that asserts an address the first IdP's account
// holds is refused — no token, no admin session, an audited refusal — until an administrator
// releases the address with `tollgate identities unbind`; then that account holds it.
import path from 'node:path';
import t from 'tap';
import { startDevIssuer } from '../../../src/identity/dev-issuer.ts';
import { identitiesList, identitiesUnbind } from '../../../src/identity/identity-commands.ts';
import { openDatabase } from '../../../src/store/database.ts';
import { SSO_TEST_ORG_YAML, startTestGateway } from '../../helpers/gateway-harness.ts';
import { idTokenFrom, ScriptedBrowser } from '../../helpers/oidc-browser.ts';

const users = [
  { email: 'alice@acme.example', name: 'Alice', groups: ['alpha-people'] },
  { email: 'ada@acme.example', name: 'Ada', groups: ['admins', 'alpha-people'] },
  { email: 'bob@acme.example', name: 'Bob', groups: ['alpha-people'] },
];
const corp = await startDevIssuer({ users });
const partner = await startDevIssuer({ users });
const gw = await startTestGateway({
  files: { 'org.yaml': SSO_TEST_ORG_YAML },
  sso: {
    issuers: [
      { name: 'corp', issuer: corp.issuer, client_id: 'tollgate-dev', scopes: ['openid', 'email', 'profile', 'groups'] },
      { name: 'partner', issuer: partner.issuer, client_id: 'tollgate-dev', scopes: ['openid', 'email', 'profile', 'groups'] },
    ],
  },
});
const dbFile = path.join(gw.dir, 'data', 'tollgate.db');
t.teardown(async () => {
  await gw.stop();
  await corp.close();
  await partner.close();
});

/** `tollgate login`'s token exchange for `email` through the issuer named `name`. */
async function signIn(name: 'corp' | 'partner', email: string) {
  const cfg = (await (await fetch(`${gw.adminUrl}/api/v1/auth/config`)).json()) as { nonce: string };
  const tok = await idTokenFrom((name === 'corp' ? corp : partner).issuer, email, cfg.nonce);
  const res = await fetch(`${gw.adminUrl}/api/v1/auth/token`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ issuer: name, id_token: tok, nonce: cfg.nonce, flow: 'code' }),
  });
  return { status: res.status, body: (await res.json()) as { error?: { code: string; message: string }; token?: string } };
}

function tokensOf(email: string): number {
  const db = openDatabase(dbFile);
  try {
    return (db.prepare("SELECT count(*) AS n FROM tokens WHERE subject = ? AND kind = 'user'").get(email) as { n: number }).n;
  } finally {
    db.close();
  }
}

async function refusalEvents(): Promise<Array<{ code: string; issuer: string }>> {
  const db = openDatabase(dbFile);
  try {
    return (db.prepare("SELECT detail FROM audit_events WHERE type = 'sso_token_refused' ORDER BY seq").all() as Array<{ detail: string }>).map((r) => JSON.parse(r.detail) as { code: string; issuer: string });
  } finally {
    db.close();
  }
}

t.test('the first account to sign in holds the address; the other IdP\'s account is refused', async (t) => {
  const first = await signIn('corp', 'alice@acme.example');
  t.equal(first.status, 200);
  t.match(first.body.token, /^tg_/);
  t.equal(tokensOf('alice@acme.example'), 1);
  t.match(identitiesList({ dbFile }), [{ email: 'alice@acme.example', issuer: corp.issuer, subject: 'alice@acme.example' }]);

  const second = await signIn('partner', 'alice@acme.example');
  t.equal(second.status, 403);
  t.equal(second.body.error?.code, 'identity_conflict');
  t.match(second.body.error?.message, /alice@acme\.example already belongs to another account.*tollgate identities unbind --email alice@acme\.example/);
  t.equal(second.body.token, undefined);
  t.equal(tokensOf('alice@acme.example'), 1, 'no token was issued');
  let events: Array<{ code: string; issuer: string }> = [];
  for (let i = 0; i < 100 && !events.some((e) => e.code === 'identity_conflict'); i++) {
    await new Promise((r) => setTimeout(r, 20));
    events = await refusalEvents();
  }
  t.match(events, [{ code: 'identity_conflict', issuer: 'partner' }], 'the refusal is audited');

  const again = await signIn('corp', 'alice@acme.example');
  t.equal(again.status, 200, 'the holder still signs in');
});

t.test('a refused sign-in binds nothing: the account that gets a token holds the address', async (t) => {
  partner.setGroups('bob@acme.example', ['contractors']);
  t.teardown(() => partner.setGroups('bob@acme.example', ['alpha-people']));
  const refused = await signIn('partner', 'bob@acme.example');
  t.equal(refused.status, 403);
  t.equal(refused.body.error?.code, 'no_team');
  t.same(identitiesList({ dbFile, email: 'bob@acme.example' }), [], 'no binding for a sign-in that got nothing');
  t.equal((await signIn('corp', 'bob@acme.example')).status, 200, 'the corp account is not refused');
  t.match(identitiesList({ dbFile, email: 'bob@acme.example' }), [{ issuer: corp.issuer }]);
});

t.test('an admin of the other IdP gets no dashboard session either', async (t) => {
  t.equal((await signIn('corp', 'ada@acme.example')).status, 200);
  const browser = new ScriptedBrowser();
  const last = await browser.signIn(`${gw.adminUrl}/auth/login?issuer=partner&return_to=/dashboard/costs`, 'ada@acme.example', (u) => u.startsWith(`${gw.adminUrl}/dashboard`));
  t.equal(last.stoppedAt, undefined, 'not sent on to the dashboard');
  t.equal(last.status, 403);
  t.match(last.body, /already belongs to another account/);
  t.equal(browser.cookies(gw.adminUrl).get('tollgate_session'), undefined, 'no session cookie');
  const db = openDatabase(dbFile);
  t.teardown(() => db.close());
  let ev: { detail: string } | undefined;
  for (let i = 0; i < 100 && !ev; i++) {
    ev = db.prepare("SELECT detail FROM audit_events WHERE type = 'admin_sign_in_refused'").get() as typeof ev;
    if (!ev) await new Promise((r) => setTimeout(r, 20));
  }
  t.match(JSON.parse(ev?.detail ?? '{}'), { issuer: partner.issuer, code: 'identity_conflict' }, 'the refusal is audited');
});

t.test('tollgate identities unbind releases the address: the next account takes it', async (t) => {
  const released = identitiesUnbind({ dbFile, email: 'Alice@acme.example', actor: 'cli:test' });
  t.same(released, { issuer: corp.issuer, subject: 'alice@acme.example', email: 'alice@acme.example' });
  const db = openDatabase(dbFile);
  const ev = db.prepare("SELECT actor, detail FROM audit_events WHERE type = 'identity_unbound'").get() as { actor: string; detail: string } | undefined;
  db.close();
  t.equal(ev?.actor, 'cli:test');
  t.same(JSON.parse(ev?.detail ?? '{}'), { email: 'alice@acme.example', issuer: corp.issuer, subject: 'alice@acme.example' });
  t.equal(identitiesUnbind({ dbFile, email: 'alice@acme.example' }), undefined, 'nothing left to release');

  t.equal((await signIn('partner', 'alice@acme.example')).status, 200, 'the partner account holds it now');
  const corpAgain = await signIn('corp', 'alice@acme.example');
  t.equal(corpAgain.status, 403);
  t.equal(corpAgain.body.error?.code, 'identity_conflict');
});
