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
  t.match(await run([basic(`sre:${token}`)]), { ok: false, reason: 'rate_limited', detail: 'blocked' }, 'blocked after 3 failures, valid token or not');
  t.match(await run([basic(`sre:${token}`)], '10.0.0.2'), { ok: true }, 'other addresses are unaffected');
  for (let i = 0; i < 10; i++) await run([], '10.0.0.3');
  t.match(await run([basic(`sre:${token}`)], '10.0.0.3'), { ok: true }, 'missing credentials are not counted as failures');
});
