// Owns: bench scenario 12 — Tollgate against Squid with SSL bumping (issue 2 states two of its
// targets as multiples of "Squid ssl-bump on this machine": intercepted keep-alive 1 KiB @16
// ≥ 1.0×, a new TLS connection per request ≥ 2×). Both proxies intercept the same upstream for the
// same clients, in ABBA pairs of half-length runs after an unmeasured warm-up pair, and the median
// of the pairs' ratios is judged (this machine has fast and slow phases lasting seconds). Skipped,
// with the reason, when Squid with SSL bumping is not installed (bench/lib/squid.ts).
import { ProxyAgent, type Dispatcher } from 'undici';
import { checkStatus } from './lib/failures.ts';
import { INTERCEPT_HOST } from './lib/gateway.ts';
import { ABBA_PAIRS, median, runLoad, type RunStats } from './lib/load.ts';
import { squidAvailability, startBenchSquid } from './lib/squid.ts';
import type { BenchContext, Scenario, ScenarioResult } from './scenarios.ts';

interface Workload {
  key: string;
  title: string;
  concurrency: number;
  path: string;
  /** A new connection (CONNECT + full TLS handshake, no session resumption) per request. */
  newConnection: boolean;
}

const WORKLOADS: readonly Workload[] = [
  { key: 'keepalive', title: 'intercepted keep-alive 1 KiB, 16 concurrent (req/s)', concurrency: 16, path: '/1k', newConnection: false },
  { key: 'newconn', title: 'new TLS connection per request, 4 concurrent (req/s)', concurrency: 4, path: '/1k', newConnection: true },
  { key: 'serial', title: 'one request at a time, keep-alive 1 KiB (p50)', concurrency: 1, path: '/1k', newConnection: false },
  { key: 'body', title: '1 MiB downloads, keep-alive, 4 concurrent (MiB/s)', concurrency: 4, path: '/1m', newConnection: false },
];

async function getOnce(d: Dispatcher, origin: string, p: string, reset: boolean): Promise<number> {
  const r = await d.request({ origin, path: p, method: 'GET', reset });
  let n = 0;
  for await (const c of r.body) n += (c as Buffer).length;
  checkStatus(r.statusCode, r.headers, `GET ${origin}${p}`);
  return n;
}

const round = (v: number, d: number) => Math.round(v * 10 ** d) / 10 ** d;

