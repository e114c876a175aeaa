// JWKS caching and rotation against a scripted identity provider on loopback (security case 5.08):
// rotation → one refetch; a flood of unknown kids → at most one fetch per cooldown; a hanging or
// dead IdP → bounded failures while cached keys keep working; a removed key stops at max age.
import http from 'node:http';
import type net from 'node:net';
import t from 'tap';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { createOidcIssuer } from '../../../src/identity/oidc/oidc-issuer.ts';

type Mode = 'ok' | 'hang' | 'down';
async function startIdp() {
  const state = { keys: [] as JWK[], mode: 'ok' as Mode, jwksFetches: 0, discoveryFetches: 0 };
  const server = http.createServer((req, res) => {
    if (state.mode === 'down') {
      res.socket?.destroy();
      return;
    }
    if (req.url === '/.well-known/openid-configuration') {
      state.discoveryFetches++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ issuer, authorization_endpoint: `${issuer}/auth`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks`, id_token_signing_alg_values_supported: ['RS256', 'HS256', 'none'] }));
      return;
    }
    if (req.url === '/jwks') {
      state.jwksFetches++;
      if (state.mode === 'hang') return; // never answers
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: state.keys }));
      return;
    }
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const issuer = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return { state, issuer, close: () => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); }) };
}

const idp = await startIdp();
t.teardown(() => idp.close());
const key = async (kid: string) => {
  const pair = await generateKeyPair('RS256', { extractable: true });
  return { kid, privateKey: pair.privateKey, jwk: { ...(await exportJWK(pair.publicKey)), kid, alg: 'RS256', use: 'sig' } as JWK };
};
const k1 = await key('k1');
const k2 = await key('k2');
let clock = Date.now();
const now = () => clock;
const token = (k: { kid: string; privateKey: Parameters<SignJWT['sign']>[0] }, kid = k.kid) =>
  new SignJWT({ sub: 'u', email: 'a@acme.example' }).setProtectedHeader({ alg: 'RS256', kid }).setIssuer(idp.issuer).setAudience('tollgate')
    .setIssuedAt(Math.floor(clock / 1000)).setExpirationTime(Math.floor(clock / 1000) + 300).sign(k.privateKey);
const settings = { name: 'idp', issuer: idp.issuer, clientId: 'tollgate', preset: 'generic' as const, groupMap: {} };
const verify = async (issuer: ReturnType<typeof createOidcIssuer>, tok: string) => issuer.verify(tok, { nonce: undefined, now: clock });

t.test('discovery: algorithms are pinned to asymmetric ones', async (t) => {
  const issuer = createOidcIssuer(settings, { now });
  t.same((await issuer.metadata()).idTokenAlgorithms, ['RS256'], 'HS256 and none from discovery are dropped');
});

t.test('rotation: a token with the new kid is accepted after one refetch', async (t) => {
  idp.state.keys = [k1.jwk];
  const issuer = createOidcIssuer(settings, { now, keySet: { cooldownMs: 30_000 } });
  await verify(issuer, await token(k1));
  const before = idp.state.jwksFetches;
  idp.state.keys = [k1.jwk, k2.jwk];
  clock += 31_000;
  t.match(await verify(issuer, await token(k2)), { sub: 'u' });
  t.equal(idp.state.jwksFetches - before, 1, 'exactly one refetch');
  t.match(await verify(issuer, await token(k1)), { sub: 'u' }, 'the old key still works while published');

  t.test('a removed key stops working once the cache is older than its max age', async (t) => {
    idp.state.keys = [k2.jwk];
    t.match(await verify(issuer, await token(k1)), { sub: 'u' }, 'still cached');
    clock += 600_000;
    await t.rejects(verify(issuer, await token(k1)), { code: 'id_token_invalid', message: /does not publish/ });
  });
});

t.test('a flood of unknown kids fetches at most once per cooldown', async (t) => {
  idp.state.keys = [k1.jwk];
  const issuer = createOidcIssuer(settings, { now });
  await verify(issuer, await token(k1));
  const before = idp.state.jwksFetches;
  const forged = await Promise.all(Array.from({ length: 1000 }, (_, i) => token(k2, `random-${i}`)));
  clock += 31_000; // past the cooldown once
  const results = await Promise.allSettled(forged.map((f) => verify(issuer, f)));
  t.ok(results.every((r) => r.status === 'rejected'), 'every forged token is refused');
  t.equal(idp.state.jwksFetches - before, 1, 'one fetch for 1000 unknown kids');
  clock += 5_000;
  await Promise.allSettled(forged.slice(0, 100).map((f) => verify(issuer, f)));
  t.equal(idp.state.jwksFetches - before, 1, 'none within the 30 s cooldown');
});

t.test('a hanging JWKS endpoint: unknown kids fail within the deadline, cached kids still verify', async (t) => {
  idp.state.keys = [k1.jwk];
  const issuer = createOidcIssuer(settings, { now, timeoutMs: 800 });
  await verify(issuer, await token(k1));
  idp.state.mode = 'hang';
  t.teardown(() => { idp.state.mode = 'ok'; });
  clock += 31_000;
  const started = Date.now();
  await t.rejects(verify(issuer, await token(k2)), { code: 'idp_unavailable' });
  t.ok(Date.now() - started < 2000, `failed in ${Date.now() - started} ms`);
  const again = Date.now();
  await t.rejects(verify(issuer, await token(k2, 'k3')), { code: /idp_unavailable|id_token_invalid/ });
  t.ok(Date.now() - again < 200, 'during the failure back-off no new fetch is waited for');
  t.match(await verify(issuer, await token(k1)), { sub: 'u' }, 'a cached key verifies during the outage');
});

t.test('an IdP that is down: a clear error in bounded time', async (t) => {
  idp.state.mode = 'down';
  t.teardown(() => { idp.state.mode = 'ok'; });
  const issuer = createOidcIssuer(settings, { now, timeoutMs: 800 });
  const started = Date.now();
  await t.rejects(verify(issuer, await token(k1)), { code: 'idp_unavailable', message: /cannot be reached|did not answer/ });
  t.ok(Date.now() - started < 2000);
  const dead = createOidcIssuer({ ...settings, issuer: 'http://127.0.0.1:9' }, { now, timeoutMs: 800 });
  await t.rejects(dead.metadata(), { code: 'idp_unavailable' });
});

t.test('jku, x5u and an embedded jwk never choose where keys come from (5.07)', async (t) => {
  // An attacker's key server on loopback: it would serve the attacker's key as a JWKS (and as a PEM
  // for x5u), so a verifier that followed the header would accept the forged tokens below.
  const attacker = await key('evil');
  const hits: string[] = [];
  const evil = http.createServer((req, res) => {
    hits.push(`${req.method ?? ''} ${req.url ?? ''}`);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: [attacker.jwk, { ...attacker.jwk, kid: 'k1' }] }));
  });
  await new Promise<void>((r) => evil.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => { evil.close(() => r()); evil.closeAllConnections(); }));
  const evilUrl = `http://127.0.0.1:${(evil.address() as net.AddressInfo).port}`;

  idp.state.keys = [k1.jwk];
  clock += 700_000; // past every earlier cache and cooldown
  const issuer = createOidcIssuer(settings, { now });
  const forge = (header: Record<string, unknown>, k: { kid: string; privateKey: Parameters<SignJWT['sign']>[0] } = attacker) =>
    new SignJWT({ sub: 'u', email: 'a@acme.example' }).setProtectedHeader({ alg: 'RS256', ...header }).setIssuer(idp.issuer).setAudience('tollgate')
      .setIssuedAt(Math.floor(clock / 1000)).setExpirationTime(Math.floor(clock / 1000) + 300).sign(k.privateKey);
  const publicJwk = { kty: attacker.jwk.kty, n: attacker.jwk.n, e: attacker.jwk.e };

  const forged: Array<[string, Record<string, unknown>]> = [
    ['jku to the attacker, attacker kid', { kid: 'evil', jku: `${evilUrl}/jwks.json` }],
    ['jku to the attacker, the IdP kid', { kid: 'k1', jku: `${evilUrl}/jwks.json` }],
    ['x5u to the attacker', { kid: 'evil', x5u: `${evilUrl}/c.pem` }],
    ['x5u to the attacker, the IdP kid', { kid: 'k1', x5u: `${evilUrl}/c.pem` }],
    ['embedded jwk, no kid', { jwk: publicJwk }],
    ['embedded jwk with the IdP kid', { kid: 'k1', jwk: { ...publicJwk, kid: 'k1' } }],
    ['jku, x5u and jwk together', { kid: 'evil', jku: `${evilUrl}/jwks.json`, x5u: `${evilUrl}/c.pem`, jwk: publicJwk }],
  ];
  for (const [name, header] of forged) {
    await t.rejects(verify(issuer, await forge(header)), { code: 'id_token_invalid' }, name);
    clock += 31_000; // past the refetch cooldown, so an unknown kid may cause a (legitimate) IdP fetch each time
  }
  t.same(hits, [], 'the attacker key server received no request');
  // A genuine token carrying the same headers verifies against the configured JWKS only.
  t.match(await verify(issuer, await forge({ kid: 'k1', jku: `${evilUrl}/jwks.json`, x5u: `${evilUrl}/c.pem` }, k1)), { sub: 'u' }, 'a real token with jku/x5u: verified against the IdP keys');
  t.same(hits, [], 'still no request to the attacker key server');
  t.ok(idp.state.jwksFetches > 0, 'keys came from the configured jwks_uri');
});
