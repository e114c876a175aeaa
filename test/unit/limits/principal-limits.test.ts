// Per-principal fairness limits (security case 8.03): tunnels, requests in flight, rate.
import t from 'tap';
import { createPrincipalLimits, type LimitVerdict } from '../../../src/limits/principal-limits.ts';

const ok = (v: LimitVerdict) => { if (!v.ok) throw new Error(`refused: ${v.message}`); return v; };

t.test('tunnels: up to max_tunnels per principal, a slot comes back on release (once), others unaffected', async (t) => {
  const l = createPrincipalLimits({ maxTunnels: 2, maxConcurrentRequests: 0, requestsPerSecond: 0, burst: 1 });
  const a1 = ok(l.admitTunnel('agent:a', 'Agent a', 0));
  ok(l.admitTunnel('agent:a', 'Agent a', 0));
  const third = l.admitTunnel('agent:a', 'Agent a', 0);
  t.match(third, { ok: false, limit: 'max_tunnels', retryAfterMs: 1000, message: /^Agent a has 2 tunnels open, the most allowed \(limits\.per_principal\.max_tunnels\)/ });
  t.ok(l.admitTunnel('agent:b', 'Agent b', 0).ok, 'another principal has its own slots');
  a1.release();
  a1.release();
  t.ok(ok(l.admitTunnel('agent:a', 'Agent a', 0)), 'the released slot is free again');
  t.match(l.admitTunnel('agent:a', 'Agent a', 0), { ok: false }, 'and a double release freed only one');
  t.ok(l.admitRequest('agent:a', 'Agent a', 0).ok, 'requests are not tunnels');
});

t.test('requests in flight: up to max_concurrent_requests', async (t) => {
  const l = createPrincipalLimits({ maxTunnels: 0, maxConcurrentRequests: 3, requestsPerSecond: 0, burst: 1 });
  const held = [0, 1, 2].map(() => ok(l.admitRequest('user:x@acme', 'User x@acme', 0)));
  t.match(l.admitRequest('user:x@acme', 'User x@acme', 0), { ok: false, limit: 'max_concurrent_requests', retryAfterMs: 1000, message: /User x@acme has 3 requests in flight/ });
  held[1]?.release();
  t.ok(l.admitRequest('user:x@acme', 'User x@acme', 0).ok);
  for (let i = 0; i < 100; i++) ok(l.admitTunnel('user:x@acme', 'User x@acme', 0)); // 0 = unlimited
});

t.test('rate: a bucket of `burst` requests refilled at requests_per_second; Retry-After until one token', async (t) => {
  const l = createPrincipalLimits({ maxTunnels: 0, maxConcurrentRequests: 0, requestsPerSecond: 4, burst: 2 });
  const rows: Array<[number, boolean | number]> = [
    // [time ms, admitted (true) or the retryAfterMs of the refusal]
    [0, true], [0, true], [0, 250], [100, 150], [250, true], [250, 250], [1000, true], [1000, true], [1000, 250],
    [5000, true], [5000, true], [5000, 250], // refilled only up to burst
    [4000, 250], // a clock that goes back refills nothing
  ];
  for (const [at, want] of rows) {
    const v = l.admitRequest('agent:a', 'Agent a', at);
    if (want === true) t.ok(v.ok, `t=${at}: admitted`);
    else t.match(v, { ok: false, limit: 'requests_per_second', retryAfterMs: want, message: /more than 4 requests per second \(limits\.per_principal\.requests_per_second, burst 2\)/ }, `t=${at}: refused, retry after ${want} ms`);
  }
  t.ok(l.admitRequest('agent:b', 'Agent b', 4000).ok, 'another principal has its own bucket');
});

t.test('limits of 0 are off; idle principals are forgotten once many are held', async (t) => {
  const l = createPrincipalLimits({ maxTunnels: 0, maxConcurrentRequests: 0, requestsPerSecond: 0, burst: 0 });
  for (let i = 0; i < 5000; i++) ok(l.admitRequest(`agent:${i}`, `Agent ${i}`, 0)).release();
  t.ok(l.size() <= 4096, `at most 4096 held (${l.size()})`);
  const r = createPrincipalLimits({ maxTunnels: 1, maxConcurrentRequests: 0, requestsPerSecond: 10, burst: 1 });
  const busy = ok(r.admitTunnel('agent:busy', 'Agent busy', 0));
  ok(r.admitRequest('agent:drained', 'Agent drained', 0)).release(); // bucket empty: not idle yet
  for (let i = 0; i < 4096; i++) ok(r.admitRequest(`agent:${i}`, `Agent ${i}`, 0)).release();
  t.match(r.admitTunnel('agent:busy', 'Agent busy', 0), { ok: false }, 'a principal holding a tunnel is kept');
  t.match(r.admitRequest('agent:drained', 'Agent drained', 50), { ok: false, limit: 'requests_per_second' }, 'a principal whose bucket is not full is kept');
  busy.release();
});
