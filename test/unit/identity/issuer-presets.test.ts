// Claims → { email, groups } per issuer preset (Okta, Entra ID, JumpCloud, generic). PURE.
import t from 'tap';
import { identityFromClaims, scopesFor } from '../../../src/identity/oidc/issuer-presets.ts';

const base = { iss: 'https://idp.test', sub: 'u-1' };

t.test('generic and okta: email and the groups claim', async (t) => {
  t.same(identityFromClaims({ ...base, email: 'Alice@Acme.Example', groups: ['sre', 'sre'] }, { name: 'okta', preset: 'okta' }),
    { issuer: 'https://idp.test', subject: 'u-1', email: 'alice@acme.example', groups: ['sre'] });
  t.same(identityFromClaims({ ...base, email: 'a@acme.example', groups: 'sre' }, { name: 'g', preset: 'generic' }).groups, ['sre'], 'a single string');
  t.same(identityFromClaims({ ...base, email: 'a@acme.example' }, { name: 'g', preset: 'generic' }).groups, [], 'no groups claim');
  t.same(identityFromClaims({ ...base, email: 'a@acme.example', roles: ['x'] }, { name: 'g', preset: 'generic', groupsClaim: 'roles' }).groups, ['x'], 'groups_claim');
  t.same(scopesFor({ name: 'okta', preset: 'okta' }), ['openid', 'email', 'profile', 'groups']);
  t.same(scopesFor({ name: 'g', preset: 'generic', scopes: ['email', 'openid'] }), ['openid', 'email'], 'openid first, once');
});

t.test('entra: upn / preferred_username, group object ids mapped', async (t) => {
  const id = identityFromClaims(
    { ...base, preferred_username: 'ada@acme.example', email: 'spoof@other.example', groups: ['1111-aaaa', '2222-bbbb'] },
    { name: 'entra', preset: 'entra', groupMap: { '1111-aaaa': 'it-admins' } },
  );
  t.equal(id.email, 'ada@acme.example', 'preferred_username wins over a mutable email');
  t.same(id.groups, ['it-admins', '2222-bbbb'], 'unmapped ids stay as they are');
  t.equal(identityFromClaims({ ...base, upn: 'bob@acme.example' }, { name: 'entra', preset: 'entra' }).email, 'bob@acme.example');
  t.throws(() => identityFromClaims({ ...base, upn: 'bob@acme.example', _claim_names: { groups: 'src1' } }, { name: 'entra', preset: 'entra' }), { code: 'identity_incomplete', message: /groups overage/ });
});

t.test('jumpcloud: email and the group attribute', async (t) => {
  t.same(identityFromClaims({ ...base, email: 'c@acme.example', groups: ['backend-engineering'] }, { name: 'jc', preset: 'jumpcloud' }).groups, ['backend-engineering']);
  t.same(scopesFor({ name: 'jc', preset: 'jumpcloud' }), ['openid', 'email', 'profile']);
});

t.test('refusals', async (t) => {
  t.throws(() => identityFromClaims({ ...base, email: 'a@acme.example', email_verified: false }, { name: 'g', preset: 'generic' }), { code: 'identity_incomplete', message: /not verified/ });
  t.throws(() => identityFromClaims({ ...base }, { name: 'g', preset: 'generic' }), { code: 'identity_incomplete', message: /no e-mail/ });
  t.throws(() => identityFromClaims({ ...base, email: 'not an email' }, { name: 'g', preset: 'generic' }), { code: 'identity_incomplete' });
  t.throws(() => identityFromClaims({ ...base, email: 'a@acme.example', groups: [1, 2] }, { name: 'g', preset: 'generic' }), { code: 'identity_incomplete', message: /not a list/ });
});
