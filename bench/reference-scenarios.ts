// Owns: the bench scenarios that compare Tollgate with a reference proxy on the same upstream for
// the same clients, in ABBA pairs of half-length runs after an unmeasured warm-up pair (this
// machine has fast and slow phases lasting seconds; the median of the pairs' ratios is judged):
// - #12, Squid with SSL bumping: issue 2 states two targets as multiples of "Squid ssl-bump on this
//   machine" (intercepted keep-alive 1 KiB @16 ≥ 1.0×, a new TLS connection per request ≥ 2×).
//   Skipped, with the reason, when Squid with SSL bumping is not installed (bench/lib/squid.ts).
// - #13, a bare Node MITM (bench/lib/bare-mitm-server.ts): node:tls + node:http + an undici pool
//   and nothing else, the floor Node itself sets on this machine; Tollgate ÷ it is what the
//   gateway's pipeline (identity, policy, audit, logs, metrics, header hygiene) costs.
import { ProxyAgent, type Dispatcher } from 'undici';
import { checkStatus } from './lib/failures.ts';
import { INTERCEPT_HOST } from './lib/gateway.ts';
import { ABBA_PAIRS, abbaPairs, median, runLoad, type RunStats } from './lib/load.ts';
import { startBareMitm } from './lib/bare-mitm.ts';
import { squidAvailability, startBenchSquid } from './lib/squid.ts';
import { makeTestCa } from '../test/helpers/test-pki.ts';
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

/** A proxy the stock gateway is compared with on the same upstream and clients. */
export interface ReferenceProxy {
  /** Shown in titles and labels ("Squid 5.7 ssl-bump", "bare Node MITM"). */
  name: string;
  proxyUrl: string;
  /** The CA the reference proxy signs its certificates with (clients trust it). */
  caPem: string;
  /** The origin the client asks the reference proxy for. */
  origin: string;
  cpuMicros(): number;
}

/**
 * Each workload through the reference proxy and through Tollgate: an unmeasured warm-up pair, then
 * ABBA pairs of half-length runs. Figures per workload go to `extra` as `<key>_tollgate_vs_<tag>`
 * (the median of the pairs' ratios), `<key>_<tag>_rps`, `…_p50_ms`, `…_cpu_us_per_request`.
 */
