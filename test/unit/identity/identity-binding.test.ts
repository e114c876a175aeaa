import t from 'tap';
import { decideBinding, type BoundIdentity } from '../../../src/identity/identity-binding.ts';

const CORP = 'https://corp.example';
const PARTNER = 'https://partner.example';
const OLD = 'https://old-idp.example';
const id = (issuer: string, subject: string, email: string): BoundIdentity => ({ issuer, subject, email });
const configured = new Set([CORP, PARTNER]);

t.test('an e-mail address is held by one identity provider account: (iss, sub)', async (t) => {
  const alice = id(CORP, 'a1', 'alice@acme.example');
  // request, binding of its account, binding holding its e-mail → decision
  const rows: Array<[string, BoundIdentity, BoundIdentity | undefined, BoundIdentity | undefined, ReturnType<typeof decideBinding>]> = [
    ['first sign-in', alice, undefined, undefined, { ok: true, account: 'insert', release: undefined }],
    ['the same account again', alice, alice, alice, { ok: true, account: 'touch', release: undefined }],
    ['a second IdP asserting the same address', id(PARTNER, 'p9', 'alice@acme.example'), undefined, alice, { ok: false, holder: alice }],
    ['the same IdP, another subject (user deleted and created again)', id(CORP, 'a2', 'alice@acme.example'), undefined, alice, { ok: false, holder: alice }],
    ['the holder\'s issuer is no longer configured (IdP migration)', id(CORP, 'a7', 'alice@acme.example'), undefined, id(OLD, 'x', 'alice@acme.example'),
      { ok: true, account: 'insert', release: id(OLD, 'x', 'alice@acme.example') }],
    ['the account\'s address changed at its IdP, the new one is free', id(CORP, 'a1', 'alice.smith@acme.example'), alice, undefined,
      { ok: true, account: 'change-email', release: undefined }],
    ['the account\'s new address is held by another account', id(CORP, 'a1', 'bob@acme.example'), alice, id(CORP, 'b1', 'bob@acme.example'),
      { ok: false, holder: id(CORP, 'b1', 'bob@acme.example') }],
    ['the account\'s new address is held by a removed issuer\'s account', id(CORP, 'a1', 'bob@acme.example'), alice, id(OLD, 'b0', 'bob@acme.example'),
      { ok: true, account: 'change-email', release: id(OLD, 'b0', 'bob@acme.example') }],
  ];
  for (const [name, req, byAccount, byEmail, want] of rows) t.same(decideBinding(req, byAccount, byEmail, configured), want, name);
});
