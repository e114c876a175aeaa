// Security case 7.05, last sentence: "a reload that would weaken invariants (for example allowing
// private ranges) is refused unless an explicit unsafe flag is set". A policy change pushed from git
// that adds an IP/CIDR allow rule over non-public space would otherwise let a team reach loopback,
// internal networks or the cloud metadata address the moment the file lands. The gateway rejects
// such a hot reload (the last good policy stays, with the usual log line, audit event and metric)
// unless tollgate.yaml sets policy_reload.allow_non_public; a restart — an explicit act — applies it.
// The canary listens on 127.0.0.1 behind a name the test DNS server resolves, so only the address
// guard (not an `upstreams:` override) stands between the request and the canary.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { until } from '../../helpers/cli-process.ts';
import { startTestDns } from '../../helpers/dns-server.ts';
import { startTestGateway, type TestGateway } from '../../helpers/gateway-harness.ts';
import { parseResponses, rawSend } from '../../helpers/raw-client.ts';
import { startUpstream } from '../../helpers/upstream-server.ts';

const NAME = 'svc.internal.test';
const canary = await startUpstream();
const dns = await startTestDns();
dns.records.set(NAME, ['127.0.0.1']);
t.teardown(async () => {
  await canary.close();
  await dns.close();
});

const BEFORE = `team: alpha\nrules:\n  - { host: ${NAME}, action: allow, ports: [${canary.port}] }\n  - { host: "*", action: deny }\n`;
const WIDENED = `team: alpha\nrules:\n  - { host: ${NAME}, action: allow, ports: [${canary.port}] }\n  - { host: 127.0.0.0/8, action: allow, ports: [${canary.port}] }\n  - { host: "*", action: deny }\n`;

async function gateway(extra = ''): Promise<TestGateway> {
  return startTestGateway({
    files: { 'policies/alpha.yaml': BEFORE },
    extraYaml: `dns: { servers: ["127.0.0.1:${dns.port}"], timeout_ms: 1000 }\n${extra}`,
  });
}

async function get(tg: TestGateway, p: string) {
  const r = await rawSend(tg.proxyPort, `GET http://${NAME}:${canary.port}${p} HTTP/1.1\r\nHost: ${NAME}:${canary.port}\r\nProxy-Authorization: ${tg.proxyAuth}\r\nConnection: close\r\n\r\n`, { waitMs: 3000 });
  return parseResponses(r.text)[0];
}

async function reloadTo(tg: TestGateway, text: string): Promise<Record<string, unknown>> {
  const from = tg.logs.length;
  writeFileSync(path.join(tg.dir, 'policies', 'alpha.yaml'), text);
  const verdict = (): Record<string, unknown> | undefined => tg.logs.slice(from).find((l) => l['msg'] === 'policy reloaded' || l['msg'] === 'policy reload rejected; the last good policy stays in force');
  await until('a reload verdict', () => verdict() !== undefined, 10_000);
  return verdict() as Record<string, unknown>;
}

t.test('a hot reload that lets a team reach loopback is rejected; the last good policy stays', async (t) => {
  const tg = await gateway();
  t.teardown(() => tg.stop());
  const seen = canary.seen.length;
  const before = await get(tg, '/before');
  t.equal(before?.status, 403, 'the name resolves to 127.0.0.1: refused while no rule names the address');
  t.equal(before?.headers['x-tollgate-reason'], 'ip_not_allowed');

  const verdict = await reloadTo(tg, WIDENED);
  t.equal(verdict['msg'], 'policy reload rejected; the last good policy stays in force', 'the reload is rejected');
  const problems = (verdict['problems'] as string[] | undefined) ?? [];
  t.match(problems.join('\n'), /^policies\/alpha\.yaml:4:1: this change would newly let team alpha reach non-public addresses \(127\.0\.0\.0\/8 on port \d+\)/m, 'the problem names the rule, the range and the port');
  t.match(problems.join('\n'), /restart the gateway to apply it, or set policy_reload\.allow_non_public: true/, 'and how to apply it on purpose');
  const after = await get(tg, '/after');
  t.equal(after?.status, 403, 'still refused after the rejected reload');
  t.equal(canary.seen.length, seen, 'nothing reached the loopback canary');
  const metrics = await (await fetch(`${tg.adminUrl}/metrics`)).text();
  t.match(metrics, /tollgate_policy_reloads_total\{result="rejected"\} 1\b/, 'counted as a rejected reload');
  t.match(metrics, /tollgate_policy_reload_ok 0\b/, 'and the reload gauge shows it');
});

t.test('with policy_reload.allow_non_public: true the same change applies', async (t) => {
  const tg = await gateway('policy_reload: { allow_non_public: true }');
  t.teardown(() => tg.stop());
  t.equal((await get(tg, '/flag-before'))?.status, 403);
  const verdict = await reloadTo(tg, WIDENED);
  t.equal(verdict['msg'], 'policy reloaded', 'the reload applies');
  const res = await get(tg, '/flag-after');
  t.equal(res?.status, 200, 'the address rule now admits the request');
  t.ok(canary.seen.some((s) => s.url === '/flag-after'), 'and it reached the canary');
});

t.test('a reload that narrows or keeps non-public grants applies as usual', async (t) => {
  const tg = await startTestGateway({
    files: { 'policies/alpha.yaml': WIDENED },
    extraYaml: `dns: { servers: ["127.0.0.1:${dns.port}"], timeout_ms: 1000 }`,
  });
  t.teardown(() => tg.stop());
  t.equal((await get(tg, '/started-widened'))?.status, 200, 'a gateway started with the rule applies it (a start is an explicit act)');
  const narrowed = `team: alpha\nrules:\n  - { host: ${NAME}, action: allow, ports: [${canary.port}] }\n  - { host: 127.0.0.1, action: allow, ports: [${canary.port}] }\n  - { host: api.example.com, action: allow }\n  - { host: "*", action: deny }\n`;
  const verdict = await reloadTo(tg, narrowed);
  t.equal(verdict['msg'], 'policy reloaded', 'a narrower range on the same port is not a widening');
  t.equal((await get(tg, '/narrowed'))?.status, 200);
  t.equal((await reloadTo(tg, BEFORE))['msg'], 'policy reloaded', 'dropping the grant applies');
  t.equal((await get(tg, '/dropped'))?.status, 403, 'and the address is refused again');
});
