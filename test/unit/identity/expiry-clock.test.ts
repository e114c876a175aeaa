// The expiry clock (security case 7.09, clock jumps): it follows the wall clock forward, never runs
// backwards after the wall clock is set back, and a token that had expired is not accepted again
// after a 10-minute step back — through the real authenticate stage and token service.
import t from 'tap';
import { createAuthFailureLimiter } from '../../../src/identity/auth-failure-limiter.ts';
import { createExpiryClock } from '../../../src/identity/expiry-clock.ts';
import { createTokenService } from '../../../src/identity/token-service.ts';
import type { Exchange } from '../../../src/proxy/exchange.ts';
import { authenticateStage } from '../../../src/stages/authenticate.ts';
import { createMemoryTokenStore } from '../../../src/store/memory-token-store.ts';

const T0 = 1_800_000_000_000;
const MIN = 60_000;

/** A wall clock and a monotonic clock the test moves: `advance` moves both, `step` the wall clock only. */
function clocks() {
  let wall = T0;
  let mono = 5_000.25;
  return {
    wall: () => wall,
    mono: () => mono,
    advance(ms: number) { wall += ms; mono += ms; },
    step(ms: number) { wall += ms; },
  };
}

t.test('a table of wall-clock moves', async (t) => {
  const rows: Array<{ name: string; moves: Array<['advance' | 'step', number]>; expect: number }> = [
    { name: 'no move', moves: [], expect: T0 },
    { name: 'time passes', moves: [['advance', 1500]], expect: T0 + 1500 },
    { name: 'set back 10 min: carries on from where it was', moves: [['advance', MIN], ['step', -10 * MIN]], expect: T0 + MIN },
    { name: 'set back, then time passes at the monotonic pace', moves: [['step', -10 * MIN], ['advance', 2 * MIN]], expect: T0 + 2 * MIN },
    { name: 'set back, then time passes: the carried time, not the wall clock', moves: [['step', -10 * MIN], ['advance', 11 * MIN]], expect: T0 + 11 * MIN },
    { name: 'set back, then corrected: the wall clock is followed again', moves: [['step', -10 * MIN], ['advance', MIN], ['step', 10 * MIN], ['advance', 500]], expect: T0 + MIN + 500 },
    { name: 'set forward: followed (expiry early, closed)', moves: [['step', 10 * MIN]], expect: T0 + 10 * MIN },
    { name: 'set forward then back to true time: stays ahead until it passes', moves: [['step', 10 * MIN], ['step', -10 * MIN], ['advance', MIN]], expect: T0 + 11 * MIN },
    { name: 'set back an hour: past the 15-minute carry, the wall clock is followed', moves: [['advance', MIN], ['step', -60 * MIN]], expect: T0 - 59 * MIN },
    { name: 'a day ahead, then corrected: followed back at once (no day-long carry)', moves: [['step', 24 * 60 * MIN], ['advance', MIN], ['step', -24 * 60 * MIN]], expect: T0 + MIN },
    { name: 'set back 15 minutes exactly: still carried', moves: [['step', -15 * MIN]], expect: T0 },
  ];
  for (const r of rows) {
    const c = clocks();
    const now = createExpiryClock(c.wall, c.mono);
    const seen = [now()];
    for (const [kind, ms] of r.moves) {
      c[kind](ms);
      seen.push(now());
    }
    const last = seen[seen.length - 1] as number;
    t.equal(last, r.expect, r.name);
    if (!/past the|corrected/.test(r.name)) t.ok(seen.every((v, i) => i === 0 || v >= (seen[i - 1] as number)), `${r.name}: never backwards (${seen.map((v) => v - T0).join(', ')})`);
    t.ok(seen.every((v) => Number.isInteger(v)), `${r.name}: whole milliseconds`);
  }
});

t.test('an expired token stays expired after the system clock is set back 10 minutes', async (t) => {
  const c = clocks();
  const tokens = createTokenService(createMemoryTokenStore());
  const { token } = await tokens.issueToken({ kind: 'agent', subject: 'bot', teams: ['sre'], issuedBy: 'test', now: T0, ttlMs: 5 * MIN });
  const auth = [`Basic ${Buffer.from(`sre:${token}`).toString('base64')}`];
  const stage = authenticateStage({ tokens, limiter: createAuthFailureLimiter(), now: createExpiryClock(c.wall, c.mono) });
  const attempt = async () => {
    const ex = { proxyAuthorization: auth, clientAddress: '10.0.0.1', notes: {} } as unknown as Exchange;
    try {
      await stage(ex);
      return 'accepted';
    } catch (err) {
      return (err as { reason?: string }).reason ?? String(err);
    }
  };
  c.advance(MIN);
  t.equal(await attempt(), 'accepted', 'valid at T0 + 1 min');
  c.advance(5 * MIN);
  t.equal(await attempt(), 'auth_invalid', 'expired at T0 + 6 min');
  c.step(-10 * MIN);
  t.equal(c.wall(), T0 - 4 * MIN, 'the system clock now reads 4 minutes before issue');
  t.equal(await attempt(), 'auth_invalid', 'still refused after the step back');
  c.advance(30_000);
  t.equal(await attempt(), 'auth_invalid', 'and as time goes on');
});