export const squidScenario: Scenario = {
  id: '12',
  title: 'Tollgate vs Squid ssl-bump (same upstream and clients, ABBA pairs)',
  async run(ctx: BenchContext): Promise<ScenarioResult> {
    const avail = squidAvailability();
    if (!avail.ok) return { id: this.id, title: this.title, label: `skipped: ${avail.reason}`, extra: { squid: null } };
    const squid = await startBenchSquid({
      hosts: [INTERCEPT_HOST],
      upstreamCaPem: ctx.upstreamCaPem,
    });
    const agents: ProxyAgent[] = [];
    try {
      const agent = (uri: string, ca: string, token: string | undefined, w: Workload) => {
        const a = new ProxyAgent({
          uri, proxyTunnel: true, ...(token ? { token } : {}), keepAliveTimeout: 60_000,
          requestTls: { ca: [ca], ...(w.newConnection ? { maxCachedSessions: 0 } : {}) },
        });
        agents.push(a);
        return a;
      };
      const settle = async () => (await ctx.up.stats()).tcp;
      const rows: Array<{ title: string; squid: RunStats; tollgate: RunStats }> = [];
      const extra: Record<string, number | string | boolean | null> = { squid: avail.version };
      for (const w of WORKLOADS) {
        const viaSquid = agent(squid.proxyUrl, squid.caPem, undefined, w);
        const viaGateway = agent(ctx.gw.proxyUrl, ctx.gw.caPem, ctx.gw.proxyAuthorization, w);
        // Squid is asked for bench.test on the upstream's own port (its hosts_file maps the name to
        // 127.0.0.1); Tollgate for bench.test:443, which its `upstreams:` maps to the same port.
        const load = (d: Dispatcher, origin: string, cpu: () => number) => runLoad({
          concurrency: w.concurrency, durationMs: Math.round(ctx.durationMs / 2), warmupMs: ctx.warmupMs,
          ...(w.newConnection ? {} : { settle }),
          one: () => getOnce(d, origin, w.path, w.newConnection),
          cpu: { gateway: cpu, upstream: ctx.up.cpuMicros, loadgen: ctx.cpu['loadgen'] ?? (() => 0) },
        });
        const runSquid = () => load(viaSquid, `https://${INTERCEPT_HOST}:${ctx.up.port}`, squid.cpuMicros);
        const runTollgate = () => load(viaGateway, `https://${INTERCEPT_HOST}`, ctx.gw.cpuMicros);
        await runSquid();
        await runTollgate();
        const s: RunStats[] = [];
        const t: RunStats[] = [];
        for (let i = 0; i < ABBA_PAIRS; i++) {
          if (i % 2 === 0) {
            t.push(await runTollgate());
            s.push(await runSquid());
          } else {
            s.push(await runSquid());
            t.push(await runTollgate());
          }
        }
        const ratio = (f: (x: RunStats) => number) => median(t.map((x, i) => f(x) / f(s[i] as RunStats)));
        const mid = (xs: RunStats[], f: (x: RunStats) => number) => round(median(xs.map(f)), 2);
        extra[`${w.key}_tollgate_vs_squid`] = round(w.key === 'serial' ? ratio((x) => 1 / x.p50Ms) : w.key === 'body' ? ratio((x) => x.mibPerSec) : ratio((x) => x.rps), 3);
        extra[`${w.key}_squid_rps`] = mid(s, (x) => x.rps);
        extra[`${w.key}_tollgate_rps`] = mid(t, (x) => x.rps);
        extra[`${w.key}_squid_p50_ms`] = mid(s, (x) => x.p50Ms);
        extra[`${w.key}_tollgate_p50_ms`] = mid(t, (x) => x.p50Ms);
        extra[`${w.key}_squid_cpu_us_per_request`] = mid(s, (x) => x.gatewayCpuUsPerReq ?? NaN);
        extra[`${w.key}_tollgate_cpu_us_per_request`] = mid(t, (x) => x.gatewayCpuUsPerReq ?? NaN);
        if (w.key === 'body') {
          extra['body_squid_mib_per_s'] = mid(s, (x) => x.mibPerSec);
          extra['body_tollgate_mib_per_s'] = mid(t, (x) => x.mibPerSec);
        }
        // The table shows the pair nearest the median ratio (Squid in the "direct" column).
        const order = t.map((x, i) => ({ i, r: x.rps / (s[i] as RunStats).rps })).sort((a, b) => a.r - b.r);
        const k = (order[Math.floor((order.length - 1) / 2)] as { i: number }).i;
        rows.push({ title: w.title, squid: s[k] as RunStats, tollgate: t[k] as RunStats });
      }
      const [first, ...rest] = rows;
      return {
        id: this.id, title: `Tollgate vs Squid ${avail.version} ssl-bump: ${first?.title ?? ''}`,
        direct: first?.squid, tollgate: first?.tollgate,
        more: rest.map((r) => ({ title: r.title, direct: r.squid, tollgate: r.tollgate })),
        label: `"direct" column = Squid ${avail.version} with SSL bumping (squid-openssl, one process, no cache, access log on, EC P-256 CA), "Tollgate" = the stock gateway; same upstream and clients, ${ABBA_PAIRS} ABBA pairs of half-length runs per row, the pair nearest the median shown; "vs direct" = Tollgate ÷ Squid; cores g = the proxy measured (Squid and its helpers, or Tollgate)`,
        extra,
      };
    } finally {
      await Promise.all(agents.map((a) => a.destroy().catch(() => undefined)));
      await squid.stop();
    }
  },
};
