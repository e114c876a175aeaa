// The device authorization grant's polling rules (RFC 8628 §3.5), against a scripted token
// endpoint: the interval, slow_down (+5 s), authorization_pending, expired_token, access_denied.
import t from 'tap';
import type { OidcMetadata } from '../../../src/identity/oidc/discovery.ts';
import { DEVICE_CODE_GRANT, runDeviceFlow } from '../../../src/identity/oidc/public-client.ts';

const metadata: OidcMetadata = {
  issuer: 'https://idp.test', authorizationEndpoint: 'https://idp.test/auth', tokenEndpoint: 'https://idp.test/token', jwksUri: 'https://idp.test/jwks',
  deviceAuthorizationEndpoint: 'https://idp.test/device/auth', idTokenAlgorithms: ['RS256'], codeChallengeMethods: ['S256'], tokenEndpointAuthMethods: ['none'],
};

function scripted(answers: Array<[number, Record<string, unknown>]>, start: Record<string, unknown> = {}) {
  const forms: URLSearchParams[] = [];
  const fetch = async (url: string, init?: RequestInit): Promise<Response> => {
    const form = new URLSearchParams(String(init?.body ?? ''));
    forms.push(form);
    if (url.endsWith('/device/auth')) {
      return Response.json({ device_code: 'DC', user_code: 'ABCD-EFGH', verification_uri: 'https://idp.test/device', expires_in: 600, interval: 5, ...start });
    }
    const next = answers.shift() ?? [400, { error: 'expired_token' }];
    return Response.json(next[1], { status: next[0] });
  };
  return { fetch, forms };
}

t.test('pending, slow_down, then the ID token', async (t) => {
  const { fetch, forms } = scripted([[400, { error: 'authorization_pending' }], [400, { error: 'slow_down' }], [400, { error: 'authorization_pending' }], [200, { id_token: 'a.b.c' }]]);
  const waits: number[] = [];
  const printed: string[] = [];
  const tok = await runDeviceFlow({ metadata, clientId: 'cli', scopes: ['openid', 'email'], nonce: 'N', print: (l) => printed.push(l), fetch, sleep: async (ms) => { waits.push(ms); } });
  t.equal(tok, 'a.b.c');
  t.same(waits, [5000, 5000, 10_000, 10_000], 'slow_down adds 5 s for every later poll');
  t.match(printed.join('\n'), /visit https:\/\/idp\.test\/device and enter the code ABCD-EFGH/);
  t.equal(forms[0]?.get('client_id'), 'cli');
  t.equal(forms[0]?.get('scope'), 'openid email');
  t.equal(forms[0]?.get('nonce'), 'N');
  t.equal(forms[1]?.get('grant_type'), DEVICE_CODE_GRANT);
  t.equal(forms[1]?.get('device_code'), 'DC');
});

t.test('a missing interval means 5 s', async (t) => {
  const { fetch } = scripted([[200, { id_token: 'x.y.z' }]], { interval: undefined });
  const waits: number[] = [];
  await runDeviceFlow({ metadata, clientId: 'cli', scopes: ['openid'], nonce: 'N', print: () => undefined, fetch, sleep: async (ms) => { waits.push(ms); } });
  t.same(waits, [5000]);
});

for (const [error, pattern] of [['expired_token', /expired/], ['access_denied', /declined/], ['invalid_grant', /invalid_grant/]] as const) {
  t.test(`${error} ends the login`, async (t) => {
    const { fetch } = scripted([[400, { error: 'authorization_pending' }], [400, { error }]]);
    await t.rejects(runDeviceFlow({ metadata, clientId: 'cli', scopes: ['openid'], nonce: 'N', print: () => undefined, fetch, sleep: async () => undefined }), { message: pattern });
  });
}

t.test('an issuer without a device endpoint is refused up front', async (t) => {
  await t.rejects(runDeviceFlow({ metadata: { ...metadata, deviceAuthorizationEndpoint: undefined }, clientId: 'cli', scopes: ['openid'], nonce: 'N', print: () => undefined, sleep: async () => undefined }),
    { code: 'idp_misconfigured', message: /without --device/ });
});
