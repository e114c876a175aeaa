import t from 'tap';
import { createAuthFailureLimiter } from '../../../src/identity/auth-failure-limiter.ts';
import { authenticateProxyRequest } from '../../../src/identity/authenticate-proxy-request.ts';
import { createTokenService } from '../../../src/identity/token-service.ts';
import { createMemoryTokenStore } from '../../../src/store/memory-token-store.ts';

const T0 = 1_800_000_000_000;
const basic = (s: string): string => `Basic ${Buffer.from(s).toString('base64')}`;

t.test('end to end over the pure parts and the memory store', async (t) => {
  const tokens = createTokenService(createMemoryTokenStore());
  const limiter = createAuthFailureLimiter({ maxFailures: 3 });
  const deps = { tokens, limiter };
  const { token, record } = await tokens.issueToken({ kind: 'user', subject: 'ana@acme.example', teams: ['sre', 'backend'], issuedBy: 'test', now: T0 });
  const run = (h: string[], addr = '10.0.0.1', now = T0 + 1) => authenticateProxyRequest(deps, { proxyAuthorization: h, sourceAddress: addr, now });

  t.match(await run([basic(`sre.production:${token}`)]), { ok: true, principal: { kind: 'user', id: record.id, team: 'sre', project: 'production' } });
  t.match(await run([`Bearer ${token}`]), { ok: false, reason: 'auth_invalid', detail: 'scope', message: /one of sre, backend/ });
  t.match(await run([]), { ok: false, reason: 'auth_required' });
  t.match(await run([basic(`sre:tg_${'x'.repeat(43)}`)]), { ok: false, reason: 'auth_invalid', detail: 'unknown' });
  t.match(await run(['Token nope']), { ok: false, reason: 'auth_invalid', detail: 'header' });
  t.match(await run([basic(`sre:tg_${'y'.repeat(43)}`)]), { ok: false, reason: 'auth_invalid', detail: 'unknown' }, 'third guess (the scope mistake did not count)');
  t.match(await run([basic(`sre:tg_${'z'.repeat(43)}`)]), { ok: false, reason: 'rate_limited', detail: 'blocked' }, 'blocked after 3 guesses');
  t.match(await run(['Token nope']), { ok: false, reason: 'rate_limited', detail: 'blocked' }, 'a malformed header too');
  t.match(await run([basic(`sre:${token}`)]), { ok: true }, 'a valid token is never refused for its address (no lock-out behind a shared NAT)');
  t.match(await run([basic(`sre:${token}`)], '10.0.0.2'), { ok: true }, 'other addresses are unaffected');
  for (let i = 0; i < 10; i++) await run([], '10.0.0.3');
  t.match(await run([basic(`sre:${token}`)], '10.0.0.3'), { ok: true }, 'missing credentials are not counted as failures');
});

t.test('expired and revoked tokens are refused but do not count as guesses', async (t) => {
  const tokens = createTokenService(createMemoryTokenStore());
  const limiter = createAuthFailureLimiter({ maxFailures: 2 });
  const expired = await tokens.issueToken({ kind: 'agent', subject: 'bot', teams: ['sre'], issuedBy: 'test', now: T0, ttlMs: 60_000 });
  const revoked = await tokens.issueToken({ kind: 'agent', subject: 'bot2', teams: ['sre'], issuedBy: 'test', now: T0 });
  await tokens.revoke({ id: revoked.record.id }, T0);
  const run = (token: string) => authenticateProxyRequest({ tokens, limiter }, { proxyAuthorization: [basic(`sre:${token}`)], sourceAddress: '10.0.0.9', now: T0 + 120_000 });
  for (let i = 0; i < 5; i++) {
    t.match(await run(expired.token), { ok: false, reason: 'auth_invalid', detail: 'expired' });
    t.match(await run(revoked.token), { ok: false, reason: 'auth_invalid', detail: 'revoked' });
  }
  t.equal(limiter.check('10.0.0.9', T0 + 120_000).allowed, true, 'a stale client retrying does not block its address');
  t.match(await run(`tg_${'q'.repeat(43)}`), { ok: false, detail: 'unknown' });
  t.match(await run(`tg_${'r'.repeat(43)}`), { ok: false, detail: 'unknown' });
  t.match(await run(expired.token), { ok: false, reason: 'auth_invalid', detail: 'expired' }, 'once blocked, a stale token still gets its own answer (not a guess)');
  t.match(await run(`tg_${'s'.repeat(43)}`), { ok: false, reason: 'rate_limited' }, 'but guesses are refused');
});
