import t from 'tap';
import { createAuthFailureLimiter, limiterKey } from '../../../src/identity/auth-failure-limiter.ts';

const T0 = 1_800_000_000_000;

t.test('limiterKey', async (t) => {
  const cases: Array<[string, string]> = [
    ['10.0.0.1', '10.0.0.1'],
    ['::ffff:10.0.0.1', '10.0.0.1'],
    ['::FFFF:10.0.0.1', '10.0.0.1'],
    ['::ffff:a00:1', '10.0.0.1'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:db8:1:2::9', '2001:db8:1:2::/64'],
    ['[2001:db8:1:2::9]', '2001:db8:1:2::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
  ];
  for (const [addr, key] of cases) t.equal(limiterKey(addr), key, addr);
});

t.test('blocks after maxFailures within the window, for blockMs', async (t) => {
  const l = createAuthFailureLimiter({ maxFailures: 3, windowMs: 60_000, blockMs: 60_000 });
  t.same(l.check('1.2.3.4', T0), { allowed: true });
  t.same(l.recordFailure('1.2.3.4', T0), { allowed: true });
  t.same(l.recordFailure('1.2.3.4', T0 + 1), { allowed: true });
  t.match(l.recordFailure('1.2.3.4', T0 + 2), { allowed: false, reason: 'rate_limited', retryAfterMs: 60_000 });
  t.match(l.check('1.2.3.4', T0 + 30_000), { allowed: false, retryAfterMs: 30_002 });
  t.same(l.check('5.6.7.8', T0 + 30_000), { allowed: true }, 'other addresses are unaffected');
  t.same(l.check('1.2.3.4', T0 + 60_002), { allowed: true }, 'the block ends');
});

t.test('failures spread over windows never block', async (t) => {
  const l = createAuthFailureLimiter({ maxFailures: 3, windowMs: 1000, blockMs: 1000 });
  for (let i = 0; i < 10; i++) {
    t.same(l.recordFailure("1.2.3.4", T0 + i * 600), { allowed: true });
  }
  t.same(l.check('1.2.3.4', T0 + 6000), { allowed: true });
});

t.test('IPv6 hosts of one /64 share a counter; mapped IPv4 counts as IPv4', async (t) => {
  const l = createAuthFailureLimiter({ maxFailures: 2 });
  l.recordFailure('2001:db8::1', T0);
  t.match(l.recordFailure('2001:db8::2', T0), { allowed: false });
  l.recordFailure('::ffff:192.0.2.1', T0);
  t.match(l.recordFailure('192.0.2.1', T0), { allowed: false });
});

t.test('memory is bounded', async (t) => {
  const l = createAuthFailureLimiter({ maxAddresses: 100 });
  for (let i = 0; i < 10_000; i++) l.recordFailure(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, T0);
  t.equal(l.size(), 100);
});

t.test('a clock going backwards starts a new window', async (t) => {
  const l = createAuthFailureLimiter({ maxFailures: 2, windowMs: 1000 });
  l.recordFailure('1.2.3.4', T0);
  t.same(l.recordFailure('1.2.3.4', T0 - 5000), { allowed: true });
});