export async function compareWithReference(ctx: BenchContext, ref: ReferenceProxy, tag: string, extra: Record<string, number | string | boolean | null>): Promise<Array<{ title: string; ref: RunStats; tollgate: RunStats }>> {
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
    const rows: Array<{ title: string; ref: RunStats; tollgate: RunStats }> = [];
    for (const w of WORKLOADS) {
      const viaRef = agent(ref.proxyUrl, ref.caPem, undefined, w);
      const viaGateway = agent(ctx.gw.proxyUrl, ctx.gw.caPem, ctx.gw.proxyAuthorization, w);
      const load = (d: Dispatcher, origin: string, cpu: () => number) => runLoad({
        concurrency: w.concurrency, durationMs: Math.round(ctx.durationMs / 2), warmupMs: ctx.warmupMs,
        ...(w.newConnection ? {} : { settle }),
        one: () => getOnce(d, origin, w.path, w.newConnection),
        cpu: { gateway: cpu, upstream: ctx.up.cpuMicros, loadgen: ctx.cpu['loadgen'] ?? (() => 0) },
      });
      const runRef = () => load(viaRef, ref.origin, () => ref.cpuMicros());
      const runTollgate = () => load(viaGateway, `https://${INTERCEPT_HOST}`, ctx.gw.cpuMicros);
      await runRef();
      await runTollgate();
      const [t, s] = await abbaPairs(runTollgate, runRef);
      const ratio = (f: (x: RunStats) => number) => median(t.map((x, i) => f(x) / f(s[i] as RunStats)));
      const mid = (xs: RunStats[], f: (x: RunStats) => number) => round(median(xs.map(f)), 2);
      extra[`${w.key}_tollgate_vs_${tag}`] = round(w.key === 'serial' ? ratio((x) => 1 / x.p50Ms) : w.key === 'body' ? ratio((x) => x.mibPerSec) : ratio((x) => x.rps), 3);
      extra[`${w.key}_${tag}_rps`] = mid(s, (x) => x.rps);
      extra[`${w.key}_tollgate_rps`] = mid(t, (x) => x.rps);
      extra[`${w.key}_${tag}_p50_ms`] = mid(s, (x) => x.p50Ms);
      extra[`${w.key}_tollgate_p50_ms`] = mid(t, (x) => x.p50Ms);
      extra[`${w.key}_${tag}_cpu_us_per_request`] = mid(s, (x) => x.gatewayCpuUsPerReq ?? NaN);
      extra[`${w.key}_tollgate_cpu_us_per_request`] = mid(t, (x) => x.gatewayCpuUsPerReq ?? NaN);
      if (w.key === 'body') {
        extra[`body_${tag}_mib_per_s`] = mid(s, (x) => x.mibPerSec);
        extra['body_tollgate_mib_per_s'] = mid(t, (x) => x.mibPerSec);
      }
      // The table shows the pair nearest the median ratio (the reference in the "direct" column).
      const order = t.map((x, i) => ({ i, r: x.rps / (s[i] as RunStats).rps })).sort((a, b) => a.r - b.r);
      const k = (order[Math.floor((order.length - 1) / 2)] as { i: number }).i;
      rows.push({ title: w.title, ref: s[k] as RunStats, tollgate: t[k] as RunStats });
    }
    return rows;
  } finally {
    await Promise.all(agents.map((a) => a.destroy().catch(() => undefined)));
  }
}

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
    try {
      const extra: Record<string, number | string | boolean | null> = { squid: avail.version };
      // Squid is asked for bench.test on the upstream's own port (its hosts_file maps the name to
      // 127.0.0.1); Tollgate for bench.test:443, which its `upstreams:` maps to the same port.
      const rows = await compareWithReference(ctx, {
        name: `Squid ${avail.version} ssl-bump`, proxyUrl: squid.proxyUrl, caPem: squid.caPem,
        origin: `https://${INTERCEPT_HOST}:${ctx.up.port}`, cpuMicros: () => squid.cpuMicros(),
      }, 'squid', extra);
      const [first, ...rest] = rows;
      return {
        id: this.id, title: `Tollgate vs Squid ${avail.version} ssl-bump: ${first?.title ?? ''}`,
        direct: first?.ref, tollgate: first?.tollgate,
        more: rest.map((r) => ({ title: r.title, direct: r.ref, tollgate: r.tollgate })),
        label: `"direct" column = Squid ${avail.version} with SSL bumping (squid-openssl, one process, no cache, access log on, EC P-256 CA), "Tollgate" = the stock gateway; same upstream and clients, ${ABBA_PAIRS} ABBA pairs of half-length runs per row, the pair nearest the median shown; "vs direct" = Tollgate ÷ Squid; cores g = the proxy measured (Squid and its helpers, or Tollgate)`,
        extra,
      };
    } finally {
      await squid.stop();
    }
  },
};

export const bareMitmScenario: Scenario = {
  id: '13',
  title: 'Tollgate vs a bare Node MITM (same upstream and clients, ABBA pairs)',
  async run(ctx: BenchContext): Promise<ScenarioResult> {
    const pki = await makeTestCa('Tollgate Bench Bare MITM CA');
    const leaf = await pki.issue([INTERCEPT_HOST]);
    const mitm = await startBareMitm({ upstreamPort: ctx.up.port, upstreamCaPem: ctx.upstreamCaPem, ...leaf });
    try {
      const extra: Record<string, number | string | boolean | null> = {};
      const rows = await compareWithReference(ctx, {
        name: 'bare Node MITM', proxyUrl: mitm.proxyUrl, caPem: pki.caPem,
        origin: `https://${INTERCEPT_HOST}`, cpuMicros: mitm.cpuMicros,
      }, 'bare', extra);
      const [first, ...rest] = rows;
      return {
        id: this.id, title: `Tollgate vs a bare Node MITM: ${first?.title ?? ''}`,
        direct: first?.ref, tollgate: first?.tollgate,
        more: rest.map((r) => ({ title: r.title, direct: r.ref, tollgate: r.tollgate })),
        label: `"direct" column = a bare Node MITM (node:tls with one EC P-256 leaf, node:http, an undici keep-alive pool with upstream TLS verified; no identity, policy, audit, logs or metrics), "Tollgate" = the stock gateway; same upstream and clients, ${ABBA_PAIRS} ABBA pairs of half-length runs per row, the pair nearest the median shown; "vs direct" = Tollgate ÷ bare MITM`,
        extra,
      };
    } finally {
      mitm.stop();
    }
  },
};
