// bench/report.ts judges issue 2's two Squid-relative targets on scenario 12's same-run pairs when
// Squid ran, and falls back to "about 25 % of direct" (keep-alive) or n/a (new connection) without it.
import t from 'tap';
import type { RunStats } from '../../../bench/lib/load.ts';
import { judgeTargets } from '../../../bench/report.ts';
import type { ScenarioResult } from '../../../bench/scenarios.ts';

const stats = (rps: number): RunStats => ({
  requests: rps, errors: 0, firstError: undefined, elapsedMs: 1000, rps, p50Ms: 1, p90Ms: 1, p99Ms: 1, maxMs: 1,
  bytes: 0, mibPerSec: 0, gatewayCpuUsPerReq: 100, cores: {},
});
const s3 = (direct: number, tollgate: number): ScenarioResult => ({ id: '3', title: '#3', direct: stats(direct), tollgate: stats(tollgate) });
const s4 = (direct: number, tollgate: number): ScenarioResult => ({ id: '4', title: '#4', direct: stats(direct), tollgate: stats(tollgate) });
const s12 = (keepalive: number | undefined, newconn: number | undefined): ScenarioResult => ({
  id: '12', title: '#12',
  extra: { squid: '5.7', ...(keepalive === undefined ? {} : { keepalive_tollgate_vs_squid: keepalive }), ...(newconn === undefined ? {} : { newconn_tollgate_vs_squid: newconn }) },
});
const row = (rs: ScenarioResult[], prefix: string) => {
  const r = judgeTargets(rs).find((x) => x.target.startsWith(prefix));
  if (!r) throw new Error(`no target row starting "${prefix}"`);
  return r;
};

const cases: Array<{ name: string; rs: ScenarioResult[]; keepalive: string; newconn: string }> = [
  { name: 'no Squid, 30 % of direct', rs: [s3(1000, 300), s4(100, 60)], keepalive: 'PASS', newconn: 'n/a' },
  { name: 'no Squid, 13 % of direct', rs: [s3(1000, 130), s4(100, 60)], keepalive: 'MISS', newconn: 'n/a' },
  { name: 'Squid ran: 13 % of direct but 1.05× Squid', rs: [s3(1000, 130), s4(100, 60), s12(1.05, 2.1)], keepalive: 'PASS', newconn: 'PASS' },
  { name: 'Squid ran: 30 % of direct but 0.54× Squid', rs: [s3(1000, 300), s4(100, 60), s12(0.54, 1.81)], keepalive: 'MISS', newconn: 'MISS' },
  { name: 'Squid skipped (no ratios)', rs: [s3(1000, 300), s12(undefined, undefined)], keepalive: 'PASS', newconn: 'n/a' },
];
for (const c of cases) {
  t.equal(row(c.rs, 'intercepted keep-alive').result, c.keepalive, `${c.name}: keep-alive target`);
  t.equal(row(c.rs, 'new TLS connection').result, c.newconn, `${c.name}: new-connection target`);
}
t.match(row([s3(1000, 130), s12(0.54, 1.81)], 'intercepted keep-alive').goal, /1\.0× Squid/, 'judged against Squid when it ran');
t.match(row([s3(1000, 130)], 'intercepted keep-alive').goal, /25 %/, 'the issue\'s share of direct without Squid');
t.match(row([s4(100, 60), s12(0.54, 1.81)], 'new TLS connection').measured, /1\.81× Squid/, 'the Squid multiple is shown');
