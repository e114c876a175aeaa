// Admin sign-in cookies when browsers reach the admin listener over https (security case 9.03):
// with an https `sso.public_url` (a TLS-terminating reverse proxy in front of the admin listener),
// the session cookie is `__Host-tollgate_session` with Secure, Path=/ and no Domain (what the
// __Host- prefix requires, so a browser pins it to this origin), HttpOnly and SameSite=Lax; the
// login cookie and every cookie that clears them carry Secure too; no unprefixed session cookie is
// ever set. The dev issuer only accepts http loopback redirect URIs, so a scripted OpenID Connect
// provider on loopback plays the IdP (authorization code + PKCE S256, RS256 ID tokens); requests
// that the browser sends to the public URL are delivered to the admin listener as the reverse proxy
// would.
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import t from 'tap';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { SSO_TEST_ORG_YAML, startTestGateway } from '../../helpers/gateway-harness.ts';
import { ScriptedBrowser } from '../../helpers/oidc-browser.ts';

const PUBLIC_URL = 'https://tollgate.acme.example';
const CLIENT_ID = 'tollgate-admin';

/** A scripted IdP: discovery, JWKS, an authorization endpoint that signs in `user` at once, and a token endpoint checking PKCE. */
async function startScriptedIdp(user: { email: string; groups: string[] }) {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  const codes = new Map<string, { nonce: string; challenge: string; redirectUri: string }>();
  const seen = { authorize: [] as URL[], tokenRequests: [] as URLSearchParams[] };
  const send = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', issuer);
    if (url.pathname === '/.well-known/openid-configuration') {
      send(res, 200, {
        issuer, authorization_endpoint: `${issuer}/authorize`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks`,
        id_token_signing_alg_values_supported: ['RS256'], code_challenge_methods_supported: ['S256'], token_endpoint_auth_methods_supported: ['none'],
      });
    } else if (url.pathname === '/jwks') {
      send(res, 200, { keys: [jwk] });
    } else if (url.pathname === '/authorize') {
      seen.authorize.push(url);
      const q = url.searchParams;
      const redirectUri = q.get('redirect_uri') ?? '';
      const code = randomBytes(16).toString('base64url');
      codes.set(code, { nonce: q.get('nonce') ?? '', challenge: q.get('code_challenge') ?? '', redirectUri });
      const back = new URL(redirectUri);
      back.searchParams.set('code', code);
      back.searchParams.set('state', q.get('state') ?? '');
      back.searchParams.set('iss', issuer);
      res.writeHead(302, { location: back.href });
      res.end();
    } else if (url.pathname === '/token' && req.method === 'POST') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        seen.tokenRequests.push(form);
        const grant = codes.get(form.get('code') ?? '');
        codes.delete(form.get('code') ?? '');
        const verifier = form.get('code_verifier') ?? '';
        if (!grant || form.get('client_id') !== CLIENT_ID || form.get('redirect_uri') !== grant.redirectUri
          || createHash('sha256').update(verifier).digest('base64url') !== grant.challenge) {
          send(res, 400, { error: 'invalid_grant' });
          return;
        }
        const nowS = Math.floor(Date.now() / 1000);
        void new SignJWT({ email: user.email, email_verified: true, groups: user.groups, nonce: grant.nonce })
          .setProtectedHeader({ alg: 'RS256', kid: 'k1', typ: 'JWT' }).setIssuer(issuer).setAudience(CLIENT_ID).setSubject(`sub-${user.email}`)
          .setIssuedAt(nowS).setExpirationTime(nowS + 300).sign(privateKey)
          .then((idToken) => send(res, 200, { access_token: 'unused', token_type: 'Bearer', expires_in: 300, id_token: idToken }));
      });
    } else {
      send(res, 404, { error: 'not_found' });
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const issuer = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return { issuer, seen, close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}

const idp = await startScriptedIdp({ email: 'ada@acme.example', groups: ['admins'] });
const gw = await startTestGateway({
  files: { 'org.yaml': SSO_TEST_ORG_YAML },
  sso: { issuers: [{ name: 'test', issuer: idp.issuer, client_id: CLIENT_ID }], session_ttl: '2h', public_url: PUBLIC_URL },
});
t.teardown(async () => {
  await gw.stop();
  await idp.close();
});

/** Cookie attributes by lower-cased name (flags map to ''), and the name=value pair. */
function parseSetCookie(line: string): { name: string; value: string; attrs: Map<string, string> } {
  const [pair = '', ...rest] = line.split(';');
  const i = pair.indexOf('=');
  const attrs = new Map<string, string>();
  for (const a of rest) {
    const j = a.indexOf('=');
    attrs.set((j === -1 ? a : a.slice(0, j)).trim().toLowerCase(), j === -1 ? '' : a.slice(j + 1).trim());
  }
  return { name: pair.slice(0, i).trim(), value: pair.slice(i + 1).trim(), attrs };
}

t.test('with an https public_url the session cookie is __Host-tollgate_session; Secure; Path=/; no Domain', async (t) => {
  const browser = new ScriptedBrowser();
  // The browser goes to the admin listener, signs in at the IdP, and is sent back to the public URL.
  const out = await browser.follow(`${gw.adminUrl}/auth/login?return_to=/dashboard/costs`, {}, (u) => u.startsWith(`${PUBLIC_URL}/`));
  t.match(out.stoppedAt, new RegExp(`^${PUBLIC_URL}/auth/callback\\?`), 'the IdP sends the browser back to the public https URL');
  const login = browser.hops[0];
  t.equal(login?.status, 303);
  t.equal(new URL(idp.seen.authorize[0]?.href ?? 'http://x/').searchParams.get('redirect_uri'), `${PUBLIC_URL}/auth/callback`, 'redirect_uri is built from public_url');

  const loginCookies = login?.headers.getSetCookie() ?? [];
  t.equal(loginCookies.length, 1);
  t.match(loginCookies[0], /^tollgate_login=[A-Za-z0-9_-]+; Path=\/auth\/callback; Max-Age=600; HttpOnly; SameSite=Lax; Secure$/, 'the login cookie carries Secure');

  // The reverse proxy behind PUBLIC_URL hands the callback to the admin listener.
  const back = new URL(out.stoppedAt ?? '');
  const callback = await browser.request(`${gw.adminUrl}${back.pathname}${back.search}`);
  t.equal(callback.status, 303, `the sign-in succeeded (${callback.body.slice(0, 200)})`);
  t.equal(callback.headers.get('location'), '/dashboard/costs');
  t.equal(idp.seen.tokenRequests[0]?.get('redirect_uri'), `${PUBLIC_URL}/auth/callback`, 'the code is redeemed with the same redirect_uri');

  const cookies = (callback.headers.getSetCookie()).map(parseSetCookie);
  t.same(cookies.map((c) => c.name).sort(), ['__Host-tollgate_session', 'tollgate_login'], 'the session cookie has the __Host- prefix; no unprefixed session cookie');
  const session = cookies.find((c) => c.name === '__Host-tollgate_session');
  t.match(session?.value, /^[A-Za-z0-9_-]{43}$/);
  t.ok(session?.attrs.has('secure'), '__Host- cookie: Secure');
  t.equal(session?.attrs.get('path'), '/', '__Host- cookie: Path=/');
  t.notOk(session?.attrs.has('domain'), '__Host- cookie: no Domain');
  t.ok(session?.attrs.has('httponly'), 'HttpOnly');
  t.equal(session?.attrs.get('samesite'), 'Lax');
  t.equal(session?.attrs.get('max-age'), '7200');
  const clearLogin = callback.headers.getSetCookie().find((c) => c.startsWith('tollgate_login='));
  t.match(clearLogin, /^tollgate_login=; Path=\/auth\/callback; Max-Age=0; HttpOnly; SameSite=Lax; Secure$/, 'the login cookie is cleared with Secure too');

  // The cookie signs the admin in, and signing out clears it under the same name, with Secure.
  const jar = `__Host-tollgate_session=${session?.value ?? ''}`;
  const info = await fetch(`${gw.adminUrl}/auth/session`, { headers: { cookie: jar } });
  t.equal(info.status, 200, 'the __Host- cookie is a session');
  const body = (await info.json()) as { email: string; admin: boolean; csrf_token: string };
  t.match(body, { email: 'ada@acme.example', admin: true });
  // the same id under the unprefixed name (which a sibling subdomain or plain http could plant): no session
  const planted = await fetch(`${gw.adminUrl}/auth/session`, { headers: { cookie: `tollgate_session=${session?.value ?? ''}` } });
  t.equal(planted.status, 401, 'behind an https public_url only the __Host- cookie counts (no session fixation)');
  const logout = await fetch(`${gw.adminUrl}/auth/logout`, { method: 'POST', headers: { cookie: jar, 'x-csrf-token': body.csrf_token, origin: PUBLIC_URL } });
  t.equal(logout.status, 200, 'a sign-out from the public origin is accepted');
  t.same(logout.headers.getSetCookie(), ['__Host-tollgate_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax; Secure'], 'cleared under the __Host- name, with Secure');
  t.equal((await fetch(`${gw.adminUrl}/auth/session`, { headers: { cookie: jar } })).status, 401, 'the session is gone');
});

t.test('a sign-in refused at the callback clears the login cookie with Secure as well', async (t) => {
  const browser = new ScriptedBrowser();
  const out = await browser.follow(`${gw.adminUrl}/auth/login`, {}, (u) => u.startsWith(`${PUBLIC_URL}/`));
  const back = new URL(out.stoppedAt ?? '');
  back.searchParams.set('state', 'not-the-state-of-this-browser');
  const refused = await browser.request(`${gw.adminUrl}${back.pathname}${back.search}`);
  t.equal(refused.status, 400);
  t.same(refused.headers.getSetCookie(), ['tollgate_login=; Path=/auth/callback; Max-Age=0; HttpOnly; SameSite=Lax; Secure']);
});
