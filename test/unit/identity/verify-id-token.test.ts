// ID token verification against forged and damaged tokens (security cases 5.02–5.07, 5.11),
// built with jose; the key set is local and the clock fixed.
import { createHmac } from 'node:crypto';
import t, { type Test } from 'tap';
import { createLocalJWKSet, exportJWK, exportSPKI, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose';
import { verifyIdToken, type VerifyIdTokenInput } from '../../../src/identity/oidc/verify-id-token.ts';

const NOW = 1_800_000_000_000;
const NOW_S = NOW / 1000;
const ISS = 'https://idp.test';
const CLIENT = 'tollgate';

const k1 = await generateKeyPair('RS256', { extractable: true });
const other = await generateKeyPair('RS256', { extractable: true });
const ec = await generateKeyPair('ES256', { extractable: true });
const ps = await generateKeyPair('PS256', { extractable: true });
const pub1: JWK = { ...(await exportJWK(k1.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
const getKey = createLocalJWKSet({ keys: [pub1] });

const claims = (over: JWTPayload = {}): JWTPayload => ({
  iss: ISS, aud: CLIENT, sub: 'u-1', iat: NOW_S - 10, exp: NOW_S + 300, nonce: 'N1', email: 'alice@acme.example', ...over,
});
const sign = (payload: JWTPayload, header: Record<string, unknown> = {}, key: typeof k1.privateKey = k1.privateKey) =>
  new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid: 'k1', typ: 'JWT', ...header }).sign(key);
const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const input = (token: string, over: Partial<VerifyIdTokenInput> = {}): VerifyIdTokenInput => ({
  token, issuer: ISS, clientId: CLIENT, algorithms: ['RS256'], getKey, now: NOW, nonce: 'N1', ...over,
});

t.test('a good token verifies', async (t) => {
  const c = await verifyIdToken(input(await sign(claims())));
  t.equal(c.sub, 'u-1');
  t.equal(c['email'], 'alice@acme.example');
});

type Tap = Test;
const refused = async (tt: Tap, name: string, token: string | Promise<string>, over: Partial<VerifyIdTokenInput> = {}, message?: RegExp) => {
  await tt.rejects(verifyIdToken(input(await token, over)), { code: 'id_token_invalid', ...(message ? { message } : {}) }, name);
};

t.test('alg none and unsigned tokens (5.02)', async (t) => {
  for (const alg of ['none', 'None', 'NONE']) await refused(t, `alg ${alg}`, `${b64({ alg, typ: 'JWT' })}.${b64(claims())}.`);
  await refused(t, 'HS256 with an empty signature', `${b64({ alg: 'HS256', kid: 'k1' })}.${b64(claims())}.`);
});

t.test('algorithm confusion (5.03)', async (t) => {
  const body = `${b64({ alg: 'HS256', kid: 'k1', typ: 'JWT' })}.${b64(claims())}`;
  const pem = await exportSPKI(k1.publicKey);
  for (const [what, secret] of [['PEM', pem], ['JWK JSON', JSON.stringify(pub1)], ['DER', Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64')]] as const) {
    const sig = createHmac('sha256', secret).update(body).digest('base64url');
    await refused(t, `HS256 signed with the public key as ${what}`, `${body}.${sig}`, {}, /algorithm/);
  }
  await refused(t, 'ES256 when only RS256 is allowed', new SignJWT(claims()).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).sign(ec.privateKey), {}, /algorithm/);
  await refused(t, 'PS256 not on the allow-list', new SignJWT(claims()).setProtectedHeader({ alg: 'PS256', kid: 'k1' }).sign(ps.privateKey), {}, /algorithm/);
});

t.test('issuer, audience, authorized party, type (5.04)', async (t) => {
  await refused(t, 'wrong iss', sign(claims({ iss: 'https://evil.test' })), {}, /another issuer/);
  await refused(t, 'iss with a trailing slash', sign(claims({ iss: `${ISS}/` })), {}, /another issuer/);
  await refused(t, 'aud of another client', sign(claims({ aud: 'other-client' })), {}, /another client/);
  await refused(t, 'no aud', sign(claims({ aud: undefined })));
  await refused(t, 'several audiences, no azp', sign(claims({ aud: [CLIENT, 'other'] })), {}, /authorized party/);
  await refused(t, 'several audiences, azp of another client', sign(claims({ aud: [CLIENT, 'other'], azp: 'other' })), {}, /another client/);
  await t.resolves(verifyIdToken(input(await sign(claims({ aud: [CLIENT, 'other'], azp: CLIENT })))), 'several audiences with azp = us');
  await refused(t, 'an access token (typ at+jwt)', sign(claims(), { typ: 'at+jwt' }), {}, /not an ID token/);
});

t.test('time claims (5.05): exp strict, nbf/iat with 60 s of skew, max age', async (t) => {
  await refused(t, 'exp = now', sign(claims({ exp: NOW_S })), {}, /expired/);
  await refused(t, 'exp = now - 61 s', sign(claims({ exp: NOW_S - 61 })), {}, /expired/);
  await refused(t, 'no exp', sign(claims({ exp: undefined })));
  await refused(t, 'no iat', sign(claims({ iat: undefined })));
  await refused(t, 'nbf = now + 120 s', sign(claims({ nbf: NOW_S + 120 })), {}, /not valid yet/);
  await refused(t, 'iat = now + 120 s', sign(claims({ iat: NOW_S + 120 })), {}, /future/);
  await refused(t, 'issued 12 minutes ago (max age 10 min + 60 s skew)', sign(claims({ iat: NOW_S - 720 })), {}, /too old/);
  await t.resolves(verifyIdToken(input(await sign(claims({ nbf: NOW_S + 30, iat: NOW_S + 30 })))), '30 s of skew is tolerated');
});

t.test('signature and structure tampering (5.06)', async (t) => {
  const good = await sign(claims());
  const [h, p, s] = good.split('.') as [string, string, string];
  const flipped = Buffer.from(p, 'base64url');
  flipped[5] = (flipped[5] ?? 0) ^ 1;
  await refused(t, 'one flipped payload byte', `${h}.${flipped.toString('base64url')}.${s}`);
  await refused(t, 'truncated signature', `${h}.${p}.${s.slice(0, 20)}`);
  await refused(t, 'signed by a key the IdP does not publish', sign(claims(), {}, other.privateKey), {}, /signature/);
  await refused(t, 'payload []', `${h}.${b64([])}.${s}`);
  await refused(t, 'payload null', `${h}.${b64('null')}.${s}`);
  await refused(t, 'JWS JSON serialisation', JSON.stringify({ payload: p, protected: h, signature: s }));
  await refused(t, 'a 100 KB token', `${h}.${'A'.repeat(100_000)}.${s}`, {}, /too large/);
  await refused(t, 'b64:false with crit', sign(claims(), { b64: false, crit: ['b64'] }).catch(() => `${b64({ alg: 'RS256', kid: 'k1', b64: false, crit: ['b64'] })}.${p}.${s}`));
});

t.test('kid, jku, x5u and embedded jwk (5.07)', async (t) => {
  for (const kid of ['../../../../dev/null', "x' UNION SELECT 'k'--", 'k'.repeat(10_000)]) {
    await refused(t, `kid ${kid.slice(0, 20)}`, sign(claims(), { kid }));
  }
  await refused(t, 'jku to an attacker', sign(claims(), { kid: 'evil', jku: 'https://evil.test/jwks.json' }, other.privateKey));
  await refused(t, 'x5u to an attacker', sign(claims(), { kid: 'evil', x5u: 'https://evil.test/c.pem' }, other.privateKey));
  const attackerJwk = await exportJWK(other.publicKey);
  await refused(t, 'embedded jwk', sign(claims(), { kid: undefined, jwk: attackerJwk }, other.privateKey));
});

t.test('nonce (5.11)', async (t) => {
  await refused(t, 'missing nonce', sign(claims({ nonce: undefined })), {}, /nonce/);
  await refused(t, 'wrong nonce', sign(claims({ nonce: 'N2' })), {}, /nonce/);
  await refused(t, 'a nonce when none was sent', sign(claims()), { nonce: undefined }, /nonce/);
  await t.resolves(verifyIdToken(input(await sign(claims({ nonce: undefined })), { allowMissingNonce: true })), 'device flow: the IdP may drop the nonce');
  await refused(t, 'device flow still checks a nonce that is present', sign(claims({ nonce: 'N2' })), { allowMissingNonce: true }, /nonce/);
});
